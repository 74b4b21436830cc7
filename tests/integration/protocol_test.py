"""WebSocket protocol rules the gateway keeps with misbehaving peers (RFC
6455), tested with a hand-made client (harness.RawWS) that sends what
library clients will not and leaves the server's close unanswered."""
import json

from harness import CheckedGateway as Gateway
from harness import RawWS, Runner, status

t = Runner()

TEXT, CLOSE = 0x1, 0x8


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


t.run()
