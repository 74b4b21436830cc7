"""Retention (--retention, --retention-final; README "Store and retention"),
against the real binary with durations of seconds.

A deleted submission is, for every reader, exactly a submission that was
never published to (HTTP 404, the same /ws snapshot, the same legacy
endpoint behaviour), and a publish to its key starts it anew. `since`
across a deletion: the new history's seqs start above the old one's last
seq and skip one, so a client holding any position of the old history gets a
snapshot, never a replay onto the other history; a client that follows the
live stream sees the skip as a gap. The store gauges and the deletion
counter in /metrics move.
"""
import asyncio
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BIN, CheckedGateway, Runner, metric, recv_json,  # noqa: E402
                     expect_silence, records, status, submission_state, validation,
                     wait_for)

run = Runner()


async def cmd(ws, **c):
    await ws.send(json.dumps(c))
    return await recv_json(ws)


async def subscribe(gw, key, since=None):
    """A fresh /ws connection subscribed to key: (ws, ack, first frame or None)."""
    ws = await gw.ws("/ws").__aenter__()
    c = {"op": "subscribe", "id": 1, "submission": key}
    if since is not None:
        c["since"] = since
    ack = await cmd(ws, **c)
    assert ack["op"] == "ack" and ack["submission"] == key, ack
    try:
        first = await recv_json(ws, timeout=0.5)
    except asyncio.TimeoutError:
        first = None
    return ws, ack, first


async def legacy_first(gw, key):
    """What the legacy endpoint sends first for key within half a second
    (None: nothing)."""
    async with gw.ws("/ws/submissions/%s/" % key) as ws:
        try:
            return json.loads(await asyncio.wait_for(ws.recv(), 0.5))
        except asyncio.TimeoutError:
            return None


def without_key(frame):
    return {k: v for k, v in frame.items() if k not in ("submission",)} if frame else frame


async def same_as_never_seen(gw, key, never):
    """Every reader sees key exactly as the never-published-to key never."""
    assert gw.http("GET", "/api/v1/submissions/" + key)[0] == 404
    for since in (None, {"epoch": "x" * 32, "seq": 2}):
        ws1, ack1, snap1 = await subscribe(gw, key, since)
        ws2, ack2, snap2 = await subscribe(gw, never, since)
        try:
            assert ack1["seq"] == ack2["seq"] == 0, (ack1, ack2)
            assert snap1 and snap1["op"] == "snapshot", snap1
            assert without_key(snap1) == without_key(snap2), (snap1, snap2)
            assert snap1["status"] is None and snap1["seq"] == 0, snap1
        finally:
            await ws1.close()
            await ws2.close()
    st, ev1 = gw.http("GET", "/api/v1/submissions/%s/events?since=0" % key)
    st2, ev2 = gw.http("GET", "/api/v1/submissions/%s/events?since=0" % never)
    assert st == st2, (st, st2)
    assert without_key(ev1) == without_key(ev2), (ev1, ev2)
    # the legacy endpoint: whatever it sends for an unknown submission (no
    # initial frame, SPEC 2.1), the same for the deleted one
    assert await legacy_first(gw, key) == await legacy_first(gw, never)


def store_gauges(gw):
    return {n: metric(gw, "statusgate_store_" + n)
            for n in ("submissions", "records", "events", "bytes")}


@run.test
async def test_old_submission_gone_with_everything():
    with CheckedGateway("--retention", "3s", "--retention-final", "0") as gw:
        before = store_gauges(gw)
        assert before["submissions"] == 0 and before["bytes"] > 0, before
        assert gw.publish(records("ret-a", "animal", ["a%d" % i for i in range(200)]))[0] == 200
        assert gw.publish(validation("ret-a", [("animal", "a1", "Error", [("bad", "dob")])]))[0] == 200
        # a few megabytes of sample results, so that there is space to give back
        for part in range(4):
            assert gw.publish(validation("ret-a", [
                ("sample", "s%d-%d" % (part, i), "Warning",
                 [("odd value %d: %s" % (i, "x" * 300), "col%d" % (i % 7))])
                for i in range(1000)]))[0] == 200
        assert gw.publish(status("ret-a", "Loaded", "in progress"))[0] == 200
        t_last = time.time()
        assert submission_state(gw, "ret-a")["summary"]["animal"]["all"] == 200
        g = wait_for(lambda: (lambda x: x if x["records"] == 4200 else None)(store_gauges(gw)),
                     "the store gauges to count the publishes", timeout=10, gw=gw)
        assert g["submissions"] == 1 and g["events"] == 7, g
        assert g["bytes"] > before["bytes"] + 2e6, (before, g)
        deleted0 = metric(gw, "statusgate_retention_deleted_total")

        wait_for(lambda: submission_state(gw, "ret-a") is None, "ret-a to be deleted",
                 timeout=30, gw=gw)
        assert time.time() - t_last >= 3 - 0.2, "deleted before its retention"
        await same_as_never_seen(gw, "ret-a", "ret-never")
        st, lst = gw.http("GET", "/api/v1/submissions")
        assert st == 200 and lst["submissions"] == [], lst
        g = wait_for(lambda: (lambda x: x if x["records"] == 0 and x["events"] == 0 else None)(
            store_gauges(gw)), "the gauges to drop to zero", timeout=10, gw=gw)
        assert g["submissions"] == 0, g
        assert metric(gw, "statusgate_retention_deleted_total") == deleted0 + 1
        assert metric(gw, "statusgate_retention_rows_deleted_total") >= 1 + 4200 + 4001 + 7
        # the freed pages went back to the file system (a new store is
        # incremental-vacuum): the file is about as small as it started
        g = wait_for(lambda: (lambda x: x if x["bytes"] < before["bytes"] + 1e6 and
                              metric(gw, "statusgate_store_free_bytes") == 0 else None)(
                                  store_gauges(gw)), "the file to shrink", timeout=30, gw=gw)
        assert "retention deleted 1 submissions" in gw.logs()

        # a publish to the key starts it anew: a fresh submission
        assert gw.publish(status("ret-a", "Waiting", "again"))[0] == 200
        doc = submission_state(gw, "ret-a")
        assert doc["status"] == "Waiting" and doc["summary"].get("animal") is None, doc
        assert doc["seq"] == 9, doc   # the old history ended at 7, 8 is skipped


@run.test
async def test_final_sooner_and_since_across_deletion():
    # final ones after 2 s, the others after an hour
    with CheckedGateway("--retention", "1h", "--retention-final", "2s") as gw:
        # a follower sees the whole old history live
        follower, ack, snap = await subscribe(gw, "ret-s")
        epoch = ack["epoch"]
        assert ack["seq"] == 0 and snap["op"] == "snapshot", (ack, snap)
        for st in ("Loaded", "Ready", "Completed"):
            assert gw.publish(status("ret-s", st, st.lower()))[0] == 200
        assert gw.publish(status("ret-open", "Loaded", "not final"))[0] == 200
        # an Error revived by a later event is not final either
        assert gw.publish(status("ret-revived", "Error", "failed"))[0] == 200
        assert gw.publish({"type": "notification", "submission": "ret-revived",
                           "notification": "retrying"})[0] == 200
        seen = [await recv_json(follower) for _ in range(3)]
        assert [m["seq"] for m in seen] == [1, 2, 3], seen

        wait_for(lambda: submission_state(gw, "ret-s") is None, "the Completed one to go",
                 timeout=30, gw=gw)
        assert submission_state(gw, "ret-open")["status"] == "Loaded"
        assert submission_state(gw, "ret-revived")["notification"] == "retrying"
        await same_as_never_seen(gw, "ret-s", "ret-never")

        # deleted, not yet published to again: every old position gets the
        # never-seen snapshot
        for n in (0, 1, 3):
            ws, ack, first = await subscribe(gw, "ret-s", {"epoch": epoch, "seq": n})
            await ws.close()
            if n == 0:   # at 0 with 0 published: nothing missed, nothing sent
                assert ack["seq"] == 0 and first is None, (ack, first)
            else:
                assert first["op"] == "snapshot" and first["seq"] == 0, first
                assert first["status"] is None, first
        # a watcher who arrives now holds position 0 of the deleted key
        newcomer, ack, snap = await subscribe(gw, "ret-s")
        assert ack["seq"] == 0 and snap["status"] is None, (ack, snap)

        # published to again: a new history whose first seq is 5 (4 skipped)
        assert gw.publish(status("ret-s", "Waiting", "second life"))[0] == 200
        ev = await recv_json(follower)
        assert ev["op"] == "event" and ev["seq"] == 5 and ev["status"] == "Waiting", ev
        # the follower's seq jumps 3 -> 5: a gap, so a careful client (the
        # status page) resubscribes and gets a snapshot
        assert ev["seq"] > seen[-1]["seq"] + 1
        ev = await recv_json(newcomer)
        assert ev["seq"] == 5, ev
        await follower.close()
        await newcomer.close()

        # every position of the old history: a snapshot of the new one, never
        # a replay onto it (4, the skipped seq, stands for the deletion
        # itself and is never sent to anyone)
        for n in (0, 1, 2, 3):
            ws, ack, first = await subscribe(gw, "ret-s", {"epoch": epoch, "seq": n})
            try:
                assert ack["seq"] == 5, ack
                assert first["op"] == "snapshot", (n, first)
                assert first["seq"] == 5 and first["status"] == "Waiting", first
                await expect_silence(ws, 0.3)
            finally:
                await ws.close()
        st, body = gw.http("GET", "/api/v1/submissions/ret-s/events?since=3")
        assert st == 200 and body["truncated"] is True and body["oldest"] == 5, body

        # positions of the new history resume as usual
        assert gw.publish(status("ret-s", "Loaded", "second life goes on"))[0] == 200
        ws, ack, first = await subscribe(gw, "ret-s", {"epoch": epoch, "seq": 5})
        try:
            assert first["op"] == "event" and first["seq"] == 6, first
            assert first["status"] == "Loaded", first
            await expect_silence(ws, 0.3)
        finally:
            await ws.close()


@run.test
def test_bad_durations_refused():
    for opt, val in (("--retention", "5x"), ("--retention-final", "1.5h"),
                     ("--retention", "-1")):
        r = subprocess.run([BIN, "serve", opt, val], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (opt, val, r.returncode, r.stderr)
        assert "bad duration" in r.stderr and val in r.stderr, r.stderr
    r = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=10)
    assert "--retention DURATION" in r.stdout and "STATUSGATE_RETENTION_FINAL" in r.stdout


if __name__ == "__main__":
    run.run()
