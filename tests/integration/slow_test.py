"""Slow consumers (SPEC 2.3): with a small --send-queue, a client that stops
reading is told it lags ({"op":"error","code":"lagging"}) and closed with
1013, while 50 clients of the same group that keep reading receive every
event, in order. Large events (long notification and validation messages in
the summary) fill the stalled client's TCP buffers quickly. Nothing here
measures time: the test waits for conditions, with generous deadlines."""
import asyncio
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import websockets  # noqa: E402
from harness import Gateway, Runner, recv_json, validation  # noqa: E402

run = Runner()
KEY = "big"
FAST = 50
WINDOW = 8            # events in flight to the fast clients, below --send-queue
SEQ = re.compile(r'^\{"op":"(\w+)".*?"seq":(\d+)')


def big_text(i, n=4000):
    return ("%d:" % i + "lorem ipsum dolor sit amet " * (n // 27 + 1))[:n]


def metric(gw, name):
    st, text = gw.http("GET", "/metrics")
    assert st == 200, st
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric %s" % name)


async def stalled_client(gw, path):
    """A client that never reads: a tiny receive buffer, a queue of one
    message, no keepalive pings."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", gw.port))
    s.setblocking(False)
    return await websockets.connect(gw.ws_base + path, sock=s, max_size=None, max_queue=1,
                                    read_limit=4096, write_limit=4096, ping_interval=None)


class Fast:
    """A /ws client that reads everything and checks each event's seq."""

    def __init__(self, ws, last):
        self.ws, self.last, self.error = ws, last, None

    async def run(self):
        try:
            async for raw in self.ws:
                m = SEQ.match(raw)
                assert m and m.group(1) == "event", raw[:200]
                seq = int(m.group(2))
                assert seq == self.last + 1, "fast client: seq %d after %d" % (seq, self.last)
                self.last = seq
        except websockets.exceptions.ConnectionClosedOK:
            pass
        except Exception as e:
            self.error = e


async def drain_stalled(ws, first_seq):
    """Reads what a stalled client was still sent: a run of events without a
    gap, then (on /ws) the lagging error, then a close. Returns
    (events, lagging frame or None, close code)."""
    events, last, lag = 0, first_seq, None
    try:
        while True:
            raw = await asyncio.wait_for(ws.recv(), 60)
            if raw.startswith('{"op":"error"'):
                lag = json.loads(raw)
                continue
            assert lag is None, "a frame after the lagging error: %r" % raw[:200]
            d = json.loads(raw)
            if d.get("op") in ("ack", "snapshot"):
                continue
            if d.get("op") == "event":
                assert d["seq"] == last + 1, "stalled client: seq %d after %d" % (d["seq"], last)
                last = d["seq"]
            events += 1
    except websockets.exceptions.ConnectionClosed as e:
        return events, lag, e.code


@run.test
async def test_one_stalled_client_among_fifty():
    with Gateway("--send-queue", "16") as gw:
        # ten long validation messages: every event carries them in its summary
        st, body = gw.publish(validation(KEY, [
            ("animal", "a%d" % i, "Error", [(big_text(i), "col%d" % i)]) for i in range(10)]))
        assert st == 200, body
        base = body["seq"]
        fast = []
        for i in range(FAST):
            ws = await gw.ws("/ws")
            await ws.send(json.dumps({"op": "subscribe", "id": i, "submission": KEY}))
            ack = await recv_json(ws)
            assert ack["op"] == "ack" and ack["seq"] == base, ack
            snap = await recv_json(ws)
            assert snap["op"] == "snapshot", snap
            fast.append(Fast(ws, base))
        slow = await stalled_client(gw, "/ws")
        await slow.send(json.dumps({"op": "subscribe", "id": "s", "submission": KEY}))
        slow_legacy = await stalled_client(gw, "/ws/submissions/%s/" % KEY)
        # the stalled clients' ack, snapshot and legacy state are read by the
        # library into its one-message queue and its buffer; then they stop.
        tasks = [asyncio.create_task(f.run()) for f in fast]

        async def publish(i):
            st, body = await asyncio.to_thread(
                gw.publish, {"type": "notification", "submission": KEY,
                             "notification": big_text(i)})
            assert st == 200, body
            return body["seq"]

        async def wait_fast(seq):
            deadline = time.time() + 120
            while min(f.last for f in fast) < seq:
                for f in fast:
                    assert f.error is None, f.error
                assert time.time() < deadline, "fast clients stalled at %d" % min(f.last for f in fast)
                await asyncio.sleep(0.005)

        # publish until the gateway has given up on both stalled clients,
        # never letting the fast clients fall more than WINDOW events behind.
        # The /ws one (40 kB events) lags long before the legacy one (frames
        # of a few hundred bytes fill its TCP buffers slowly); each is read
        # from as soon as it was given up on, as the gateway closes one that
        # still does not read 5 s after its close was due (1006)
        seq, i = base, 0
        drains = []
        while metric(gw, "statusgate_lagging_closes_total") < 2:
            assert i < 20000, "the stalled clients were never closed"
            if not drains and metric(gw, "statusgate_lagging_closes_total") >= 1:
                drains.append(asyncio.create_task(drain_stalled(slow, base)))
            await wait_fast(seq - WINDOW)
            seq = await publish(i)
            i += 1
        # read what the stalled ones were still sent, while publishing goes on
        if not drains:
            drains.append(asyncio.create_task(drain_stalled(slow, base)))
        drains.append(asyncio.create_task(drain_stalled(slow_legacy, base)))
        for _ in range(30):
            await wait_fast(seq - WINDOW)
            seq = await publish(i)
            i += 1
        await wait_fast(seq)
        for f in fast:
            assert f.error is None, f.error
            assert f.last == seq, (f.last, seq)
        n, lag, code = await drains[0]
        assert code == 1013, code
        assert lag and lag["op"] == "error" and lag["code"] == "lagging", lag
        assert n < seq - base, "the stalled client got everything?"
        print("  %d events published; the stalled /ws client got %d before it was closed"
              % (seq - base, n), flush=True)
        n2, lag2, code2 = await drains[1]
        assert code2 == 1013, code2
        assert lag2 is None, lag2      # the legacy format has no error frame
        assert metric(gw, "statusgate_lagging_closes_total") == 2
        # the group is intact for the others
        for f in fast:
            await f.ws.close()
        await asyncio.gather(*tasks)
        # a lagging client reconnects with since and recovers the rest
        async with gw.ws("/ws") as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "submission": KEY,
                                      "since": {"epoch": body["epoch"], "seq": base + n}}))
            ack = await recv_json(ws)
            assert ack["op"] == "ack" and ack["seq"] == seq, ack
            for s in range(base + n + 1, seq + 1):
                ev = await recv_json(ws, 30)
                assert ev["op"] == "event" and ev["seq"] == s, (s, ev.get("op"), ev.get("seq"))


@run.test
async def test_the_byte_bound_closes_a_reader_of_large_events():
    """The send queue is bounded in bytes too: with a frame bound far away,
    a stalled reader of 40 kB events is closed with 1013 once what is queued
    for it passes --send-queue-bytes, so its memory is bounded by bytes, not
    by a count of frames of any size."""
    with Gateway("--send-queue", "100000", "--send-queue-bytes", "262144") as gw:
        st, body = gw.publish(validation(KEY, [
            ("animal", "a%d" % i, "Error", [(big_text(i), "col%d" % i)]) for i in range(10)]))
        assert st == 200, body
        base = body["seq"]
        slow = await stalled_client(gw, "/ws")
        await slow.send(json.dumps({"op": "subscribe", "id": "s", "submission": KEY}))
        i = 0
        while metric(gw, "statusgate_lagging_closes_total") < 1:
            # far below the frame bound: only the byte bound can close it
            assert i < 2000, "the stalled client was never closed"
            st, body = gw.publish({"type": "notification", "submission": KEY,
                                   "notification": big_text(i, 100)})
            assert st == 200, body
            i += 1
        n, lag, code = await drain_stalled(slow, base)
        assert code == 1013, code
        assert lag and lag["code"] == "lagging", lag
        print("  closed after %d events of about 40 kB (%d received)" % (i, n), flush=True)
        assert "is not reading" in gw.logs()


@run.test
async def test_pipelined_commands_read_late():
    """A client that sends many commands without reading the replies is not
    buffered without end: the gateway stops reading its commands while the
    replies pile up (it sets its own pace) and it is not closed for it. When
    it reads, every reply comes, in order; the others are unaffected."""
    N = 20000
    with Gateway("--send-queue", "16", "--history", "5") as gw:
        async with gw.ws("/ws") as other:
            await other.send(json.dumps({"op": "subscribe", "id": 1, "submission": "o"}))
            assert (await recv_json(other))["op"] == "ack"
            assert (await recv_json(other))["op"] == "snapshot"
            flood = await stalled_client(gw, "/ws")

            async def send_all():
                for i in range(N):
                    await flood.send('{"op":"ping","id":%d}' % i)
            sender = asyncio.create_task(send_all())
            # while it is stuck, the gateway serves the others
            for n in range(5):
                gw.publish({"type": "notification", "submission": "o", "notification": "n%d" % n})
                m = await recv_json(other, 30)
                assert m["op"] == "event" and m["notification"] == "n%d" % n, m
            # it reads: every pong, in order, and the connection stays open
            for i in range(N):
                m = json.loads(await asyncio.wait_for(flood.recv(), 60))
                assert m == {"op": "pong", "id": i}, (i, m)
            await asyncio.wait_for(sender, 60)
            assert metric(gw, "statusgate_lagging_closes_total") == 0
            await flood.close()

if __name__ == "__main__":
    run.run()
