"""Server-Sent Events (SPEC 2.4) on the wire, with a small hand-made reader
(the browser tests use Chromium's own EventSource): the answer's headers,
the snapshot then live events with `id: <epoch>:<seq>` and the very bytes
/ws sends in `data:`, resuming with Last-Event-ID (and ?last_event_id=)
exactly like /ws since, heartbeat comments, the same auth, Origin rules and
connection limits as WebSockets, latest-state delivery to a reader that
stops reading, and a clean end at shutdown."""
import asyncio
from concurrent.futures import ThreadPoolExecutor
import base64
import hashlib
import hmac
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (CheckedGateway, Runner, metric, raw_get, recv_json,  # noqa: E402
                     validation)

run = Runner()
SECRET = "sse-secret-0123456789"
ORIGIN = "http://good.example"


def mint(subs, exp_in=600):
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = enc(json.dumps({"submissions": subs, "exp": int(time.time()) + exp_in}).encode())
    sig = hmac.new(SECRET.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, enc(sig))


class Stream:
    """One GET of an event stream on its own connection: the status and
    headers, then events (dicts of the fields seen: id, data, retry,
    comment) one at a time."""

    def __init__(self, gw, path, headers=None, rcvbuf=None):
        self.gw, self.path, self.headers, self.rcvbuf = gw, path, headers or {}, rcvbuf

    async def open(self):
        sock = socket.socket()
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.connect(("127.0.0.1", self.gw.port))
        sock.setblocking(False)
        self.r, self.w = await asyncio.open_connection(sock=sock, limit=1 << 20)
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" % self.path
        for k, v in self.headers.items():
            req += "%s: %s\r\n" % (k, v)
        self.w.write((req + "\r\n").encode())
        await self.w.drain()
        line = (await asyncio.wait_for(self.r.readline(), 10)).decode()
        self.status = int(line.split()[1])
        self.hdrs = {}
        while True:
            line = (await asyncio.wait_for(self.r.readline(), 10)).decode().rstrip("\r\n")
            if not line:
                break
            k, _, v = line.partition(":")
            self.hdrs[k.strip().lower()] = v.strip()
        return self

    async def body(self):
        """the rest, for a refusal (Content-Length)"""
        return json.loads(await self.r.readexactly(int(self.hdrs["content-length"])))

    async def event(self, timeout=10):
        """the next event or comment; None at the end of the stream"""
        ev = {}
        while True:
            raw = await asyncio.wait_for(self.r.readline(), timeout)
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if not line:
                if ev:
                    return ev
                continue
            if line.startswith(":"):
                ev["comment"] = line[1:].strip()
                continue
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            ev[k] = ev[k] + "\n" + v if k == "data" and k in ev else v

    async def frame(self, timeout=10):
        """the next event with data, as (id, raw data, parsed data)"""
        while True:
            ev = await self.event(timeout)
            assert ev is not None, "the stream ended"
            if "data" in ev:
                return ev.get("id"), ev["data"], json.loads(ev["data"])

    def close(self):
        self.w.close()


async def stream(gw, path, **kw):
    return await Stream(gw, path, **kw).open()


async def until(cond, what, gw, timeout=60):
    """waits for cond() while the event loop runs (a closed stream is only
    closed once the loop gets to it)"""
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out waiting for %s\n%s" % (what, gw.logs()[-3000:])
        await asyncio.sleep(0.1)


def pub(gw, key, note, st=None):
    doc = {"type": "status", "submission": key, "status": st, "notification": note} if st else \
        {"type": "notification", "submission": key, "notification": note}
    code, body = gw.publish(doc)
    assert code == 200, body
    return body


@run.test
async def test_snapshot_then_live_events_as_ws_sends_them():
    with CheckedGateway("--sse-heartbeat", "1") as gw:
        first = pub(gw, "s1", "loaded", "Loaded")
        epoch = first["epoch"]
        ws = await gw.ws("/ws")
        await ws.send(json.dumps({"op": "subscribe", "id": 1, "submission": "s1"}))
        assert (await recv_json(ws))["op"] == "ack"
        ws_snap = await ws.recv()
        s = await stream(gw, "/sse/submissions/s1")
        assert s.status == 200, s.status
        assert s.hdrs["content-type"] == "text/event-stream", s.hdrs
        assert "content-length" not in s.hdrs, s.hdrs
        assert s.hdrs["cache-control"] == "no-store"
        assert s.hdrs["x-accel-buffering"] == "no"
        hint = await s.event()
        assert set(hint) == {"retry"} and 1000 <= int(hint["retry"]) < 3000, hint
        eid, raw, snap = await s.frame()
        assert eid == "%s:%d" % (epoch, first["seq"]), eid
        assert raw == ws_snap, (raw, ws_snap)      # the same JSON as /ws
        assert snap["op"] == "snapshot" and snap["status"] == "Loaded", snap
        assert metric(gw, "statusgate_sse_connections") == 1
        for i in range(5):
            body = pub(gw, "s1", "n%d" % i)
            eid, raw, ev = await s.frame()
            assert raw == await ws.recv(), raw     # byte for byte
            assert eid == "%s:%d" % (epoch, body["seq"]) and ev["seq"] == body["seq"], (eid, ev)
            assert ev["op"] == "event" and ev["notification"] == "n%d" % i, ev
        # several streams on one submission all get it
        others = [await stream(gw, "/sse/submissions/s1/") for _ in range(3)]
        for o in others:
            await o.event()
            assert (await o.frame())[2]["op"] == "snapshot"
        body = pub(gw, "s1", "to all")
        for o in others + [s]:
            eid, _, ev = await o.frame()
            assert ev["seq"] == body["seq"] and ev["notification"] == "to all", ev
        for o in others + [s]:
            o.close()
        await ws.close()
        await until(lambda: metric(gw, "statusgate_sse_connections") == 0,
                    "the streams to be counted out", gw)


@run.test
async def test_unknown_submission_gets_an_empty_snapshot():
    with CheckedGateway() as gw:
        s = await stream(gw, "/sse/submissions/nobody")
        eid, _, snap = await s.frame()
        assert snap["op"] == "snapshot" and snap["seq"] == 0 and snap["status"] is None, snap
        assert eid.endswith(":0"), eid
        body = pub(gw, "nobody", "first", "Waiting")
        eid, _, ev = await s.frame()
        assert ev["seq"] == 1 and ev["status"] == "Waiting", ev
        s.close()


@run.test
async def test_resume_with_last_event_id():
    with CheckedGateway("--history", "20") as gw:
        seqs = [pub(gw, "r1", "e%d" % i)["seq"] for i in range(1, 11)]
        epoch = gw.http("GET", "/api/v1/submissions/r1")[1]["epoch"]

        async def after(headers=None, query=""):
            s = await stream(gw, "/sse/submissions/r1" + query, headers=headers)
            await s.event()   # retry:
            return s

        # missed events 4..10, in order, with their ids; then live
        s = await after({"Last-Event-ID": "%s:3" % epoch})
        for q in seqs[3:]:
            eid, _, ev = await s.frame()
            assert ev["op"] == "event" and ev["seq"] == q and eid == "%s:%d" % (epoch, q), (q, eid, ev)
        body = pub(gw, "r1", "live")
        eid, _, ev = await s.frame()
        assert ev["seq"] == body["seq"] == 11 and ev["notification"] == "live", ev
        s.close()
        # the same from the query (a client that knows its position from /ws)
        s = await after(query="?last_event_id=%s%%3A9" % epoch)
        assert [(await s.frame())[2]["seq"] for _ in range(2)] == [10, 11]
        s.close()
        # nothing missed: no snapshot, nothing until the next event
        s = await after({"Last-Event-ID": "%s:11" % epoch})
        body = pub(gw, "r1", "next")
        eid, _, ev = await s.frame()
        assert ev["op"] == "event" and ev["seq"] == 12, ev
        s.close()
        # the header wins over the query (a reconnecting EventSource keeps its URL)
        s = await after({"Last-Event-ID": "%s:11" % epoch}, "?last_event_id=%s:2" % epoch)
        eid, _, ev = await s.frame()
        assert ev["op"] == "event" and ev["seq"] == 12, ev
        s.close()
        # from the start: every event while the store still holds them
        s = await after({"Last-Event-ID": "%s:0" % epoch})
        assert [(await s.frame())[2]["seq"] for _ in range(12)] == list(range(1, 13))
        s.close()
        # another epoch, an id ahead of the store, garbage: a snapshot of
        # the current state
        for hdr in ("0123abcd:5", "%s:99" % epoch, "nonsense", "%s:-1" % epoch, ""):
            s = await after({"Last-Event-ID": hdr})
            eid, _, snap = await s.frame()
            assert snap["op"] == "snapshot" and snap["seq"] == 12, (hdr, snap)
            assert eid == "%s:12" % epoch
            s.close()
        # events already pruned (the store keeps 20): a snapshot too
        for i in range(30):
            pub(gw, "r2", "p%d" % i)
        s = await stream(gw, "/sse/submissions/r2", headers={"Last-Event-ID": "%s:5" % epoch})
        await s.event()
        eid, _, snap = await s.frame()
        assert snap["op"] == "snapshot" and snap["seq"] == 30 and eid == "%s:30" % epoch, snap
        s.close()


@run.test
async def test_long_resume_is_read_in_pages():
    """a resume of 600 events (a replay page is 256) while more are
    published: every one, in order, exactly once, then live ones"""
    with CheckedGateway() as gw:
        seqs = [pub(gw, "long", "e%d" % i)["seq"] for i in range(1, 601)]
        epoch = gw.http("GET", "/api/v1/submissions/long")[1]["epoch"]
        s = await stream(gw, "/sse/submissions/long", headers={"Last-Event-ID": "%s:10" % epoch})
        await s.event()
        got = [(await s.frame())[2]["seq"] for _ in range(100)]
        more = [pub(gw, "long", "during %d" % i)["seq"] for i in range(20)]
        while got[-1] < more[-1]:
            eid, _, ev = await s.frame()
            assert ev["op"] == "event" and eid == "%s:%d" % (epoch, ev["seq"]), ev
            got.append(ev["seq"])
        assert got == list(range(11, more[-1] + 1)), "not every event once and in order"
        body = pub(gw, "long", "live")
        assert (await s.frame())[2]["seq"] == body["seq"]
        s.close()


@run.test
async def test_heartbeats_and_readers_that_leave():
    with CheckedGateway("--sse-heartbeat", "1") as gw:
        s = await stream(gw, "/sse/submissions/hb")
        await s.event()
        await s.frame()
        ev = await s.event(10)
        assert ev == {"comment": "keep-alive"}, ev
        body = pub(gw, "hb", "between beats")
        while True:
            ev = await s.event(10)
            if "data" in ev:
                break
        assert json.loads(ev["data"])["seq"] == body["seq"]
        assert metric(gw, "statusgate_sse_connections") == 1
        s.close()
        # lws does not read the connection: the heartbeat notices the end
        await until(lambda: metric(gw, "statusgate_sse_connections") == 0,
                    "the stream to be counted out", gw)


@run.test
async def test_auth_and_origin_like_websockets():
    with CheckedGateway("--auth-secret", SECRET, "--allowed-origin", ORIGIN) as gw:
        pub(gw, "a1", "secret state", "Loaded")
        for path, hdrs, code in [
                ("/sse/submissions/a1", {}, 401),
                ("/sse/submissions/a1?token=garbage", {}, 401),
                ("/sse/submissions/a1?token=" + mint(["other"]), {}, 403),
                ("/sse/submissions/a1?token=" + mint(["a1"], exp_in=-60), {}, 401),
                ("/sse/submissions/a1?token=" + mint(["a1"]), {"Origin": "http://evil.example"}, 403)]:
            s = await stream(gw, path, headers=hdrs)
            assert s.status == code, (path, hdrs, s.status)
            body = await s.body()
            assert body["error"] in ("unauthorized", "forbidden") and body["detail"], body
            s.close()
        assert metric(gw, "statusgate_connections_refused_total") == 5
        # a token in the query, as a cookie, as a bearer header
        for path, hdrs in [("/sse/submissions/a1?token=" + mint(["a1"]), {}),
                           ("/sse/submissions/a1", {"Cookie": "x=1; token=" + mint(["*"])}),
                           ("/sse/submissions/a1", {"Authorization": "Bearer " + mint(["a1"])})]:
            s = await stream(gw, path, headers=hdrs)
            assert s.status == 200, (path, s.status)
            assert (await s.frame())[2]["notification"] == "secret state"
            s.close()
        # an allowed cross-origin page may read it (no credentials)
        s = await stream(gw, "/sse/submissions/a1?token=" + mint(["a1"]), headers={"Origin": ORIGIN})
        assert s.status == 200
        assert s.hdrs["access-control-allow-origin"] == ORIGIN and s.hdrs["vary"] == "Origin", s.hdrs
        s.close()


@run.test
async def test_token_expiry_ends_the_stream():
    with CheckedGateway("--auth-secret", SECRET, "--sse-heartbeat", "1") as gw:
        s = await stream(gw, "/sse/submissions/x1?token=" + mint(["x1"], exp_in=2))
        assert s.status == 200
        await s.frame()
        # the heartbeat after the token's exp (and the 5 s leeway) ends it
        while True:
            ev = await s.event(30)
            if ev is None:
                break
        await until(lambda: metric(gw, "statusgate_sse_connections") == 0, "the stream to end", gw)


@run.test
async def test_limits_shared_with_websockets():
    with CheckedGateway("--max-connections-per-ip", "3", "--sse-heartbeat", "1") as gw:
        ws = await gw.ws("/ws")
        a = await stream(gw, "/sse/submissions/l1")
        b = await stream(gw, "/sse/submissions/l2")
        assert (a.status, b.status) == (200, 200)
        c = await stream(gw, "/sse/submissions/l3")
        assert c.status == 429, c.status
        assert (await c.body())["error"] == "too_many"
        c.close()
        b.close()
        await until(lambda: metric(gw, "statusgate_sse_connections") == 1, "b to be counted out", gw)
        c = await stream(gw, "/sse/submissions/l3")
        assert c.status == 200, c.status
        for s in (a, c):
            s.close()
        await ws.close()


@run.test
async def test_bad_requests():
    with CheckedGateway() as gw:
        st, hdrs, body = raw_get(gw, "/sse/submissions/bad%20key")
        assert st == 404 and json.loads(body)["error"] == "not_found", (st, body)
        st, hdrs, body = raw_get(gw, "/sse/other")
        assert st == 404, st
        st, hdrs, body = raw_get(gw, "/sse/submissions/a/b")
        assert st == 404, st
        st, body = gw.http("POST", "/sse/submissions/a", b"{}")
        assert st == 405 and body["error"] == "method_not_allowed", (st, body)
        assert gw.http("GET", "/healthz")[0] == 200


@run.test
async def test_a_reader_that_keeps_up_gets_every_event_of_a_burst():
    # eight publishers at once: events of one submission share commit
    # batches and are fanned out in the same loop turn; a stream that is
    # read (its socket never fills) is not behind and gets every one of
    # them, in seq order; conflation is for readers that are behind
    with CheckedGateway() as gw:
        pub(gw, "burst", "start", "Loaded")
        s = await stream(gw, "/sse/submissions/burst")
        _, _, snap = await s.frame()
        n = 300
        with ThreadPoolExecutor(8) as ex:
            bodies = list(ex.map(lambda i: pub(gw, "burst", "b%d" % i), range(n)))
        last = max(b["seq"] for b in bodies)
        seqs = []
        while not seqs or seqs[-1] < last:
            _, _, ev = await s.frame(30)
            seqs.append(ev["seq"])
        assert seqs == list(range(snap["seq"] + 1, last + 1)), seqs[:20]
        assert metric(gw, "statusgate_conflated_total") == 0
        s.close()


@run.test
async def test_stalled_reader_gets_the_latest_state():
    with CheckedGateway("--send-queue", "16") as gw:
        st, body = gw.publish(validation("slow", [
            ("animal", "a%d" % i, "Error", [("%d " % i + "long message " * 300, "c%d" % i)])
            for i in range(10)]))
        assert st == 200, body
        s = await stream(gw, "/sse/submissions/slow", rcvbuf=4096)
        # it reads nothing more: its socket buffers fill, then the gateway's queue
        for i in range(600):
            body = pub(gw, "slow", "n%d" % i)
        frames = metric(gw, "statusgate_send_queue_frames")
        assert frames <= 2, frames
        assert metric(gw, "statusgate_conflated_total") > 100
        assert metric(gw, "statusgate_sse_connections") == 1
        seqs = []
        while not seqs or seqs[-1] < body["seq"]:
            eid, _, ev = await s.frame(60)
            seqs.append(ev["seq"])
        assert seqs == sorted(set(seqs)), "out of order"
        assert ev["notification"] == "n599", ev
        assert len(seqs) < 300, len(seqs)
        s.close()


@run.test
async def test_shutdown_ends_streams():
    gw = CheckedGateway()
    with gw:
        s = await stream(gw, "/sse/submissions/bye")
        await s.frame()
        rc = await asyncio.to_thread(gw.stop)
        while True:
            ev = await s.event(10)
            if ev is None:
                break
        s.close()
        assert rc == 0, rc


if __name__ == "__main__":
    run.run()
