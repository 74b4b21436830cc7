"""The multiplexed endpoint /ws (SPEC 2.2): subscribe, unsubscribe and ping,
each answered by ack/pong or error with the command's id; many submissions on
one connection; filters by event type; the legacy endpoint beside it."""
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Gateway, Runner, recv_json, expect_silence, status,  # noqa: E402
                     records, validation)

run = Runner()


async def cmd(ws, **c):
    await ws.send(json.dumps(c))
    return await recv_json(ws)


async def subscribe(ws, key, id, **extra):
    ack = await cmd(ws, op="subscribe", id=id, submission=key, **extra)
    assert ack["op"] == "ack" and ack["id"] == id and ack["submission"] == key, ack
    assert isinstance(ack["epoch"], str) and ack["epoch"], ack
    return ack


@run.test
async def test_ping_and_ids():
    with Gateway() as gw:
        async with gw.ws("/ws") as ws:
            assert await cmd(ws, op="ping", id=3) == {"op": "pong", "id": 3}
            assert await cmd(ws, op="ping", id="abc") == {"op": "pong", "id": "abc"}
            assert await cmd(ws, op="ping") == {"op": "pong"}
            # an id that is neither a number nor a string is not echoed
            m = await cmd(ws, op="ping", id={"x": 1})
            assert m == {"op": "pong"}, m
            m = await cmd(ws, op="unsubscribe", id=4)
            assert m["op"] == "error" and m["id"] == 4 and m["code"] == "bad_request", m


@run.test
async def test_many_submissions_on_one_connection():
    with Gateway() as gw:
        gw.publish(status("a", "Loaded", "a is loaded"))
        gw.publish(records("b", "animal", ["x1", "x2", "x3"]))
        async with gw.ws("/ws") as ws, gw.ws("/ws/submissions/a/") as legacy:
            first = await recv_json(legacy)
            assert first["message"] == "Loaded", first
            acks = {}
            snaps = {}
            for i, key in enumerate(("a", "b", "c")):
                acks[key] = await subscribe(ws, key, i + 1)
                snap = await recv_json(ws)
                assert snap["op"] == "snapshot" and snap["submission"] == key, snap
                assert snap["seq"] == acks[key]["seq"] and snap["epoch"] == acks[key]["epoch"], snap
                snaps[key] = snap
            assert snaps["a"]["status"] == "Loaded" and snaps["a"]["notification"] == "a is loaded"
            assert snaps["b"]["summary"]["animal"]["all"] == 3, snaps["b"]
            assert snaps["b"]["summary"]["animal"]["unknown"] == 3, snaps["b"]
            assert snaps["c"]["seq"] == 0 and snaps["c"]["status"] is None, snaps["c"]
            # each publish reaches the connection once, tagged with its submission
            gw.publish(status("c", "Waiting", "c starts"))
            gw.publish(validation("b", [("animal", "x1", "Error", [("bad date", "dob")]),
                                        ("animal", "x2", "Pass", [])]))
            gw.publish(status("a", "Ready", "a is ready"))
            got = [await recv_json(ws) for _ in range(3)]
            assert [(m["op"], m["submission"], m["seq"]) for m in got] == [
                ("event", "c", 1), ("event", "b", acks["b"]["seq"] + 1),
                ("event", "a", acks["a"]["seq"] + 1)], got
            c, b, a = got
            assert c["type"] == "status" and c["status"] == "Waiting" and c["notification"] == "c starts", c
            assert b["type"] == "validation", b
            s = b["summary"]["animal"]
            assert (s["all"], s["known"], s["unknown"], s["pass"], s["error"], s["issues"]) == \
                (3, 2, 1, 1, 1, 1), s
            assert a["type"] == "status" and a["status"] == "Ready" and "at" in a, a
            await expect_silence(ws)
            m = await recv_json(legacy)
            assert m["message"] == "Ready" and m["notification_message"] == "a is ready", m
            # unsubscribe: that submission goes quiet, the others do not
            m = await cmd(ws, op="unsubscribe", id=9, submission="a")
            assert m == {"op": "ack", "id": 9, "submission": "a"}, m
            m = await cmd(ws, op="unsubscribe", id=10, submission="a")
            assert m["op"] == "error" and m["code"] == "not_found" and m["id"] == 10, m
            gw.publish(status("a", "Completed"))
            gw.publish(status("c", "Loaded"))
            m = await recv_json(ws)
            assert m["submission"] == "c" and m["status"] == "Loaded", m
            await expect_silence(ws)
            m = await recv_json(legacy)   # the legacy client still watches a
            assert m["message"] == "Completed", m
            # subscribing again starts over with a snapshot; one event per publish
            await subscribe(ws, "c", 11)
            snap = await recv_json(ws)
            assert snap["op"] == "snapshot" and snap["status"] == "Loaded", snap
            await subscribe(ws, "c", 12)
            assert (await recv_json(ws))["op"] == "snapshot"
            gw.publish(status("c", "Submitted"))
            m = await recv_json(ws)
            assert m["status"] == "Submitted", m
            await expect_silence(ws)
            m = await cmd(ws, op="ping", id="end")
            assert m == {"op": "pong", "id": "end"}


@run.test
async def test_two_connections_same_group():
    with Gateway() as gw:
        conns = [await gw.ws("/ws") for _ in range(5)]
        for i, ws in enumerate(conns):
            await subscribe(ws, "g", i)
            assert (await recv_json(ws))["op"] == "snapshot"
        for n in range(20):
            gw.publish(status("g", "Loaded", "n%d" % n))
        for ws in conns:
            for n in range(20):
                m = await recv_json(ws)
                assert m["seq"] == n + 1 and m["notification"] == "n%d" % n, m
        # one leaving does not disturb the others
        await conns[0].close()
        gw.publish(status("g", "Ready"))
        for ws in conns[1:]:
            m = await recv_json(ws)
            assert m["seq"] == 21, m
            await ws.close()


@run.test
async def test_filter_by_event_type():
    with Gateway() as gw:
        async with gw.ws("/ws") as ws, gw.ws("/ws") as all_:
            ack = await subscribe(ws, "f", 1, filter={"kinds": ["status", "reset"]})
            assert (await recv_json(ws))["op"] == "snapshot"
            await subscribe(all_, "f", 1)
            assert (await recv_json(all_))["op"] == "snapshot"
            gw.publish(records("f", "sample", ["s1"]))
            gw.publish({"type": "notification", "submission": "f", "notification": "hi"})
            gw.publish(status("f", "Loaded"))
            gw.publish(validation("f", [("sample", "s1", "Warning", [("odd", None)])]))
            gw.publish({"type": "reset", "submission": "f"})
            gw.publish(status("f", "Ready"))
            types = [(await recv_json(ws))["type"] for _ in range(3)]
            assert types == ["status", "reset", "status"], types
            await expect_silence(ws)
            types = [(await recv_json(all_))["type"] for _ in range(6)]
            assert types == ["records", "notification", "status", "validation", "reset", "status"], types
            # the filter applies to a replay too
            await subscribe(ws, "f", 2, filter={"kinds": ["validation", "records"]},
                            since={"epoch": ack["epoch"], "seq": 0})
            got = [await recv_json(ws) for _ in range(2)]
            assert [(m["type"], m["seq"]) for m in got] == [("records", 1), ("validation", 4)], got
            await expect_silence(ws)
            # an empty list of kinds or a null filter means everything
            await subscribe(ws, "f", 3, filter=None)
            assert (await recv_json(ws))["op"] == "snapshot"
            gw.publish({"type": "notification", "submission": "f", "notification": "x"})
            m = await recv_json(ws)
            assert m["type"] == "notification", m
            await all_.recv()


@run.test
async def test_garbage_does_not_disturb_others():
    with Gateway() as gw:
        async with gw.ws("/ws") as good, gw.ws("/ws") as bad:
            await subscribe(good, "x", 1)
            assert (await recv_json(good))["op"] == "snapshot"
            await subscribe(bad, "x", 1)
            assert (await recv_json(bad))["op"] == "snapshot"
            for frame in ("{", "null", "42", '{"op":1}', '{"op":"subscribe"}'):
                await bad.send(frame)
                m = await recv_json(bad)
                assert m["op"] == "error" and m["code"] == "bad_request", (frame, m)
            gw.publish(status("x", "Loaded"))
            for ws in (good, bad):
                m = await recv_json(ws)
                assert m["op"] == "event" and m["status"] == "Loaded", m


@run.test
async def test_unknown_paths_refused():
    import websockets
    with Gateway() as gw:
        for path in ("/ws/other", "/ws/submissions/bad%20key/", "/ws/submissions/a/b"):
            try:
                ws = await gw.ws(path)
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 404, (path, e.status_code)
            else:
                await ws.close()
                raise AssertionError("%s was accepted" % path)
        async with gw.ws("/ws/") as ws:
            assert await cmd(ws, op="ping", id=1) == {"op": "pong", "id": 1}


if __name__ == "__main__":
    run.run()
