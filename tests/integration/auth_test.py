"""Access control and refusals: browser tokens (HS256 JWT), the publish token,
the Origin allow-list and the limits. Every refusal is answered as SPEC 4 and
2.2 say, while a healthy client, connected through each whole test, keeps
receiving its events."""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import websockets  # noqa: E402
from harness import Gateway, Runner, recv_json, expect_silence, status  # noqa: E402

SECRET = "test-secret-0123456789"
PUB = "publisher-token-abc"
ORIGIN = "http://good.example"
run = Runner()


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint(claims, secret=SECRET, alg="HS256", header=None, sign=True):
    """A JWT made with the stdlib only."""
    head = {"alg": alg, "typ": "JWT"}
    head.update(header or {})
    signing = b64(json.dumps(head).encode()) + "." + b64(json.dumps(claims).encode())
    if not sign:
        return signing + "."
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(sig)


def token(subs, exp_in=600, **extra):
    c = {"submissions": subs, "exp": int(time.time()) + exp_in}
    c.update(extra)
    return mint(c)


STAR = token(["*"])


def gateway(*extra):
    return Gateway("--auth-secret", SECRET, "--publish-token", PUB,
                   "--allowed-origin", ORIGIN + ", http://other.example",
                   "--max-subscriptions", "3", "--max-frame", "4096", *extra)


class Healthy:
    """A client that stays connected through a test and must keep working."""

    def __init__(self, gw):
        self.gw = gw
        self.n = 0

    async def __aenter__(self):
        self.ws = await self.gw.ws("/ws?token=" + STAR)
        await self.ws.send(json.dumps({"op": "subscribe", "id": "h", "submission": "healthy"}))
        ack = await recv_json(self.ws)
        assert ack["op"] == "ack" and ack["id"] == "h", ack
        snap = await recv_json(self.ws)
        assert snap["op"] == "snapshot", snap
        await self.check()
        return self

    async def check(self):
        """Publishes one event and asserts that it arrives."""
        self.n += 1
        st, body = self.gw.publish(status("healthy", "Loaded", "n%d" % self.n), token=PUB)
        assert st == 200, (st, body)
        ev = await recv_json(self.ws, 10)
        assert ev["op"] == "event" and ev["notification"] == "n%d" % self.n, ev

    async def __aexit__(self, *exc):
        if exc[0] is None:
            await self.check()
        await self.ws.close()


async def refused(gw, path, want, **kw):
    """Asserts that the upgrade is answered with HTTP status want."""
    try:
        ws = await gw.ws(path, **kw)
    except websockets.exceptions.InvalidStatusCode as e:
        assert e.status_code == want, "%s: got %d, want %d" % (path, e.status_code, want)
        return
    await ws.close()
    raise AssertionError("%s was accepted, want HTTP %d" % (path, want))


async def closed_with(ws, code, timeout=10):
    """Reads until the server closes; asserts the close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.exceptions.ConnectionClosed as e:
        assert e.code == code, "closed with %s (%s), want %d" % (e.code, e.reason, code)


async def ping_ok(ws, pid=99):
    await ws.send(json.dumps({"op": "ping", "id": pid}))
    m = await recv_json(ws)
    assert m == {"op": "pong", "id": pid}, m


@run.test
async def test_token_refusals_before_upgrade():
    with gateway() as gw:
        async with Healthy(gw) as h:
            now = int(time.time())
            good = token(["42"])
            bad_sig = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
            cases = [
                ("no token", "", 401),
                ("garbage", "?token=not.a.jwt", 401),
                ("two parts", "?token=" + good.rsplit(".", 1)[0], 401),
                ("bad signature", "?token=" + bad_sig, 401),
                ("other secret", "?token=" + mint({"submissions": ["*"], "exp": now + 600},
                                                  secret="other"), 401),
                ("alg none, unsigned", "?token=" + mint({"submissions": ["*"], "exp": now + 600},
                                                        alg="none", sign=False), 401),
                ("alg none, signed", "?token=" + mint({"submissions": ["*"], "exp": now + 600},
                                                      alg="none"), 401),
                ("alg RS256", "?token=" + mint({"submissions": ["*"], "exp": now + 600},
                                               alg="RS256"), 401),
                ("alg hs256", "?token=" + mint({"submissions": ["*"], "exp": now + 600},
                                               alg="hs256"), 401),
                ("crit header", "?token=" + mint({"submissions": ["*"], "exp": now + 600},
                                                 header={"crit": ["b64"]}), 401),
                ("expired", "?token=" + mint({"submissions": ["*"], "exp": now - 60}), 401),
                ("no exp", "?token=" + mint({"submissions": ["*"]}), 401),
                ("not yet valid", "?token=" + mint({"submissions": ["*"], "exp": now + 600,
                                                    "nbf": now + 300}), 401),
                ("no submissions", "?token=" + mint({"exp": now + 600}), 401),
            ]
            for name, query, want in cases:
                await refused(gw, "/ws" + query, want)
                await refused(gw, "/ws/submissions/42/" + query, want)
                st, body = gw.http("GET", "/api/v1/submissions/42" + query)
                assert st == want, (name, st, body)
                assert body["error"] == "unauthorized", (name, body)
            # a key not in the claim: 403 before the upgrade on the legacy
            # endpoint and on the read API
            await refused(gw, "/ws/submissions/43/?token=" + good, 403)
            st, body = gw.http("GET", "/api/v1/submissions/43?token=" + good)
            assert st == 403 and body["error"] == "forbidden", (st, body)
            # listing names every key: only a "*" token may
            st, body = gw.http("GET", "/api/v1/submissions?token=" + good)
            assert st == 403, (st, body)
            st, body = gw.http("GET", "/api/v1/submissions?token=" + STAR)
            assert st == 200, (st, body)
            # the refusals were logged, and the gateway still serves
            await h.check()


@run.test
async def test_token_sources():
    with gateway() as gw:
        async with Healthy(gw):
            t = token(["42"])
            gw.publish(status("42", "Loaded", "hello"), token=PUB)
            # query, bearer, cookie (among others, quoted or not)
            for kw in ({"extra_headers": {"Authorization": "Bearer " + t}},
                       {"extra_headers": {"Cookie": "a=1; token=" + t + "; b=2"}},
                       {"extra_headers": {"Cookie": 'token="%s"' % t}}):
                async with gw.ws("/ws/submissions/42/", **kw) as ws:
                    m = await recv_json(ws)
                    assert m["message"] == "Loaded", (kw, m)
            # a cookie whose name only ends in "token" is not the token
            await refused(gw, "/ws", 401, extra_headers={"Cookie": "xtoken=" + t})
            await refused(gw, "/ws", 401, extra_headers={"Cookie": "token="})
            # HTTP read API with a bearer token
            st, body = gw.http("GET", "/api/v1/submissions/42",
                               headers={"Authorization": "Bearer " + t})
            assert st == 200 and body["status"] == "Loaded", (st, body)
            # a key the token does not list, on /ws: forbidden, connection stays
            async with gw.ws("/ws?token=" + t) as ws:
                await ws.send(json.dumps({"op": "subscribe", "id": 1, "submission": "43"}))
                m = await recv_json(ws)
                assert m["op"] == "error" and m["id"] == 1 and m["code"] == "forbidden", m
                await ws.send(json.dumps({"op": "subscribe", "id": 2, "submission": "42"}))
                m = await recv_json(ws)
                assert m["op"] == "ack" and m["id"] == 2, m
                m = await recv_json(ws)
                assert m["op"] == "snapshot" and m["status"] == "Loaded", m
                await ping_ok(ws)


@run.test
async def test_access_ends_when_the_token_expires():
    with gateway() as gw:
        async with Healthy(gw):
            # valid now (exp is one second ahead, plus the gateway's leeway)
            t = mint({"submissions": ["*"], "exp": int(time.time()) + 1})
            async with gw.ws("/ws?token=" + t) as ws, gw.ws("/ws/submissions/a/?token=" + t) as legacy:
                await ws.send(json.dumps({"op": "subscribe", "id": 1, "submission": "a"}))
                assert (await recv_json(ws))["op"] == "ack"
                assert (await recv_json(ws))["op"] == "snapshot"
                # at exp the gateway says why and closes, with nobody asking
                m = await recv_json(ws, 30)
                assert m["op"] == "error" and m["code"] == "forbidden", m
                assert "expired" in m["reason"], m
                await closed_with(ws, 1008)
                await closed_with(legacy, 1008)
            # and a new connection with it is refused before the upgrade
            await refused(gw, "/ws?token=" + t, 401)
            assert "expired; closing its connection" in gw.logs()


@run.test
async def test_a_cookie_token_counts_only_from_an_allowed_origin():
    # cross-site WebSocket hijacking: a page on another site can make the
    # browser open a socket that carries the token cookie
    plain = Gateway("--auth-secret", SECRET, "--publish-token", PUB)
    t = token(["42"])
    cookie = {"Cookie": "token=" + t}
    with plain as gw:
        gw.publish(status("42", "Loaded", "x"), token=PUB)
        # without --allowed-origin: the request's own host is allowed
        async with gw.ws("/ws/submissions/42/", extra_headers=cookie,
                         origin="http://127.0.0.1:%d" % gw.port) as ws:
            assert (await recv_json(ws))["message"] == "Loaded"
        # no Origin (not a browser acting for another site): the cookie counts
        async with gw.ws("/ws/submissions/42/", extra_headers=cookie) as ws:
            assert (await recv_json(ws))["message"] == "Loaded"
        # another site's page: refused before the upgrade, with the reason
        await refused(gw, "/ws/submissions/42/", 403, extra_headers=cookie,
                      origin="http://evil.example")
        await refused(gw, "/ws", 403, extra_headers=cookie, origin="http://evil.example")
        st, body = gw.http("GET", "/api/v1/submissions/42",
                           headers=dict(cookie, Origin="http://evil.example"))
        assert st == 403 and "cookie" in body["detail"], (st, body)
        # a token it passes explicitly is not ambient authority: accepted
        async with gw.ws("/ws/submissions/42/?token=" + t, origin="http://evil.example") as ws:
            assert (await recv_json(ws))["message"] == "Loaded"
        assert "a token cookie counts only for requests from an allowed Origin" in gw.logs()
    # with --allowed-origin: only the listed origins
    with gateway() as gw:
        gw.publish(status("42", "Loaded", "x"), token=PUB)
        async with gw.ws("/ws/submissions/42/", extra_headers=cookie, origin=ORIGIN) as ws:
            assert (await recv_json(ws))["message"] == "Loaded"
        st, body = gw.http("GET", "/api/v1/submissions/42",
                           headers=dict(cookie, Origin="http://127.0.0.1:%d" % gw.port))
        assert st == 403, (st, body)


@run.test
async def test_origin_allow_list():
    with gateway() as gw:
        async with Healthy(gw):
            await refused(gw, "/ws?token=" + STAR, 403, origin="http://evil.example")
            await refused(gw, "/ws/submissions/1/?token=" + STAR, 403, origin="http://evil.example")
            for o in (ORIGIN, "http://other.example"):
                async with gw.ws("/ws?token=" + STAR, origin=o) as ws:
                    await ping_ok(ws)


@run.test
async def test_bad_frames():
    with gateway() as gw:
        async with Healthy(gw):
            async with gw.ws("/ws?token=" + STAR) as ws:
                # not JSON, not an object, no op, unknown op: bad_request, still open
                for frame in ("hello", "[1,2]", '{"id":5}', '{"op":"dance","id":6}'):
                    await ws.send(frame)
                    m = await recv_json(ws)
                    assert m["op"] == "error" and m["code"] == "bad_request", (frame, m)
                await ws.send('{"op":"dance","id":6}')
                m = await recv_json(ws)
                assert m["id"] == 6 and "unknown op" in m["reason"], m
                # bad subscribe arguments
                for cmd in ({"op": "subscribe", "id": 7},
                            {"op": "subscribe", "id": 7, "submission": "bad key!"},
                            {"op": "subscribe", "id": 7, "submission": "k", "since": {"seq": 1}},
                            {"op": "subscribe", "id": 7, "submission": "k",
                             "filter": {"kinds": ["nope"]}}):
                    await ws.send(json.dumps(cmd))
                    m = await recv_json(ws)
                    assert m["op"] == "error" and m["code"] == "bad_request" and m["id"] == 7, (cmd, m)
                await ws.send(json.dumps({"op": "unsubscribe", "id": 8, "submission": "zz"}))
                m = await recv_json(ws)
                assert m["code"] == "not_found" and m["id"] == 8, m
                # an oversize message (--max-frame 4096): too_large, still open
                await ws.send(json.dumps({"op": "ping", "id": 9, "pad": "x" * 5000}))
                m = await recv_json(ws)
                assert m["op"] == "error" and m["code"] == "too_large", m
                # binary: bad_request
                await ws.send(b'{"op":"ping","id":10}')
                m = await recv_json(ws)
                assert m["op"] == "error" and m["code"] == "bad_request", m
                await ping_ok(ws)
                # subscriptions over --max-subscriptions 3: too_many
                for i in range(3):
                    await ws.send(json.dumps({"op": "subscribe", "id": 20 + i, "submission": "s%d" % i}))
                    assert (await recv_json(ws))["op"] == "ack"
                    assert (await recv_json(ws))["op"] == "snapshot"
                await ws.send(json.dumps({"op": "subscribe", "id": 30, "submission": "s3"}))
                m = await recv_json(ws)
                assert m["op"] == "error" and m["code"] == "too_many" and m["id"] == 30, m
                # re-subscribing to one it has is not a new subscription
                await ws.send(json.dumps({"op": "subscribe", "id": 31, "submission": "s0"}))
                assert (await recv_json(ws))["op"] == "ack"
                assert (await recv_json(ws))["op"] == "snapshot"
                # after an unsubscribe there is room again
                await ws.send(json.dumps({"op": "unsubscribe", "id": 32, "submission": "s1"}))
                assert (await recv_json(ws))["id"] == 32
                await ws.send(json.dumps({"op": "subscribe", "id": 33, "submission": "s3"}))
                m = await recv_json(ws)
                assert m["op"] == "ack" and m["id"] == 33, m
                assert (await recv_json(ws))["op"] == "snapshot"
                await ping_ok(ws)
            # invalid UTF-8 in a text frame: the connection is closed with 1007
            async with gw.ws("/ws?token=" + STAR) as ws:
                await ws.write_frame(True, 0x1, b'{"op":"ping","x":"\xff\xfe"}')
                await closed_with(ws, 1007)
            # a client that keeps sending garbage is hung up on (1008)
            async with gw.ws("/ws?token=" + STAR) as ws:
                for _ in range(10):    # the gateway's limit of consecutive bad commands
                    await ws.send("garbage")
                await closed_with(ws, 1008)


@run.test
async def test_legacy_socket_publishing():
    with gateway() as gw:
        async with Healthy(gw):
            t = token(["77"])
            async with gw.ws("/ws/submissions/77/?token=" + t) as watcher:
                await expect_silence(watcher)   # unknown submission: no initial frame
                # a browser frame on the legacy endpoint: closed with 1008, not broadcast
                async with gw.ws("/ws/submissions/77/?token=" + t) as browser:
                    await browser.send(json.dumps({"message": "Completed",
                                                   "notification_message": "spoofed"}))
                    await closed_with(browser, 1008)
                await expect_silence(watcher, 0.5)
                # a wrong publish token is no publish token: the browser token is needed
                await refused(gw, "/ws/submissions/77/", 401,
                              extra_headers={"Authorization": "Bearer wrong"})
                # the publish token on the upgrade: legacy-format publishes are accepted
                async with gw.ws("/ws/submissions/77/",
                                 extra_headers={"Authorization": "Bearer " + PUB}) as pub:
                    await pub.send(json.dumps({"message": "Ready", "notification_message": "x"}))
                    m = await recv_json(watcher, 10)
                    assert m["message"] == "Ready" and m["notification_message"] == "x", m
                    m = await recv_json(pub, 10)   # it is a member too
                    assert m["message"] == "Ready", m
                    # and the new format too
                    await pub.send(json.dumps({"type": "notification", "notification": "y"}))
                    m = await recv_json(watcher, 10)
                    assert m["notification_message"] == "y", m
                    # an invalid publish is refused with a reason, connection stays
                    await pub.send(json.dumps({"message": "Dancing"}))
                    m = await recv_json(pub, 10)
                    if "message" in m:          # its own "y" event came first
                        assert m["notification_message"] == "y", m
                        m = await recv_json(pub, 10)
                    assert m.get("error") == "invalid", m
                    await expect_silence(watcher, 0.3)
                st, body = gw.http("GET", "/api/v1/submissions/77?token=" + t)
                assert st == 200 and body["status"] == "Ready", body
            # HTTP publishing: no token 401, wrong token 403
            st, _ = gw.publish(status("77", "Loaded"))
            assert st == 401, st
            st, _ = gw.publish(status("77", "Loaded"), token="wrong")
            assert st == 403, st


@run.test
async def test_connections_per_ip():
    with Gateway("--max-connections-per-ip", "3") as gw:
        conns = [await gw.ws("/ws") for _ in range(3)]
        await refused(gw, "/ws", 429)
        await refused(gw, "/ws/submissions/1/", 429)
        # plain HTTP is not a WebSocket connection and is not counted
        st, _ = gw.http("GET", "/healthz")
        assert st == 200
        for c in conns:
            await ping_ok(c)
        await conns[0].close()
        # the slot is given back once the server has seen the close
        deadline = time.time() + 30
        while True:
            try:
                conns[0] = await gw.ws("/ws")
                break
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 429 and time.time() < deadline, e
                await asyncio.sleep(0.1)
        for c in conns:
            await ping_ok(c)
            await c.close()


@run.test
async def test_max_connections():
    with Gateway("--max-connections", "2") as gw:
        a = await gw.ws("/ws")
        b = await gw.ws("/ws")
        await refused(gw, "/ws", 503)
        await ping_ok(a)
        await ping_ok(b)
        await a.close()
        await b.close()


@run.test
async def test_open_mode_says_so():
    with Gateway() as gw:
        async with gw.ws("/ws") as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "submission": "x"}))
            assert (await recv_json(ws))["op"] == "ack"
        assert "auth" in gw.logs().lower(), gw.logs()


if __name__ == "__main__":
    run.run()
