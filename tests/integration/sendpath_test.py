"""The send path (hub.c): frames queued in a loop turn are written before the
loop sleeps, each connection's in one sendmsg of whole frames, without lws's
WRITEABLE round trip; a frame the socket takes only part of is finished by
lws before anything else. These tests make the socket take parts, reset
connections in the middle of a fan-out, and check that nothing is written
after a close frame. Hand-made clients (harness.RawWS) read raw frames."""
import json
import socket
import struct
import threading
import time

from harness import CheckedGateway as Gateway
from harness import RawWS, Runner, metric, status, validation, wait_for

t = Runner()

TEXT, CLOSE = 0x1, 0x8


def note(i, n):
    return ("%d:" % i + "abcdefghij" * (n // 10 + 1))[:n]


def notify(key, i, n):
    return {"type": "notification", "submission": key, "notification": note(i, n)}


def subscribe(ws, key):
    ws.send_frame(TEXT, json.dumps({"op": "subscribe", "id": 1, "submission": key}).encode())
    ack = json.loads(ws.recv_frame()[1])
    assert ack["op"] == "ack", ack
    snap = json.loads(ws.recv_frame()[1])
    assert snap["op"] == "snapshot", snap
    return ack["seq"]


@t.test
def frames_cut_short_by_a_full_socket_arrive_whole_and_in_order():
    # a reader with a 4 kB receive buffer that reads nothing while 160
    # events of about 40 kB are fanned out (ten long validation messages in
    # every event's summary): once the kernel holds its 128 kB of unsent
    # data (TCP_NOTSENT_LOWAT) the socket takes parts of frames, and lws
    # keeps the rest; once it reads, every frame is whole and in seq order,
    # and a fast reader of the same group got them all meanwhile
    with Gateway("--send-queue", "400", "--send-queue-bytes", "67108864") as gw:
        st, body = gw.publish(validation("cut", [
            ("animal", "a%d" % i, "Error", [(note(i, 4000), "col%d" % i)]) for i in range(10)]))
        assert st == 200, body
        slow = RawWS(gw, "/ws", rcvbuf=4096, timeout=30)
        fast = RawWS(gw, "/ws", timeout=30)
        legacy = RawWS(gw, "/ws/submissions/cut/", rcvbuf=4096, timeout=30)
        try:
            base = subscribe(slow, "cut")
            assert subscribe(fast, "cut") == base
            assert json.loads(legacy.recv_frame()[1])["validation_message"]["animals"] == 10
            n = 160
            for i in range(n):
                assert gw.publish(notify("cut", i, 4000))[0] == 200
                ev = json.loads(fast.recv_frame(10)[1])
                assert ev["op"] == "event" and ev["seq"] == base + 1 + i, ev
                assert len(json.dumps(ev)) > 40000
            for i in range(n):
                f = slow.recv_frame(20)
                assert f is not None and f[0] == TEXT, f
                ev = json.loads(f[1])
                assert ev["seq"] == base + 1 + i and ev["notification"] == note(i, 4000), \
                    (i, ev.get("seq"))
            # the legacy page wants the latest state, not every event: a
            # newer state replaced the one still queued, so it gets whole
            # frames of ever newer states, ending with the last one
            last = -1
            while last < n - 1:
                f = legacy.recv_frame(20)
                assert f is not None and f[0] == TEXT, f
                msg = json.loads(f[1])["notification_message"]
                i = int(msg.split(":")[0])
                assert i > last and msg == note(i, 4000), (last, msg[:20])
                last = i
            assert slow.recv_frame(0.5) is None and legacy.recv_frame(0.1) is None
        finally:
            for ws in (slow, fast, legacy):
                ws.close()


@t.test
def resets_in_the_middle_of_a_fanout_hurt_no_one_else():
    # 40 watchers of one submission; while 300 events are fanned out, half of
    # them (with small buffers, so that frames wait for them) reset their
    # connections; the other half gets every event once and in order, and
    # the gateway counts the reset ones out
    with Gateway() as gw:
        assert gw.publish(status("rst", "Loaded", "start"))[0] == 200
        keep = [RawWS(gw, "/ws/submissions/rst/", timeout=30) for _ in range(20)]
        drop = [RawWS(gw, "/ws/submissions/rst/", rcvbuf=4096, timeout=30) for _ in range(20)]
        for ws in keep + drop:
            assert json.loads(ws.recv_frame()[1])["message"] == "Loaded"
        got = [[] for _ in keep]
        errors = []

        def reader(k):
            try:
                while len(got[k]) < 300:
                    f = keep[k].recv_frame(30)
                    assert f is not None and f[0] == TEXT, f
                    got[k].append(json.loads(f[1])["notification_message"])
            except Exception as e:       # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=reader, args=(k,)) for k in range(len(keep))]
        for th in threads:
            th.start()
        for i in range(300):
            assert gw.publish(notify("rst", i, 2000))[0] == 200
            if i == 100:
                for ws in drop:          # RST: SO_LINGER 0, then close
                    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
                    ws.close()
        for th in threads:
            th.join(60)
        assert not errors, errors[:3]
        want = [note(i, 2000) for i in range(300)]
        for k in range(len(keep)):
            assert got[k] == want, (k, len(got[k]))
        wait_for(lambda: metric(gw, "statusgate_connections") == len(keep),
                 "the reset connections counted out", timeout=30, gw=gw)
        assert gw.http("GET", "/healthz")[0] == 200
        for ws in keep:
            ws.close()


@t.test
def nothing_is_written_after_the_gateways_own_close_frame():
    # a binary frame on the legacy socket is closed with 1003 (text frames
    # only); the peer never answers the close, and events published
    # meanwhile must not follow the close frame (RFC 6455 5.5.1); the other
    # watcher gets them
    with Gateway() as gw:
        assert gw.publish(status("cl", "Loaded", "start"))[0] == 200
        bad = RawWS(gw, "/ws/submissions/cl/")
        other = RawWS(gw, "/ws/submissions/cl/")
        try:
            assert json.loads(bad.recv_frame()[1])["message"] == "Loaded"
            assert json.loads(other.recv_frame()[1])["message"] == "Loaded"
            bad.send_frame(0x2, b'\x00\x01')
            frames = []
            while True:
                f = bad.recv_frame(5)
                assert f is not None, "no close frame: %r" % frames
                frames.append(f)
                if f[0] == CLOSE:
                    break
            assert int.from_bytes(frames[-1][1][:2], "big") == 1003, frames
            for i in range(20):
                assert gw.publish(status("cl", "Loaded", "after %d" % i))[0] == 200
            for i in range(20):
                f = other.recv_frame()
                assert json.loads(f[1])["notification_message"] == "after %d" % i
            late = []
            try:
                while True:
                    f = bad.recv_frame(1.0)
                    if f is None:
                        break
                    late.append(f)
            except EOFError:
                pass
            assert not [f for f in late if f[0] == TEXT], "data after the close frame: %r" % late
        finally:
            bad.close()
            other.close()


@t.test
def a_legacy_reader_that_keeps_up_gets_every_event_of_a_burst():
    # eight publishers at once commit their events in shared batches, so
    # several events of one submission are fanned out in the same loop turn;
    # a legacy page that reads (its socket never fills) is not behind, and
    # gets every one of them, in seq order, not only the latest state
    # (conflation is for readers that are behind)
    from concurrent.futures import ThreadPoolExecutor
    with Gateway() as gw:
        assert gw.publish(status("burst", "Loaded", "start"))[0] == 200
        page = RawWS(gw, "/ws/submissions/burst/", timeout=30)
        try:
            assert json.loads(page.recv_frame()[1])["message"] == "Loaded"
            n = 400
            with ThreadPoolExecutor(8) as ex:
                codes = list(ex.map(lambda i: gw.publish(notify("burst", i, 100))[0], range(n)))
            assert codes == [200] * n, codes
            seen = []
            while len(seen) < n:
                f = page.recv_frame(20)
                assert f is not None and f[0] == TEXT, (len(seen), f)
                seen.append(int(json.loads(f[1])["notification_message"].split(":")[0]))
            assert sorted(seen) == list(range(n)), seen[:20]
            assert metric(gw, "statusgate_conflated_total") == 0
            assert page.recv_frame(0.3) is None
        finally:
            page.close()


t.run()
