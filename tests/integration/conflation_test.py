"""Latest-state delivery (SPEC 2.3): a reader that stops reading while
thousands of events are published is not closed when it wants the latest
state (the legacy endpoint, /ws subscriptions in mode latest): its queue
holds one frame per subscription however many events come (the send-queue
gauges of /metrics say so), and once it reads again the last frame it gets
is the submission's latest state, each submission's frames in seq order.
Readers in mode all (the default) still get every event, in order, and a
mode-all subscription that lags is still closed with 1013, even on a
connection that also has latest subscriptions. Events are large (long
validation messages in every summary), so the stalled reader's TCP buffers
fill early and nearly everything waits in the gateway. Nothing here
measures time: the test waits for conditions, with generous deadlines."""
import asyncio
import json
import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
import websockets  # noqa: E402
from harness import CheckedGateway, Runner, metric, recv_json, validation  # noqa: E402

run = Runner()
EVENTS = 2000
LEGACY_EVENTS = 3000


def big_text(i, n=2000):
    return ("%d:" % i + "lorem ipsum dolor sit amet " * (n // 27 + 1))[:n]


def heavy(gw, key):
    """ten long validation messages: every later event carries them"""
    st, body = gw.publish(validation(key, [
        ("animal", "a%d" % i, "Error", [(big_text(i, 4000), "col%d" % i)]) for i in range(10)]))
    assert st == 200, body
    return body


async def stalled_client(gw, path):
    """A client that stops reading: a tiny receive buffer, a queue of one
    message, no keepalive pings."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", gw.port))
    s.setblocking(False)
    return await websockets.connect(gw.ws_base + path, sock=s, max_size=None, max_queue=1,
                                    read_limit=4096, write_limit=4096, ping_interval=None)


def publish_many(gw, docs, workers=8):
    """publishes docs concurrently (each answered after its fan-out); returns
    the answers"""
    def one(doc):
        st, body = gw.publish(doc)
        assert st == 200, body
        return body
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, docs))


def notes(keys, n, size=2000):
    return [{"type": "notification", "submission": keys[i % len(keys)],
             "notification": "%d:%s" % (i, big_text(i, size))} for i in range(n)]


def queue_gauges(gw):
    return metric(gw, "statusgate_send_queue_frames"), metric(gw, "statusgate_send_queue_bytes")


async def drain_until(ws, done, timeout=120):
    """reads frames (JSON) until done(frames) is true; returns them"""
    frames = []
    deadline = time.time() + timeout
    while not done(frames):
        assert time.time() < deadline, "stuck after %d frames: %r" % (
            len(frames), frames[-1:] and str(frames[-1])[:200])
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
    return frames


@run.test
async def test_legacy_reader_stalls_through_thousands_of_events():
    key = "conf-legacy"
    with CheckedGateway("--send-queue", "16") as gw:
        heavy(gw, key)
        slow = await stalled_client(gw, "/ws/submissions/%s/" % key)
        # one publisher: the index in each notification follows the seq;
        # legacy frames carry no summary, so long notifications fill the
        # TCP buffers
        answers = await asyncio.to_thread(publish_many, gw, notes([key], LEGACY_EVENTS, 4000), 1)
        last = max(a["seq"] for a in answers)
        # every event was fanned out (an HTTP publish is answered after it);
        # the stalled reader holds one live frame, not thousands
        frames, nbytes = queue_gauges(gw)
        assert frames <= 2, "%d frames queued for one stalled legacy reader" % frames
        assert nbytes <= 2 * 200000, nbytes
        conflated = metric(gw, "statusgate_conflated_total")
        assert conflated > LEGACY_EVENTS / 4, conflated
        assert metric(gw, "statusgate_lagging_closes_total") == 0
        state = gw.http("GET", "/api/v1/submissions/" + key)[1]
        assert state["seq"] == last
        # it reads again: a run of frames that ends with the latest state
        got = await drain_until(slow, lambda fs: fs and fs[-1]["notification_message"] ==
                                state["notification"])
        idx = [int(f["notification_message"].split(":")[0]) for f in got
               if f["notification_message"][:1].isdigit()]
        # the state on connecting, then each event that was not replaced
        assert len(got) == 1 + LEGACY_EVENTS - conflated, (len(got), conflated)
        print("  %d events, the stalled reader got %d frames (%d replaced)" %
              (LEGACY_EVENTS, len(got), conflated), flush=True)
        assert got[-1]["message"] == state["status"], (got[-1]["message"], state["status"])
        assert idx == sorted(idx), "frames out of order"
        assert len(idx) == len(set(idx)), "a frame twice"
        # and it is still open and live
        st, body = gw.publish({"type": "status", "submission": key, "status": "Ready",
                               "notification": "after the stall"})
        assert st == 200, body
        f = json.loads(await asyncio.wait_for(slow.recv(), 30))
        assert f["message"] == "Ready" and f["notification_message"] == "after the stall", f
        assert queue_gauges(gw)[0] == 0
        await slow.close()


async def subscribe(ws, key, sid, mode=None, since=None):
    cmd = {"op": "subscribe", "id": sid, "submission": key}
    if mode:
        cmd["mode"] = mode
    if since:
        cmd["since"] = since
    await ws.send(json.dumps(cmd))


class Reader:
    """A /ws client that reads everything and checks, per submission, that
    every event comes once and in order (mode all)."""

    def __init__(self, ws, last):
        self.ws, self.last, self.error, self.count = ws, dict(last), None, 0

    async def run(self):
        try:
            async for raw in self.ws:
                m = json.loads(raw)
                if m["op"] != "event":
                    continue
                k = m["submission"]
                assert m["seq"] == self.last[k] + 1, "%s: seq %d after %d" % (k, m["seq"], self.last[k])
                self.last[k] = m["seq"]
                self.count += 1
        except websockets.exceptions.ConnectionClosedOK:
            pass
        except Exception as e:
            self.error = e


@run.test
async def test_ws_latest_and_all_readers():
    keys = ["conf-a", "conf-b", "conf-c"]
    # a queue long enough for the mode-all reader to keep up with eight
    # publishers; latest subscriptions do not use it
    with CheckedGateway("--send-queue", "100000") as gw:
        base = {k: heavy(gw, k)["seq"] for k in keys}
        # a mode-all reader that keeps up, on all three
        fast_ws = await gw.ws("/ws")
        for i, k in enumerate(keys):
            await subscribe(fast_ws, k, i)
            assert (await recv_json(fast_ws))["op"] == "ack"
            assert (await recv_json(fast_ws))["op"] == "snapshot"
        fast = Reader(fast_ws, base)
        task = asyncio.create_task(fast.run())
        # a stalled reader with three latest subscriptions
        slow = await stalled_client(gw, "/ws")
        for i, k in enumerate(keys):
            await subscribe(slow, k, i, mode="latest")
        await asyncio.sleep(0.2)
        answers = await asyncio.to_thread(publish_many, gw, notes(keys, EVENTS))
        final = {k: max(a["seq"] for a in answers if a["submission"] == k) for k in keys}

        deadline = time.time() + 120
        while fast.last != final:
            assert fast.error is None, fast.error
            assert time.time() < deadline, (fast.last, final)
            await asyncio.sleep(0.05)
        assert fast.count == EVENTS, fast.count
        # the stalled one: at most one live frame per subscription queued
        frames, _ = queue_gauges(gw)
        assert frames <= 3 + 6, "%d frames queued (3 latest subscriptions)" % frames
        assert metric(gw, "statusgate_lagging_closes_total") == 0
        # it reads again: acks and snapshots, then per submission a run of
        # events in seq order, with jumps, ending on the latest
        last = {}

        def caught_up(fs):
            if fs and fs[-1]["op"] == "event":
                last[fs[-1]["submission"]] = fs[-1]["seq"]
            return all(last.get(k) == final[k] for k in keys)
        got = await drain_until(slow, caught_up)
        events = [f for f in got if f["op"] == "event"]
        assert [f["op"] for f in got[:6]].count("ack") == 3, [f["op"] for f in got[:6]]
        per = {k: [f["seq"] for f in events if f["submission"] == k] for k in keys}
        for k in keys:
            assert per[k] == sorted(set(per[k])), "%s out of order: %s" % (k, per[k][:20])
            assert per[k][-1] == final[k]
            state = gw.http("GET", "/api/v1/submissions/" + k)[1]
            ev = [f for f in events if f["submission"] == k][-1]
            assert (ev["status"], ev["notification"], ev["summary"]) == \
                (state["status"], state["notification"], state["summary"])
        assert len(events) < EVENTS / 2, "%d events: nothing was conflated?" % len(events)
        print("  %d events; the mode-all reader got all, the stalled latest one %d" %
              (EVENTS, len(events)), flush=True)
        # still open and live, and now it keeps up: no more jumps
        for k in keys:
            gw.publish({"type": "notification", "submission": k, "notification": "live " + k})
            m = await recv_json(slow, 30)
            assert m["op"] == "event" and m["seq"] == final[k] + 1 and m["notification"] == "live " + k, m
        await slow.close()
        await fast_ws.close()
        await task
        assert fast.error is None, fast.error


@run.test
async def test_mixed_connection_all_subscription_still_lags():
    """On one stalled connection, a latest subscription never counts
    against --send-queue, but a mode-all one does: when its events fill
    the queue the connection is told it lags and closed with 1013."""
    with CheckedGateway("--send-queue", "16") as gw:
        heavy(gw, "mix-latest")
        heavy(gw, "mix-all")
        slow = await stalled_client(gw, "/ws")
        await subscribe(slow, "mix-latest", 1, mode="latest")
        await subscribe(slow, "mix-all", 2, mode="all")
        await asyncio.sleep(0.2)
        await asyncio.to_thread(publish_many, gw, notes(["mix-latest"], 500))
        assert metric(gw, "statusgate_lagging_closes_total") == 0
        i = 0
        while metric(gw, "statusgate_lagging_closes_total") < 1:
            assert i < 5000, "the mode-all subscription was never found lagging"
            await asyncio.to_thread(publish_many, gw, notes(["mix-all"], 20))
            i += 20
        lag, code = None, None
        try:
            while True:
                raw = await asyncio.wait_for(slow.recv(), 60)
                if raw.startswith('{"op":"error"'):
                    lag = json.loads(raw)
        except websockets.exceptions.ConnectionClosed as e:
            code = e.code
        assert code == 1013, code
        assert lag and lag["code"] == "lagging", lag


@run.test
async def test_mode_values():
    with CheckedGateway() as gw:
        async with gw.ws("/ws") as ws:
            for i, mode in enumerate(["newest", 1, "ALL", ""]):
                await ws.send(json.dumps({"op": "subscribe", "id": i, "submission": "m", "mode": mode}))
                m = await recv_json(ws)
                assert m["op"] == "error" and m["id"] == i and m["code"] == "bad_request", m
                assert "mode" in m["reason"], m
            for i, mode in enumerate(["all", "latest", None]):
                await ws.send(json.dumps({"op": "subscribe", "id": 10 + i, "submission": "m%d" % i,
                                          "mode": mode}))
                m = await recv_json(ws)
                assert m["op"] == "ack" and m["id"] == 10 + i, m
                assert (await recv_json(ws))["op"] == "snapshot"
            # a latest subscription gets events in seq order, ending on the last
            for n in range(1, 6):
                gw.publish({"type": "notification", "submission": "m1", "notification": "n%d" % n})
            seqs = []
            while not seqs or seqs[-1] < 5:
                m = await recv_json(ws, 10)
                assert m["op"] == "event" and m["submission"] == "m1", m
                seqs.append(m["seq"])
            assert seqs == sorted(set(seqs)), seqs
            assert m["notification"] == "n5", m


if __name__ == "__main__":
    run.run()
