"""WebSocket protocol rules the gateway keeps with misbehaving peers (RFC
6455), tested with a hand-made client (harness.RawWS) that sends what
library clients will not and leaves the server's close unanswered."""
import json
import time

from harness import CheckedGateway as Gateway
from harness import RawWS, Runner, status

t = Runner()

CONT, TEXT, CLOSE, PING, PONG = 0x0, 0x1, 0x8, 0x9, 0xA


@t.test
def no_data_frame_follows_the_servers_close_frame():
    # invalid UTF-8 in a text frame: the gateway (lws) closes with 1007 and
    # waits for the close answer, which this client never sends; events of
    # the watched submission published meanwhile must not be written after
    # that close frame (RFC 6455 5.5.1)
    with Gateway() as gw:
        assert gw.publish(status("pc", "Loaded", "before"))[0] == 200
        for path in ("/ws/submissions/pc/", "/ws"):
            ws = RawWS(gw, path)
            try:
                assert ws.status == 101, ws.status
                if path == "/ws":
                    ws.send_frame(TEXT, json.dumps({"op": "subscribe", "id": 1,
                                                    "submission": "pc"}).encode())
                    assert json.loads(ws.recv_frame()[1])["op"] == "ack"
                op, payload = ws.recv_frame()          # the state (legacy) or snapshot
                assert op == TEXT, (op, payload)
                ws.send_frame(TEXT, b'{"op":"ping","x":"\xff\xfe"}')
                frames = []
                while True:
                    f = ws.recv_frame(5)
                    assert f is not None, "no close frame for invalid UTF-8: %r" % frames
                    frames.append(f)
                    if f[0] == CLOSE:
                        break
                assert int.from_bytes(frames[-1][1][:2], "big") == 1007, frames
                for i in range(5):
                    assert gw.publish(status("pc", "Loaded", "after %d" % i))[0] == 200
                late = []
                try:
                    while True:
                        f = ws.recv_frame(1.0)
                        if f is None:
                            break
                        late.append(f)
                except EOFError:
                    pass
                assert not [f for f in late if f[0] == TEXT], \
                    "data after the close frame: %r" % late
            finally:
                ws.close()
        # the gateway still serves the others
        assert gw.http("GET", "/healthz")[0] == 200


@t.test
def commands_longer_than_the_receive_buffer_are_reassembled():
    # lws hands a message over in pieces of its per-connection receive
    # buffer (128 bytes); the gateway puts them together, whether the
    # message came as one frame or as many fragments, and a control frame
    # of the largest size (125 bytes) still gets its answer whole
    with Gateway() as gw:
        assert gw.publish(status("big", "Loaded", "x"))[0] == 200
        ws = RawWS(gw, "/ws")
        try:
            assert ws.status == 101, ws.status
            long_id = "i" * 5000
            ws.send_frame(TEXT, json.dumps({"op": "ping", "id": long_id}).encode())
            pong = json.loads(ws.recv_frame()[1])
            assert pong == {"op": "pong", "id": long_id}, pong
            cmd = json.dumps({"op": "subscribe", "id": "f" * 700, "submission": "big"}).encode()
            parts = [cmd[i:i + 97] for i in range(0, len(cmd), 97)]
            for i, part in enumerate(parts):
                ws.send_frame(TEXT if i == 0 else CONT, part, fin=i == len(parts) - 1)
            ack = json.loads(ws.recv_frame()[1])
            assert ack["op"] == "ack" and ack["id"] == "f" * 700, ack
            assert json.loads(ws.recv_frame()[1])["op"] == "snapshot"
            ws.send_frame(PING, b"p" * 125)
            assert ws.recv_frame() == (PONG, b"p" * 125)
            for n in (1, 2, 3):   # after all that, short commands as usual
                ws.send_frame(TEXT, json.dumps({"op": "ping", "id": n}).encode())
                assert json.loads(ws.recv_frame()[1]) == {"op": "pong", "id": n}
        finally:
            ws.close()


@t.test
def late_legacy_joiners_get_the_latest_state_without_a_gap():
    # the first page of a submission reads its state from the store, later
    # ones get the frame the core keeps; either way the first frame is the
    # latest state and every later event follows it once, in order
    with Gateway() as gw:
        first = RawWS(gw, "/ws/submissions/late/")
        try:
            assert first.recv_frame(1.0) is None      # unknown: no frame
            for i in range(5):
                assert gw.publish(status("late", "Loaded", "n%d" % i))[0] == 200
            seen = [json.loads(first.recv_frame()[1])["notification_message"] for _ in range(5)]
            assert seen == ["n0", "n1", "n2", "n3", "n4"], seen
            pages = [RawWS(gw, "/ws/submissions/late/") for _ in range(3)]
            for ws in pages:
                f = json.loads(ws.recv_frame()[1])
                assert f["notification_message"] == "n4" and f["message"] == "Loaded", f
            assert gw.publish(status("late", "Ready", "n5"))[0] == 200
            for ws in pages + [first]:
                f = json.loads(ws.recv_frame()[1])
                assert f["notification_message"] == "n5" and f["message"] == "Ready", f
                assert ws.recv_frame(0.3) is None
            for ws in pages:
                ws.close()
            # every page gone, then a new one: the store is read again
            first.close()
            time.sleep(0.3)
            again = RawWS(gw, "/ws/submissions/late/")
            f = json.loads(again.recv_frame()[1])
            assert f["notification_message"] == "n5", f
            again.close()
        finally:
            first.close()


@t.test
def a_silent_peer_is_pinged_and_one_that_answers_stays():
    # the core pings a WebSocket that said nothing for 30 s (lws's own
    # validity timers are off: they cost a walk of every connection per
    # connect) and drops one still silent at 60 s; a pong alone counts as a
    # word: that connection is pinged again instead
    with Gateway() as gw:
        ws = RawWS(gw, "/ws", timeout=80)
        quiet = RawWS(gw, "/ws", timeout=80)
        try:
            t0 = time.time()
            f = ws.recv_frame(40)
            assert f is not None and f[0] == PING, f
            assert 28 <= time.time() - t0 <= 36, time.time() - t0
            ws.send_frame(PONG, f[1])
            assert quiet.recv_frame(5)[0] == PING     # the other one, too
            f = ws.recv_frame(40)                     # 30 s after the pong: again
            assert f is not None and f[0] == PING, f
            ws.send_frame(PONG, f[1])
            ws.send_frame(TEXT, b'{"op":"ping","id":9}')
            assert json.loads(ws.recv_frame()[1]) == {"op": "pong", "id": 9}
            try:                                      # the silent one is gone
                while quiet.recv_frame(10) is not None:
                    pass
                raise AssertionError("the silent connection was not dropped")
            except EOFError:
                pass
        finally:
            ws.close()
            quiet.close()


t.run()
