"""Gap-free recovery on /ws (SPEC 2.2, 2.3): a client that reconnects with
since {epoch, seq} gets exactly the events it missed, in order, without a gap
or a duplicate, then live events, including those published while its replay
was being sent; a different epoch or pruned events give a snapshot. Checked
event by event while a publisher keeps publishing over HTTP."""
import asyncio
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Gateway, RawWS, Runner, recv_json, expect_silence, status, validation  # noqa: E402

run = Runner()


class Publisher(threading.Thread):
    """Publishes notification "n<i>" to one submission over HTTP, as fast as
    the gateway answers, until stopped. Remembers the seq of each publish."""

    def __init__(self, gw, key, pause=0):
        super().__init__(daemon=True)
        self.gw, self.key, self.pause = gw, key, pause
        self.stop_flag = threading.Event()
        self.seqs = []            # seq of publish i
        self.epoch = None
        self.error = None

    def run(self):
        i = 0
        try:
            while not self.stop_flag.is_set():
                st, body = self.gw.publish({"type": "notification", "submission": self.key,
                                            "notification": "n%d" % i})
                assert st == 200 and body["accepted"] and not body["duplicate"], (st, body)
                self.epoch = body["epoch"]
                self.seqs.append(body["seq"])
                i += 1
                if self.pause:
                    time.sleep(self.pause)
        except Exception as e:   # reported by stop()
            self.error = e

    def wait_count(self, n, timeout=60):
        deadline = time.time() + timeout
        while len(self.seqs) < n:
            assert self.error is None, self.error
            assert time.time() < deadline, "publisher stalled at %d" % len(self.seqs)
            time.sleep(0.01)

    def stop(self):
        self.stop_flag.set()
        self.join(60)
        assert self.error is None, self.error
        return self.seqs[-1]


async def subscribe(ws, key, since=None, id=1, **extra):
    cmd = {"op": "subscribe", "id": id, "submission": key}
    if since:
        cmd["since"] = since
    cmd.update(extra)
    await ws.send(json.dumps(cmd))
    ack = await recv_json(ws, 10)
    assert ack["op"] == "ack" and ack["id"] == id and ack["submission"] == key, ack
    return ack


class Follower:
    """Checks a stream of event frames: seq contiguous, notification n<i>
    following publish order."""

    def __init__(self, last_seq):
        self.last = last_seq
        self.count = 0

    def take(self, m):
        assert m["op"] == "event", m
        assert m["seq"] == self.last + 1, "gap or duplicate: got seq %d after %d" % (m["seq"], self.last)
        self.last = m["seq"]
        self.count += 1

    async def read_until(self, ws, seq, timeout=30):
        while self.last < seq:
            self.take(await recv_json(ws, timeout))


@run.test
async def test_reconnect_replays_exactly_what_was_missed():
    with Gateway() as gw:
        key = "rec1"
        gw.publish(status(key, "Loaded", "start"))
        legacy = await gw.ws("/ws/submissions/%s/" % key)   # the legacy endpoint, beside it
        first = await recv_json(legacy)
        assert first["message"] == "Loaded", first
        pub = Publisher(gw, key, pause=0.001)
        ws = await gw.ws("/ws")
        ack = await subscribe(ws, key)
        epoch = ack["epoch"]
        snap = await recv_json(ws)
        assert snap["op"] == "snapshot" and snap["seq"] == ack["seq"], snap
        f = Follower(snap["seq"])
        pub.start()
        pub.wait_count(30)
        await f.read_until(ws, ack["seq"] + 20)
        await ws.close()
        disconnected_at = f.last
        # it misses events while it is away
        n = len(pub.seqs)
        pub.wait_count(n + 100)
        ws = await gw.ws("/ws")
        ack = await subscribe(ws, key, since={"epoch": epoch, "seq": disconnected_at})
        assert ack["epoch"] == epoch, ack
        assert ack["seq"] > disconnected_at + 100, (ack, disconnected_at)
        # replay then live, with publishing going on all the time
        await f.read_until(ws, ack["seq"] + 50)
        last = pub.stop()
        await f.read_until(ws, last)
        await expect_silence(ws, 0.5)
        assert f.last == last and f.count == last - snap["seq"], (f.count, last)
        await ws.close()
        # the legacy client got every change too, in order
        for i in range(len(pub.seqs)):
            m = await recv_json(legacy, 30)
            assert m["notification_message"] == "n%d" % i, (i, m)
        await legacy.close()


@run.test
async def test_many_reconnects_while_publishing():
    """Disconnect and reconnect over and over, each time resuming with the
    last seq seen; across all connections the stream has no gap or duplicate."""
    with Gateway() as gw:
        key = "rec2"
        # a little pause keeps what a client misses within --history
        pub = Publisher(gw, key, pause=0.002)
        pub.start()
        pub.wait_count(5)
        ws = await gw.ws("/ws")
        ack = await subscribe(ws, key)
        epoch = ack["epoch"]
        snap = await recv_json(ws)
        assert snap["op"] == "snapshot", snap
        f = Follower(snap["seq"])
        for round_ in range(15):
            # catch up with what was published by now (replay, then live)
            await f.read_until(ws, pub.seqs[-1])
            await ws.close()
            # sometimes reconnect at once, sometimes after missing some
            if round_ % 2:
                pub.wait_count(len(pub.seqs) + 10)
            ws = await gw.ws("/ws")
            ack = await subscribe(ws, key, since={"epoch": epoch, "seq": f.last}, id=round_)
            assert ack["epoch"] == epoch
        last = pub.stop()
        await f.read_until(ws, last)
        await expect_silence(ws, 0.3)
        await ws.close()


@run.test
async def test_other_epoch_gets_snapshot():
    with Gateway() as gw:
        for i in range(5):
            gw.publish(status("e1", "Loaded", "p%d" % i))
        async with gw.ws("/ws") as ws:
            ack = await subscribe(ws, "e1", since={"epoch": "some-other-store", "seq": 2})
            snap = await recv_json(ws)
            assert snap["op"] == "snapshot" and snap["seq"] == ack["seq"] == 5, snap
            assert snap["notification"] == "p4", snap
            gw.publish(status("e1", "Ready", "live"))
            ev = await recv_json(ws)
            assert ev["op"] == "event" and ev["seq"] == 6 and ev["status"] == "Ready", ev


@run.test
async def test_since_edge_cases():
    with Gateway() as gw:
        for i in range(5):
            gw.publish(status("e2", "Loaded", "p%d" % i))
        _, state = gw.http("GET", "/api/v1/submissions/e2")
        epoch = state["epoch"]
        async with gw.ws("/ws") as ws:
            # nothing missed: no snapshot, no replay, then live events
            await subscribe(ws, "e2", since={"epoch": epoch, "seq": 5})
            await expect_silence(ws, 0.3)
            gw.publish(status("e2", "Ready", "live"))
            ev = await recv_json(ws)
            assert ev["op"] == "event" and ev["seq"] == 6, ev
            # since ahead of the store (a client confused about the epoch): snapshot
            await subscribe(ws, "e2", since={"epoch": epoch, "seq": 99}, id=2)
            snap = await recv_json(ws)
            assert snap["op"] == "snapshot" and snap["seq"] == 6, snap
            # since 0 on a submission with its whole history stored: full replay
            await subscribe(ws, "e2", since={"epoch": epoch, "seq": 0}, id=3)
            for s in range(1, 7):
                ev = await recv_json(ws)
                assert ev["op"] == "event" and ev["seq"] == s, ev
            await expect_silence(ws, 0.3)
            # a submission that does not exist yet: a snapshot with seq 0, then its first event
            ack = await subscribe(ws, "fresh", since={"epoch": epoch, "seq": 0}, id=4)
            assert ack["seq"] == 0, ack
            await expect_silence(ws, 0.3)
            gw.publish(status("fresh", "Waiting"))
            ev = await recv_json(ws)
            assert ev["op"] == "event" and ev["seq"] == 1 and ev["submission"] == "fresh", ev


@run.test
async def test_pruned_events_give_snapshot():
    with Gateway("--history", "5") as gw:
        for i in range(20):
            st, body = gw.publish(status("p1", "Loaded", "p%d" % i))
            assert st == 200, body
        epoch = body["epoch"]
        async with gw.ws("/ws") as ws:
            # events 16..20 are kept: since 15 replays them
            await subscribe(ws, "p1", since={"epoch": epoch, "seq": 15})
            for s in range(16, 21):
                ev = await recv_json(ws)
                assert ev["op"] == "event" and ev["seq"] == s, ev
                assert ev["notification"] == "p%d" % (s - 1), ev
            await expect_silence(ws, 0.3)
            # event 15 is gone: since 14 cannot be replayed, so a snapshot
            ack = await subscribe(ws, "p1", since={"epoch": epoch, "seq": 14}, id=2)
            snap = await recv_json(ws)
            assert snap["op"] == "snapshot" and snap["seq"] == 20 == ack["seq"], snap
            assert snap["notification"] == "p19", snap
            await subscribe(ws, "p1", since={"epoch": epoch, "seq": 2}, id=3)
            snap = await recv_json(ws)
            assert snap["op"] == "snapshot" and snap["seq"] == 20, snap
            gw.publish(status("p1", "Ready", "live"))
            ev = await recv_json(ws)
            assert ev["op"] == "event" and ev["seq"] == 21, ev
            await expect_silence(ws, 0.3)


@run.test
async def test_recovery_across_restart_and_new_store():
    with Gateway() as gw:
        for i in range(3):
            st, body = gw.publish(status("rs", "Loaded", "p%d" % i))
        epoch = body["epoch"]
        gw.stop()
        # same store: same epoch, and what was published while the client
        # was away (here: before the restart) is replayed
        gw2 = Gateway(db=gw.db, workdir=gw.workdir).start()
        try:
            st, body = gw2.publish(status("rs", "Ready", "after"))
            assert body["epoch"] == epoch and body["seq"] == 4, body
            async with gw2.ws("/ws") as ws:
                await subscribe(ws, "rs", since={"epoch": epoch, "seq": 1})
                for s in (2, 3, 4):
                    ev = await recv_json(ws)
                    assert ev["op"] == "event" and ev["seq"] == s, ev
                await expect_silence(ws, 0.3)
        finally:
            gw2.stop()
    # a store created anew has another epoch: the old since gives a snapshot
    with Gateway() as gw3:
        st, body = gw3.publish(status("rs", "Waiting", "new"))
        assert body["epoch"] != epoch, body
        async with gw3.ws("/ws") as ws:
            await subscribe(ws, "rs", since={"epoch": epoch, "seq": 0})
            snap = await recv_json(ws)
            assert snap["op"] == "snapshot" and snap["seq"] == 1 and snap["status"] == "Waiting", snap


@run.test
async def test_long_replay_with_a_small_send_queue():
    """A replay longer than --send-queue is what the client asked for: live
    events arriving while it is still queued (fewer than --send-queue of
    them) must not make it "lagging"."""
    with Gateway("--send-queue", "64") as gw:
        key = "long"
        pad = "x" * 3000      # big enough that the replay outlasts the socket buffers
        for i in range(1000):
            st, body = gw.publish({"type": "notification", "submission": key,
                                   "notification": "n%d %s" % (i, pad)})
            assert st == 200, body
        epoch = body["epoch"]
        pub = Publisher(gw, key, pause=0.01)
        async with gw.ws("/ws") as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "submission": key,
                                      "since": {"epoch": epoch, "seq": 0}}))
            pub.start()       # live events land behind the queued replay
            ack = await recv_json(ws, 10)
            assert ack["op"] == "ack", ack
            f = Follower(0)
            await f.read_until(ws, 1000)
            last = pub.stop()
            await f.read_until(ws, last)
            await expect_silence(ws, 0.3)


@run.test
def test_history_pruned_during_a_paged_replay_gives_a_snapshot():
    """A replay is read from the store a page at a time, as the client reads.
    If the client is so slow that the events it still needs are pruned before
    their page is read, the replay must not jump the hole: it ends with a
    snapshot of the current state, then live events."""
    with Gateway("--history", "600") as gw:
        key = "pruned-mid"
        # ten long validation messages: every event carries them in its
        # summary (about 40 kB), so a page of them outgrows the kernel's
        # socket buffers and the replay has to wait for the client
        st, body = gw.publish(validation(key, [
            ("animal", "a%d" % i, "Error", [("%d %s" % (i, "m" * 3990), "c%d" % i)])
            for i in range(10)]))
        assert st == 200, body
        for i in range(1, 600):
            st, body = gw.publish({"type": "notification", "submission": key,
                                   "notification": "n%d" % i})
            assert st == 200, body
        epoch = body["epoch"]
        ws = RawWS(gw, "/ws", rcvbuf=4096)
        try:
            ws.send_frame(0x1, json.dumps({"op": "subscribe", "id": 1, "submission": key,
                                           "since": {"epoch": epoch, "seq": 0}}).encode())
            time.sleep(0.5)   # the first page is queued; the client reads nothing yet
            for i in range(600, 1000):   # events 601..1000: 1..400 are pruned meanwhile
                assert gw.publish({"type": "notification", "submission": key,
                                   "notification": "n%d" % i})[0] == 200
            frames = []
            while True:
                f = ws.recv_frame(5)
                assert f is not None, "the replay stalled after %d frames" % len(frames)
                m = json.loads(f[1])
                frames.append(m)
                if m["op"] == "snapshot" or (m["op"] == "event" and m["seq"] == 1000):
                    break
            assert frames[0]["op"] == "ack" and frames[0]["seq"] == 600, frames[0]
            events = [m["seq"] for m in frames[1:] if m["op"] == "event"]
            # events from the first page(s), gap-free from 1, and then ...
            assert events == list(range(1, len(events) + 1)), events[:5] + events[-5:]
            assert len(events) < 600, "the whole history arrived: nothing was pruned"
            # ... a snapshot of the state after all 1000, never a hole
            assert frames[-1]["op"] == "snapshot" and frames[-1]["seq"] == 1000, frames[-1]
            assert gw.publish({"type": "notification", "submission": key,
                               "notification": "live"})[0] == 200
            f = ws.recv_frame(5)
            m = json.loads(f[1])
            assert m["op"] == "event" and m["seq"] == 1001, m
        finally:
            ws.close()


@run.test
async def test_a_filtered_replay_goes_on_past_pages_it_keeps_nothing_of():
    """A replay with a filter that drops every event of several pages still
    reaches the events it keeps (a page that queues nothing must not stall
    the replay)."""
    with Gateway("--history", "5000") as gw:
        key = "filtered"
        gw.publish(status(key, "Loaded", "first"))
        for i in range(1000):
            gw.publish({"type": "notification", "submission": key, "notification": "n%d" % i})
        st, body = gw.publish(status(key, "Ready", "last"))
        assert st == 200 and body["seq"] == 1002, body
        async with gw.ws("/ws") as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "submission": key,
                                      "since": {"epoch": body["epoch"], "seq": 1},
                                      "filter": {"kinds": ["status"]}}))
            ack = await recv_json(ws, 10)
            assert ack["op"] == "ack" and ack["seq"] == 1002, ack
            m = await recv_json(ws, 10)
            assert m["op"] == "event" and m["seq"] == 1002 and m["status"] == "Ready", m
            # then live, still filtered
            gw.publish({"type": "notification", "submission": key, "notification": "x"})
            gw.publish(status(key, "Completed"))
            m = await recv_json(ws, 10)
            assert m["op"] == "event" and m["seq"] == 1004 and m["status"] == "Completed", m


@run.test
async def test_a_history_of_many_pages_is_replayed_whole():
    """--history beyond one page (256 events): the replay goes on page after
    page, gap-free, while live events keep coming, then goes live."""
    with Gateway("--history", "5000") as gw:
        key = "pages"
        for i in range(3000):
            st, body = gw.publish({"type": "notification", "submission": key,
                                   "notification": "n%d" % i})
            assert st == 200, body
        epoch = body["epoch"]
        pub = Publisher(gw, key, pause=0.005)
        async with gw.ws("/ws") as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "submission": key,
                                      "since": {"epoch": epoch, "seq": 10}}))
            pub.start()
            ack = await recv_json(ws, 10)
            assert ack["op"] == "ack", ack
            f = Follower(10)
            await f.read_until(ws, 3000)
            last = pub.stop()
            await f.read_until(ws, last)
            await expect_silence(ws, 0.3)


if __name__ == "__main__":
    run.run()
