"""The legacy endpoint /ws/submissions/{key}/ end to end on the embedded default.

An existing status page (built for Django Channels) must work unchanged: the
current state right after the upgrade, then exactly one frame per accepted
publish, in the legacy format with the legacy counts. Publishes go over HTTP
from loopback (no token configured), frames are read with a real WebSocket
client.
"""
import asyncio

from harness import CheckedGateway as Gateway
from harness import Runner, expect_silence, recv_json, records, status, validation

t = Runner()



def counts(animals=0, samples=0, animal_unkn=0, sample_unkn=0,
           animal_issues=0, sample_issues=0):
    return {"animals": animals, "samples": samples,
            "animal_unkn": animal_unkn, "sample_unkn": sample_unkn,
            "animal_issues": animal_issues, "sample_issues": sample_issues}


def frame(msg, note, vm):
    return {"message": msg, "notification_message": note, "validation_message": vm}


def ok(gw, body, **kw):
    st, resp = gw.publish(body, **kw)
    assert st == 200, (st, resp)
    assert resp["accepted"] is True and resp["duplicate"] is False, resp
    return resp


@t.test
async def no_initial_frame_for_an_unknown_submission():
    # such pages render their state server-side: a frame of nulls would
    # blank it, so the first frame is the first event
    with Gateway() as gw:
        for path in ("/ws/submissions/nobody-yet/", "/ws/submissions/nobody-yet"):
            async with gw.ws(path) as ws:
                await expect_silence(ws, 0.5)
        # asking about it created nothing
        st, body = gw.http("GET", "/api/v1/submissions/nobody-yet")
        assert st == 404, (st, body)
        async with gw.ws("/ws/submissions/nobody-yet/") as ws:
            await expect_silence(ws)
            ok(gw, status("nobody-yet", "Loaded", "first"))
            assert await recv_json(ws) == frame("Loaded", "first", "")
        # a known submission gets its state at once
        async with gw.ws("/ws/submissions/nobody-yet/") as ws:
            assert await recv_json(ws) == frame("Loaded", "first", "")


@t.test
async def every_publish_type_gives_one_exact_legacy_frame():
    with Gateway() as gw:
        async with gw.ws("/ws/submissions/42/") as ws:
            await expect_silence(ws)   # unknown: no initial frame

            r = ok(gw, status("42", "loaded", "Data loaded"))
            assert r["seq"] == 1 and r["type"] == "status" and r["submission"] == "42", r
            assert await recv_json(ws) == frame("Loaded", "Data loaded", "")
            await expect_silence(ws)

            ok(gw, records("42", "animal", ["a1", "a2", "a3"]))
            assert await recv_json(ws) == frame("Loaded", "Data loaded", counts(animals=3, animal_unkn=3))
            await expect_silence(ws)

            ok(gw, records("42", "sample", ["s1", "s2"]))
            assert await recv_json(ws) == frame(
                "Loaded", "Data loaded", counts(animals=3, samples=2, animal_unkn=3, sample_unkn=2))

            # a1 Error (issue), a2 Warning (not an issue), s1 Pass, s3 a new
            # record added by its result (Error)
            ok(gw, validation("42", [
                ("animal", "a1", "Error", [("missing breed", "breed")]),
                ("animal", "a2", "Warning", [("odd date", "birth_date")]),
                ("sample", "s1", "Pass", []),
                ("sample", "s3", "Error", [("missing breed", "breed"), ("no animal", None)]),
            ]))
            assert await recv_json(ws) == frame("Loaded", "Data loaded", counts(
                animals=3, samples=3, animal_unkn=1, sample_unkn=1,
                animal_issues=1, sample_issues=1))
            await expect_silence(ws)

            # a result changes: a1 passes now, a3 fails
            ok(gw, validation("42", [("animal", "a1", "Pass", []),
                                     ("animal", "a3", "Error", [("bad id", "id")])]))
            assert await recv_json(ws) == frame("Loaded", "Data loaded", counts(
                animals=3, samples=3, animal_unkn=0, sample_unkn=1,
                animal_issues=1, sample_issues=1))

            # a record already known is not counted twice
            ok(gw, records("42", "animal", ["a1", "a4"]))
            assert await recv_json(ws) == frame("Loaded", "Data loaded", counts(
                animals=4, samples=3, animal_unkn=1, sample_unkn=1,
                animal_issues=1, sample_issues=1))

            ok(gw, {"type": "notification", "submission": "42",
                    "notification": "Validation finished"})
            assert await recv_json(ws) == frame("Loaded", "Validation finished", counts(
                animals=4, samples=3, animal_unkn=1, sample_unkn=1,
                animal_issues=1, sample_issues=1))

            # status names: snake_case and any case give the display form
            ok(gw, status("42", "need_revision", "Please fix the errors"))
            assert (await recv_json(ws))["message"] == "Need Revision"
            ok(gw, status("42", "READY", "Ready to submit"))
            assert (await recv_json(ws))["message"] == "Ready"

            r = ok(gw, {"type": "reset", "submission": "42"})
            assert r["seq"] == 10, r
            assert await recv_json(ws) == frame("Ready", "Ready to submit", "")
            await expect_silence(ws)

            # a status publish without a notification keeps the text
            ok(gw, status("42", "Submitted"))
            assert await recv_json(ws) == frame("Submitted", "Ready to submit", "")
            await expect_silence(ws)


@t.test
async def the_envelope_form_is_the_same_publish():
    with Gateway() as gw:
        async with gw.ws("/ws/submissions/env-1") as ws:
            await expect_silence(ws)   # unknown: no initial frame
            ok(gw, {"from": "importer", "to": "statusgate",
                    "datetime": "2024-05-01T12:00:00Z",
                    "body": {"type": "status", "submission": "env-1",
                             "status": "Completed", "notification": "Done"}})
            assert await recv_json(ws) == frame("Completed", "Done", "")
            ok(gw, {"from": "validator", "to": "statusgate",
                    "datetime": "2024-05-01T12:00:01+02:00",
                    "body": validation("env-1", [("sample", "s1", "Error", [("x", "y")])])})
            assert await recv_json(ws) == frame("Completed", "Done", counts(
                samples=1, sample_issues=1))
            await expect_silence(ws)


@t.test
async def two_submissions_are_isolated():
    with Gateway() as gw:
        async with gw.ws("/ws/submissions/iso-a/") as a, gw.ws("/ws/submissions/iso-b/") as b:
            await expect_silence(a)   # unknown: no initial frame
            await expect_silence(b)   # unknown: no initial frame
            ok(gw, status("iso-a", "Loaded", "for a"))
            ok(gw, records("iso-a", "animal", ["x"]))
            assert await recv_json(a) == frame("Loaded", "for a", "")
            assert await recv_json(a) == frame("Loaded", "for a", counts(animals=1, animal_unkn=1))
            await expect_silence(b)
            ok(gw, status("iso-b", "Error", "for b"))
            assert await recv_json(b) == frame("Error", "for b", "")
            await expect_silence(a)
            await expect_silence(b)
            # and the stored states are separate too
            _, sa = gw.http("GET", "/api/v1/submissions/iso-a")
            _, sb = gw.http("GET", "/api/v1/submissions/iso-b")
            assert (sa["status"], sa["seq"]) == ("Loaded", 2), sa
            assert (sb["status"], sb["seq"]) == ("Error", 1), sb
            assert sb["summary"].get("animal", {}).get("all", 0) == 0, sb


@t.test
async def several_watchers_of_one_submission_get_the_same_frames():
    with Gateway() as gw:
        async with gw.ws("/ws/submissions/many/") as w1, gw.ws("/ws/submissions/many") as w2:
            await expect_silence(w1)   # unknown: no initial frame
            await expect_silence(w2)   # unknown: no initial frame
            ok(gw, status("many", "Waiting", "queued"))
            f = frame("Waiting", "queued", "")
            assert await recv_json(w1) == f
            assert await recv_json(w2) == f


@t.test
async def a_late_joiner_gets_the_current_state_first():
    with Gateway() as gw:
        ok(gw, status("late", "Loaded", "Data loaded"))
        ok(gw, records("late", "animal", ["a1", "a2"]))
        ok(gw, records("late", "sample", ["s1"]))
        ok(gw, validation("late", [("animal", "a1", "Error", [("bad", "c")])]))
        expected = frame("Loaded", "Data loaded", counts(
            animals=2, samples=1, animal_unkn=1, sample_unkn=1, animal_issues=1))
        async with gw.ws("/ws/submissions/late/") as ws:
            assert await recv_json(ws) == expected
            await expect_silence(ws)     # no replay of old events after it
            ok(gw, status("late", "Ready", "go"))
            expected["message"], expected["notification_message"] = "Ready", "go"
            assert await recv_json(ws) == expected
            await expect_silence(ws)


@t.test
async def the_same_publish_id_has_one_effect():
    with Gateway() as gw:
        async with gw.ws("/ws/submissions/idem/") as ws:
            await expect_silence(ws)   # unknown: no initial frame
            body = records("idem", "animal", ["a1"], id="job-17/step-3")
            first = ok(gw, body)
            assert first["seq"] == 1, first
            assert await recv_json(ws) == frame(None, "", counts(animals=1, animal_unkn=1))
            st, again = gw.publish(body)
            assert st == 200, (st, again)
            assert again["accepted"] is True and again["duplicate"] is True, again
            assert "seq" not in again or again["seq"] == 1, again
            await expect_silence(ws, 0.5)
            # the same id with another body is still the same publish
            st, other = gw.publish(status("idem", "Error", "other", id="job-17/step-3"))
            assert st == 200 and other["duplicate"] is True, other
            await expect_silence(ws)
            _, s = gw.http("GET", "/api/v1/submissions/idem")
            assert s["seq"] == 1 and s["status"] is None, s
            assert s["summary"]["animal"]["all"] == 1, s
            _, ev = gw.http("GET", "/api/v1/submissions/idem/events?since=0")
            assert len(ev["events"]) == 1, ev
            # a new id is a new publish
            r = ok(gw, records("idem", "animal", ["a2"], id="job-17/step-4"))
            assert r["seq"] == 2, r
            assert await recv_json(ws) == frame(None, "", counts(animals=2, animal_unkn=2))
            _, m = gw.http("GET", "/metrics")
            assert 'statusgate_publishes_total{source="http",outcome="duplicate"} 2' in m, m


@t.test
async def a_browser_frame_is_not_broadcast_and_closes_with_1008():
    # a browser is any peer that is not a trusted publisher: one relayed by
    # a proxy (even from loopback), or any peer without the token once a
    # publish token is configured (--publish-networks is then none)
    for args, hdrs in (((), {"X-Real-IP": "203.0.113.5"}),
                       ((), {"X-Forwarded-For": "203.0.113.5"}),
                       ((), {"Forwarded": "for=203.0.113.5"}),
                       (("--publish-token", "T"), {})):
        with Gateway(*args) as gw:
            async with gw.ws("/ws/submissions/spoof/", extra_headers=hdrs) as bad, \
                    gw.ws("/ws/submissions/spoof/") as other:
                await expect_silence(bad)   # unknown: no initial frame
                await expect_silence(other)
                await bad.send('{"message": "Completed", "notification_message": "spoofed"}')
                try:
                    await asyncio.wait_for(bad.recv(), 5)
                    raise AssertionError("the spoofing connection got a frame")
                except Exception as e:  # ConnectionClosed
                    assert getattr(e, "code", None) == 1008, (args, hdrs, repr(e))
                await expect_silence(other)
                _, body = gw.http("GET", "/api/v1/submissions/spoof")
                assert body["error"] == "not_found", body
                # the other watcher still gets real events
                ok(gw, status("spoof", "Loaded", "real"), token="T" if args else None)
                assert await recv_json(other) == frame("Loaded", "real", "")
            assert "not a trusted publisher" in gw.logs()


@t.test
def a_flood_of_frames_from_one_publisher_is_bounded():
    # a trusted backend that pipelines frames faster than they commit: past
    # 64 in flight it is told too_many and closed with 1013 (try again
    # later); what it got in was committed, and everyone else is served
    import json as _json
    from harness import RawWS
    with Gateway() as gw:
        ws = RawWS(gw, "/ws/submissions/flood/")
        try:
            frame = _json.dumps({"message": "Loaded", "notification_message": "x"}).encode()
            n = 2000
            hdr = bytes([0x81, 0x80 | len(frame)])
            mask = b"\0\0\0\0"     # a zero mask leaves the payload as it is
            ws.sock.sendall((hdr + mask + frame) * n)
            got_error, code = None, None
            while code is None:
                f = ws.recv_frame(10)
                assert f is not None, "neither refused nor closed"
                if f[0] == 0x1:
                    m = _json.loads(f[1])
                    if m.get("error"):
                        got_error = m
                elif f[0] == 0x8:
                    code = int.from_bytes(f[1][:2], "big")
            assert got_error and got_error["error"] == "too_many", got_error
            assert code == 1013, code
        finally:
            ws.close()
        # what got in before the refusal is committed (the writer may still
        # be at it when the socket closes)
        from harness import wait_for
        wait_for(lambda: (gw.http("GET", "/api/v1/submissions/flood")[1].get("seq") or 0) >= 64,
                 "the accepted publishes committed", timeout=30, gw=gw)
        st, body = gw.http("GET", "/api/v1/submissions/flood")
        assert st == 200 and 64 <= body["seq"] < n, (st, body)
        ok(gw, status("flood", "Ready", "still served"))
        assert "in flight; closing it with 1013" in gw.logs()


@t.test
async def bad_legacy_paths_are_refused_before_the_upgrade():
    import websockets
    with Gateway() as gw:
        for path in ("/ws/submissions/a%2Fb/", "/ws/submissions/" + "k" * 65 + "/",
                     "/ws/submissions/x/y", "/ws/nothing"):
            try:
                async with gw.ws(path):
                    raise AssertionError("upgraded on " + path)
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 404, (path, e.status_code)
        async with gw.ws("/ws/submissions/still-ok") as ws:
            await expect_silence(ws)   # unknown: no initial frame


t.run()
