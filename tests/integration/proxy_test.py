"""statusgate in place of a Django Channels server, behind a real nginx.

nginx runs deploy/nginx/statusgate.conf (nginx_proxy.py); the gateway is
configured as the README's "Replacing Django Channels" says: --trusted-proxies
with nginx's address, and the default --publish-networks (loopback here,
standing in for the backends' network). Several loopback source addresses
stand in for several hosts: nginx talks from 127.0.0.1, the backend connects
from 127.0.0.2, browsers from 127.0.0.3 and up.

Shown: a legacy backend opens the legacy socket straight to statusgate and
sends one frame with no token, exactly as it sent it to Channels, and pages
behind nginx get status, notification and its counts (late joiners too);
and the security counterpart: frames and publishes relayed by the proxy are
refused and change nothing, per-IP limits count browsers by their forwarded
address behind --trusted-proxies, and a forwarded header from a peer that is
not a trusted proxy is ignored.
"""
import asyncio
import http.client
import json
import urllib.error
import urllib.request

import websockets

from harness import CheckedGateway as Gateway
from harness import Runner, expect_silence, free_port, metric, recv_json, status
from nginx_proxy import Nginx

t = Runner()

PROXY = ("--trusted-proxies", "127.0.0.1")
COUNTS = {"animals": 3, "samples": 2, "animal_unkn": 1, "sample_unkn": 0,
          "animal_issues": 1, "sample_issues": 2}


def browser(ng, path, source="127.0.0.3", **kw):
    """a browser's WebSocket through nginx, from a source address of its own"""
    return websockets.connect(ng.ws_base + path, local_addr=(source, 0), max_size=None, **kw)


def backend(gw, path, source="127.0.0.2", **kw):
    """a legacy backend's WebSocket straight to statusgate, as it opened one to Channels"""
    return websockets.connect(gw.ws_base + path, local_addr=(source, 0), **kw)


def publish(gw, body, source="127.0.0.2"):
    """an HTTP publish straight to statusgate from the backend's host"""
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10, source_address=(source, 0))
    try:
        c.request("POST", "/api/v1/publish", json.dumps(body), {"content-type": "application/json"})
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def post(url, body, headers=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers=dict({"content-type": "application/json"}, **(headers or {})))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def refused_with(ws, code):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except websockets.exceptions.ConnectionClosed as e:
        assert e.code == code, (e.code, code)
        return
    raise AssertionError("not closed")


@t.test
async def a_legacy_backend_publishes_to_pages_behind_nginx():
    with Gateway(*PROXY) as gw, Nginx("127.0.0.1:%d" % gw.port) as ng:
        async with browser(ng, "/ws/submissions/42/") as page:
            # nothing known yet: no frame that would blank the rendered page
            await expect_silence(page, 0.5)
            async with backend(gw, "/ws/submissions/42/") as job:
                await job.send(json.dumps({"message": "Ready", "notification_message": "Validated",
                                           "validation_message": COUNTS}))
                want = {"message": "Ready", "notification_message": "Validated",
                        "validation_message": COUNTS}
                assert await recv_json(page, 10) == want
                assert await recv_json(job, 10) == want   # it is a member too
            # a page opened later gets the stored state, counts included
            async with browser(ng, "/ws/submissions/42", source="127.0.0.4") as late:
                assert await recv_json(late, 10) == want
            # the counts are the submission's counts everywhere: /ws ...
            async with browser(ng, "/ws") as mux:
                await mux.send(json.dumps({"op": "subscribe", "id": 1, "submission": "42"}))
                assert (await recv_json(mux))["op"] == "ack"
                snap = await recv_json(mux)
                assert snap["op"] == "snapshot" and snap["status"] == "Ready", snap
                assert snap["summary"]["animal"] == {"all": 3, "known": 2, "unknown": 1,
                                                     "issues": 1, "reported": True}, snap
                assert snap["summary"]["sample"] == {"all": 2, "known": 2, "unknown": 0,
                                                     "issues": 2, "reported": True}, snap
            # ... and HTTP, through the proxy's /statusgate/api/ too
            with urllib.request.urlopen(ng.base + "/statusgate/api/v1/submissions/42") as r:
                doc = json.loads(r.read())
            assert doc["summary"]["animal"]["all"] == 3 and doc["status"] == "Ready", doc
            # the next frame without validation_message keeps them; records of
            # its own for a kind take that kind over
            async with backend(gw, "/ws/submissions/42/") as job:
                await recv_json(job)
                await job.send(json.dumps({"message": "Submitted", "notification_message": "Sent"}))
                m = await recv_json(page, 10)
                assert m == {"message": "Submitted", "notification_message": "Sent",
                             "validation_message": COUNTS}, m
            st, body = publish(gw, {"type": "records", "submission": "42",
                                    "records": [{"kind": "animal", "name": "a1"}]})
            assert st == 200, body
            m = await recv_json(page, 10)
            assert m["validation_message"] == dict(COUNTS, animals=1, animal_unkn=1,
                                                   animal_issues=0), m
        assert metric(gw, 'statusgate_publishes_total{source="ws",outcome="accepted"}') == 2
        assert metric(gw, 'statusgate_publishes_total{source="http",outcome="accepted"}') == 1


@t.test
async def the_counts_survive_a_restart():
    gw = Gateway(*PROXY).start()
    try:
        async with backend(gw, "/ws/submissions/r1/") as job:
            await job.send(json.dumps({"message": "Loaded", "notification_message": "x",
                                       "validation_message": COUNTS}))
            await recv_json(job, 10)
        gw.stop()
        gw.start()
        async with gw.ws("/ws/submissions/r1/") as page:
            assert (await recv_json(page))["validation_message"] == COUNTS
    finally:
        gw.stop()


@t.test
async def relayed_frames_and_publishes_are_refused_and_change_nothing():
    with Gateway(*PROXY) as gw, Nginx("127.0.0.1:%d" % gw.port) as ng:
        assert publish(gw, status("s1", "Loaded", "real"))[0] == 200
        # nginx's own address is never a publisher, even with no header
        st, body = publish(gw, status("s1", "Completed", "x"), source="127.0.0.1")
        assert st == 403, (st, body)
        before = gw.http("GET", "/api/v1/submissions/s1")
        async with browser(ng, "/ws/submissions/s1/") as watcher:
            assert (await recv_json(watcher))["notification_message"] == "real"
            # a browser (relayed, from loopback as far as statusgate's TCP
            # peer goes) sends the backend's frame: 1008, broadcast to nobody
            async with browser(ng, "/ws/submissions/s1/", source="127.0.0.5") as spoof:
                await recv_json(spoof)
                await spoof.send(json.dumps({"message": "Completed",
                                             "notification_message": "spoofed"}))
                await refused_with(spoof, 1008)
            # an HTTP publish relayed by the proxy: refused, with the reason
            st, body = post(ng.base + "/statusgate/api/v1/publish", status("s1", "Completed", "x"))
            assert st == 403 and "relayed" in body["detail"], (st, body)
            await expect_silence(watcher)
        assert gw.http("GET", "/api/v1/submissions/s1") == before
        logs = gw.logs()
        # logged with the browser's forwarded address, not nginx's
        assert "127.0.0.5 sent a frame on the legacy socket of s1 but is not a trusted publisher" in logs, logs
        assert "refused a publish from 127.0.0.1: 403" in logs, logs   # the direct one from nginx's host


@t.test
async def per_ip_limits_count_browsers_by_their_forwarded_address():
    with Gateway(*PROXY, "--max-connections-per-ip", "2") as gw, \
            Nginx("127.0.0.1:%d" % gw.port) as ng:
        held = []
        try:
            for src in ("127.0.0.3", "127.0.0.4"):
                for _ in range(2):
                    held.append(await browser(ng, "/ws", source=src).__aenter__())
            # a third from one address is refused; nginx passes the 429 on
            try:
                held.append(await browser(ng, "/ws", source="127.0.0.3").__aenter__())
                raise AssertionError("a third connection from 127.0.0.3 was accepted")
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 429, e.status_code
            # another address still gets in
            held.append(await browser(ng, "/ws", source="127.0.0.6").__aenter__())
            assert metric(gw, "statusgate_connections") == 5
        finally:
            for ws in held:
                await ws.close()
        assert "too many connections from 127.0.0.3" in gw.logs()


@t.test
async def forwarded_headers_from_untrusted_peers_are_ignored():
    # no --trusted-proxies: whatever a client writes in X-Forwarded-For or
    # X-Real-IP, it is counted by the address it connects from
    with Gateway("--max-connections-per-ip", "2") as gw:
        held = []
        try:
            for i in range(2):
                held.append(await backend(gw, "/ws", source="127.0.0.7", extra_headers={
                    "X-Forwarded-For": "198.51.100.%d" % i, "X-Real-IP": "198.51.100.%d" % i}).__aenter__())
            try:
                await backend(gw, "/ws", source="127.0.0.7",
                              extra_headers={"X-Forwarded-For": "198.51.100.9"}).__aenter__()
                raise AssertionError("a forged X-Forwarded-For got past the per-IP limit")
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 429, e.status_code
        finally:
            for ws in held:
                await ws.close()
        assert "too many connections from 127.0.0.7" in gw.logs()
        # and behind an untrusted nginx every browser is nginx's address
        with Nginx("127.0.0.1:%d" % gw.port) as ng:
            a = await browser(ng, "/ws", source="127.0.0.3").__aenter__()
            b = await browser(ng, "/ws", source="127.0.0.4").__aenter__()
            try:
                await browser(ng, "/ws", source="127.0.0.5").__aenter__()
                raise AssertionError("nginx's third connection was accepted")
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 429, e.status_code
            await a.close()
            await b.close()
        assert "too many connections from 127.0.0.1" in gw.logs()



def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@t.test
def the_gateways_health_is_asked_through_nginx_and_nothing_else():
    """deploy/compose.yaml's health check of nginx asks /statusgate/healthz,
    a monitor in front may ask /statusgate/readyz: both are the gateway's
    own answer, a 503 included; statusgate's other paths (/metrics) are not
    reachable through nginx."""
    dead_broker = "amqp://guest:guest@127.0.0.1:%d/" % free_port()
    with Gateway(*PROXY, "--amqp", dead_broker) as gw, Nginx("127.0.0.1:%d" % gw.port) as ng:
        st, body = get(ng.base + "/statusgate/healthz")
        assert st == 200 and json.loads(body) == {"status": "ok"}, (st, body)
        st, body = get(ng.base + "/statusgate/readyz")
        direct = gw.http("GET", "/readyz")
        assert st == 503 and json.loads(body)["error"] == "not_ready", (st, body)
        assert direct[0] == 503 and direct[1]["error"] == "not_ready", direct
        for path in ("/statusgate/metrics", "/metrics", "/statusgate/healthz/x"):
            st, body = get(ng.base + path)
            assert st != 200 and "statusgate_" not in body, (path, st, body[:200])
    with Gateway(*PROXY) as gw, Nginx("127.0.0.1:%d" % gw.port) as ng:
        st, body = get(ng.base + "/statusgate/readyz")
        assert st == 200 and json.loads(body) == {"status": "ready"}, (st, body)


t.run()
