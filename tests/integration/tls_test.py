"""TLS: with --tls-cert/--tls-key the gateway serves https and wss itself.

A throw-away self-signed certificate is made with the openssl command; the
clients trust exactly that certificate (no verification is switched off).
"""
import asyncio
from concurrent.futures import ThreadPoolExecutor
import os
import ssl
import subprocess
import tempfile
import urllib.request

from harness import Gateway, Runner, expect_silence, recv_json

t = Runner()


def make_cert(d):
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return crt, key


def tls_gateway():
    """a gateway serving https and wss with a fresh certificate, and clients
    (gw.http, gw.ws) that trust exactly that one"""
    d = tempfile.mkdtemp(prefix="sg-tls-")
    crt, key = make_cert(d)
    ctx = ssl.create_default_context(cafile=crt)
    return Gateway("--tls-cert", crt, "--tls-key", key, workdir=d, ssl_ctx=ctx)


@t.test
async def https_and_wss_with_the_configured_certificate():
    with tls_gateway() as gw:
        assert gw.base.startswith("https://")
        assert gw.http("GET", "/healthz") == (200, {"status": "ok"})
        async with gw.ws("/ws/submissions/t1/") as ws:
            await expect_silence(ws)   # unknown: no initial frame
            st, body = gw.publish({"type": "status", "submission": "t1",
                                   "status": "ready", "notification": "over TLS"})
            assert st == 200, body
            frame = await recv_json(ws)
            assert frame["message"] == "Ready" and frame["notification_message"] == "over TLS"
        # plain HTTP on the TLS port is not served
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/healthz" % gw.port, timeout=5)
            raise AssertionError("plain HTTP answered on the TLS port")
        except (OSError, ValueError) as e:
            assert "plain HTTP answered" not in str(e)


@t.test
def refuses_to_start_with_a_missing_key():
    d = tempfile.mkdtemp(prefix="sg-tls-")
    crt, _ = make_cert(d)
    gw = Gateway("--tls-cert", crt, "--tls-key", os.path.join(d, "absent.pem"), workdir=d)
    gw.start(wait=False)
    rc = gw.proc.wait(15)
    assert rc != 0, "started without its key"
    assert "listen" in gw.logs() or "TLS" in gw.logs(), gw.logs()


@t.test
async def a_legacy_page_over_tls_that_keeps_up_gets_every_event_of_a_burst():
    # over TLS the gateway writes through lws, a frame per lws_write: eight
    # publishers at once share commit batches, and a page that reads gets
    # every event all the same (it is never behind)
    with tls_gateway() as gw:
        assert gw.publish({"type": "status", "submission": "tb", "status": "Loaded"})[0] == 200
        async with gw.ws("/ws/submissions/tb/") as ws:
            assert (await recv_json(ws))["message"] == "Loaded"
            n = 300
            with ThreadPoolExecutor(8) as ex:
                codes = list(ex.map(lambda i: gw.publish(
                    {"type": "notification", "submission": "tb", "notification": "b%d" % i})[0],
                    range(n)))
            assert codes == [200] * n, codes
            got = [int((await recv_json(ws, 20))["notification_message"][1:]) for _ in range(n)]
            assert sorted(got) == list(range(n)), got[:20]
            await expect_silence(ws)


t.run()
