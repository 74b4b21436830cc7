"""The HTTP side: the read API, health, metrics, static files, publishing
auth, and every kind of bad input.

Each refusal must carry the fitting status code and a JSON body
{"error": ..., "detail": ...} naming the problem, must be logged once, and
must leave the gateway serving and the stored state exactly as it was.
"""
import http.client
import json
import os
import re
import tempfile
import time

from harness import CheckedGateway as Gateway
from harness import Runner, raw_get, raw_http, records, status, validation

t = Runner()


def ok(gw, body, **kw):
    st, resp = gw.publish(body, **kw)
    assert st == 200, (st, resp)
    assert resp["accepted"] is True, resp
    return resp


def metric(gw, line_start):
    st, text = gw.http("GET", "/metrics")
    assert st == 200, st
    for ln in text.splitlines():
        if ln.startswith(line_start + " "):
            return float(ln.split()[-1])
    raise AssertionError("no metric %s in\n%s" % (line_start, text))


def wait_log(gw, pattern, count, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        n = len(re.findall(pattern, gw.logs()))
        if n >= count:
            return n
        time.sleep(0.05)
    raise AssertionError("expected %d log lines matching %r:\n%s" % (count, pattern, gw.logs()))


@t.test
def read_api_state_events_and_list():
    with Gateway() as gw:
        st, body = gw.http("GET", "/api/v1/submissions/42")
        assert st == 404 and body["error"] == "not_found" and body["detail"], (st, body)

        r1 = ok(gw, status("42", "Loaded", "Data loaded"))
        ok(gw, records("42", "animal", ["a1", "a2"]))
        ok(gw, records("42", "sample", ["s1"]))
        ok(gw, validation("42", [("animal", "a1", "Error", [("missing breed", "breed")]),
                                 ("animal", "a2", "Warning", [("odd", None)]),
                                 ("sample", "s1", "Pass", [])]))
        r5 = ok(gw, {"type": "notification", "submission": "42", "notification": "checked"})
        epoch = r1["epoch"]
        assert re.fullmatch(r"[0-9a-f]{16,}", epoch), epoch
        assert r5["epoch"] == epoch and r5["seq"] == 5, r5

        st, s = gw.http("GET", "/api/v1/submissions/42")
        assert st == 200, (st, s)
        assert s["submission"] == "42" and s["status"] == "Loaded", s
        assert s["notification"] == "checked" and s["epoch"] == epoch and s["seq"] == 5, s
        assert s["summary"]["animal"] == {"all": 2, "known": 2, "unknown": 0, "pass": 0,
                                          "warning": 1, "error": 1, "issues": 1}, s
        assert s["summary"]["sample"] == {"all": 1, "known": 1, "unknown": 0, "pass": 1,
                                          "warning": 0, "error": 0, "issues": 0}, s
        msgs = {(m["kind"], m["text"], m.get("column"), m["count"]) for m in s["summary"]["messages"]}
        assert ("animal", "missing breed", "breed", 1) in msgs, s
        # trailing slash is the same resource
        assert gw.http("GET", "/api/v1/submissions/42/") == (200, s)

        st, ev = gw.http("GET", "/api/v1/submissions/42/events?since=2")
        assert st == 200, (st, ev)
        assert ev["epoch"] == epoch and ev["truncated"] is False, ev
        assert [e["seq"] for e in ev["events"]] == [3, 4, 5], ev
        assert [e["type"] for e in ev["events"]] == ["records", "validation", "notification"], ev
        assert all(e["submission"] == "42" for e in ev["events"]), ev
        st, ev0 = gw.http("GET", "/api/v1/submissions/42/events")
        assert [e["seq"] for e in ev0["events"]] == [1, 2, 3, 4, 5], ev0
        st, ev5 = gw.http("GET", "/api/v1/submissions/42/events?since=5")
        assert st == 200 and ev5["events"] == [], ev5
        for bad in ("-1", "abc", "", "1x", "1.5"):
            st, b = gw.http("GET", "/api/v1/submissions/42/events?since=" + bad)
            assert st == 400 and b["error"] == "bad_request" and "since" in b["detail"], (bad, st, b)

        ok(gw, status("other-1", "Waiting"))
        st, lst = gw.http("GET", "/api/v1/submissions")
        assert st == 200, (st, lst)
        keys = [x["submission"] for x in lst["submissions"]]
        assert sorted(keys) == ["42", "other-1"], lst
        one = [x for x in lst["submissions"] if x["submission"] == "42"][0]
        assert one["status"] == "Loaded" and one["seq"] == 5, one
        st, lst1 = gw.http("GET", "/api/v1/submissions?limit=1")
        assert st == 200 and len(lst1["submissions"]) == 1, lst1
        st, b = gw.http("GET", "/api/v1/submissions?limit=0")
        assert st == 400 and b["error"] == "bad_request", (st, b)

        st, b = gw.http("GET", "/api/v1/submissions/a.b_c-9")
        assert st == 404 and b["error"] == "not_found", (st, b)
        st, b = gw.http("GET", "/api/v1/submissions/42/nothing")
        assert st == 404 and b["error"] == "not_found", (st, b)


@t.test
def health_readiness_and_metrics():
    with Gateway() as gw:
        assert gw.http("GET", "/healthz") == (200, {"status": "ok"})
        assert gw.http("GET", "/readyz") == (200, {"status": "ready"})
        assert metric(gw, 'statusgate_publishes_total{source="http",outcome="accepted"}') == 0
        for i in range(7):
            ok(gw, status("m%d" % (i % 2), "Loaded", "n%d" % i))
        st, b = gw.publish({"type": "bogus", "submission": "m0"})
        assert st == 422, (st, b)
        st, text = gw.http("GET", "/metrics")
        assert st == 200 and isinstance(text, str), (st, text)
        assert 'statusgate_publishes_total{source="http",outcome="accepted"} 7\n' in text, text
        assert 'statusgate_publishes_total{source="http",outcome="invalid"} 1\n' in text, text
        assert "statusgate_events_total 7\n" in text, text
        assert "# TYPE statusgate_store_commit_seconds histogram" in text, text
        assert "statusgate_store_commit_seconds_count" in text, text
        # every sample line is "name{labels} value"
        for ln in text.splitlines():
            if ln and not ln.startswith("#"):
                assert re.fullmatch(r'[a-z_:][a-z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+|.* (\+Inf|NaN)', ln), ln


@t.test
def static_files_and_no_path_traversal():
    root = tempfile.mkdtemp(prefix="sg-web-")
    web = os.path.join(root, "web")
    os.makedirs(os.path.join(web, "css"))
    with open(os.path.join(web, "submission.html"), "w") as f:
        f.write("<!doctype html><title>status page</title>")
    with open(os.path.join(web, "index.html"), "w") as f:
        f.write("<!doctype html><title>index</title>")
    with open(os.path.join(web, "css", "page.css"), "w") as f:
        f.write("body{}")
    with open(os.path.join(web, ".hidden"), "w") as f:
        f.write("hidden")
    secret = "TOP-SECRET-%d" % os.getpid()
    with open(os.path.join(root, "secret.txt"), "w") as f:
        f.write(secret)
    with Gateway("--web-dir", web, workdir=root) as gw:
        for path in ("/submissions/42", "/submissions/42/", "/submissions/a.b-c_d"):
            st, hdrs, body = raw_get(gw, path)
            assert st == 200, (path, st, body)
            assert hdrs["content-type"].startswith("text/html"), hdrs
            assert b"status page" in body, body
        st, hdrs, body = raw_get(gw, "/")
        assert st == 200 and b"index" in body, (st, body)
        st, hdrs, body = raw_get(gw, "/css/page.css")
        assert st == 200 and hdrs["content-type"].startswith("text/css") and body == b"body{}"
        for path in ("/submissions/a%2Fb", "/submissions/" + "k" * 65, "/nope.html", "/.hidden",
                     "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
                     "/submissions/../../secret.txt", "/web/../../secret.txt",
                     "/css/../../secret.txt", "/..%2fsecret.txt", "/css/%2e%2e/%2e%2e/secret.txt",
                     "//etc/passwd", "/../../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                     "/css/..%5c..%5csecret.txt"):
            st, hdrs, body = raw_get(gw, path)
            assert secret.encode() not in body and b"root:" not in body, (path, body)
            assert st in (400, 403, 404), (path, st, body)
            if st == 404:
                assert json.loads(body)["error"] == "not_found", (path, body)
        # lws itself drops a request whose path holds %00: nothing leaks either
        try:
            st, hdrs, body = raw_get(gw, "/secret.txt%00.html")
            assert st in (400, 404) and secret.encode() not in body, (st, body)
        except ConnectionError:
            pass
        # urllib too (it sends the path as written)
        st, body = gw.http("GET", "/../secret.txt")
        assert st in (400, 404) and secret not in str(body), (st, body)
        assert gw.http("GET", "/healthz")[0] == 200


BAD_CASES = [
    # (name, raw body bytes, status, error, word the detail must contain)
    ("malformed JSON", b'{"type": "status", "submission": ', 400, None, None),
    ("JSON array", b'[{"type":"status","submission":"42","status":"Ready"}]', 400, None, "object"),
    ("JSON string", b'"hello"', 400, None, None),
    ("invalid UTF-8", b'{"type":"status","submission":"42","status":"Ready","notification":"\xff\xfe"}',
     400, None, None),
    ("unknown type", b'{"type":"explode","submission":"42"}', 422, None, "type"),
    ("unknown status", b'{"type":"status","submission":"42","status":"Sleeping"}', 422, None, "status"),
    ("bad key with a slash", b'{"type":"status","submission":"a/b","status":"Ready"}', 422, None, "submission"),
    ("key of 65 chars", ('{"type":"status","submission":"%s","status":"Ready"}' % ("k" * 65)).encode(),
     422, None, "submission"),
    ("empty key", b'{"type":"status","submission":"","status":"Ready"}', 422, None, "submission"),
    ("missing type", b'{"submission":"42","status":"Ready"}', 422, None, "type"),
    ("missing submission", b'{"type":"status","status":"Ready"}', 422, None, "submission"),
    ("missing status", b'{"type":"status","submission":"42"}', 422, None, "status"),
    ("records not a list", b'{"type":"records","submission":"42","records":{"kind":"animal"}}',
     422, None, "records"),
    ("record without name", b'{"type":"records","submission":"42","records":[{"kind":"animal"}]}',
     422, None, "name"),
    ("bad result", b'{"type":"validation","submission":"42","results":[{"kind":"animal","name":"a",'
                   b'"status":"Maybe"}]}', 422, None, "status"),
    ("envelope without body", b'{"from":"a","to":"b","datetime":"2024-01-01T00:00:00Z"}', 422, None, None),
]


@t.test
def bad_publishes_are_refused_with_a_json_error_and_lose_nothing():
    with Gateway() as gw:
        ok(gw, status("42", "Loaded", "Data loaded"))
        ok(gw, records("42", "animal", ["a1"]))
        before = gw.http("GET", "/api/v1/submissions/42")
        assert before[0] == 200
        hdr = {"content-type": "application/json"}
        refused = 0
        for name, raw, code, _err, word in BAD_CASES:
            st, body = gw.http("POST", "/api/v1/publish", raw, hdr)
            assert st == code, (name, st, body)
            assert isinstance(body, dict) and set(body) == {"error", "detail"}, (name, body)
            assert body["error"] and body["detail"], (name, body)
            if word:
                assert word in body["detail"], (name, body)
            refused += 1
        # no body at all (Content-Length: 0)
        st, body = gw.http("POST", "/api/v1/publish", None, hdr)
        assert st == 400 and body["error"] and body["detail"], (st, body)
        refused += 1
        # a chunked body is decoded, and judged like any other
        st, hdrs, raw = raw_http(gw, b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n5\r\n{}{}{\r\n0\r\n\r\n")
        assert st == 400 and json.loads(raw)["error"] == "bad_json", (st, raw)
        refused += 1
        # malformed chunk framing
        st, hdrs, raw = raw_http(gw, b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
        assert st == 400 and "chunked" in json.loads(raw)["detail"], (st, raw)
        refused += 1
        # neither Content-Length nor chunked: 411 with the reason
        st, hdrs, raw = raw_http(gw, b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\n"
                                 b"Transfer-Encoding: gzip\r\n\r\n")
        assert st == 411 and json.loads(raw)["error"] == "length_required", (st, raw)
        refused += 1

        assert gw.http("GET", "/healthz")[0] == 200
        assert gw.http("GET", "/api/v1/submissions/42") == before
        st, ev = gw.http("GET", "/api/v1/submissions/42/events?since=0")
        assert [e["seq"] for e in ev["events"]] == [1, 2], ev
        # unknown keys of refused publishes were never created
        st, lst = gw.http("GET", "/api/v1/submissions")
        assert [x["submission"] for x in lst["submissions"]] == ["42"], lst
        # and publishing still works
        assert ok(gw, status("42", "Ready"))["seq"] == 3
        assert metric(gw, 'statusgate_publishes_total{source="http",outcome="invalid"}') == refused
        # every refusal is accounted for in the log: a line with its reason,
        # at most 10 a second, and the rest counted in a note that comes
        # with the next line after that second
        time.sleep(1.1)
        st, _ = gw.http("POST", "/api/v1/publish", b"[]", {"content-type": "application/json"})
        assert st == 400, st
        refused += 1
        wait_log(gw, r"refused a publish", 1)
        logs = gw.logs()
        lines = len(re.findall(r"refused a publish", logs))
        left_out = sum(int(n) for n in re.findall(r"(\d+) more lines like the next were left out", logs))
        assert lines + left_out == refused, (lines, left_out, refused, logs)
        assert lines <= refused and (refused <= 10 or left_out > 0), (lines, left_out)
        assert re.search(r"refused a publish.*type", logs), logs


@t.test
def untrusted_bytes_cannot_forge_a_log_line():
    # a newline (and other control bytes) in a key, a path or a body never
    # starts a log line of its own, in text and in JSON logs alike (the
    # escaping itself: tests/test_log.c)
    for fmt in ("text", "json"):
        with Gateway("--log-format", fmt) as gw:
            st, body = gw.publish({"type": "status", "submission": "x\nFORGED error\u0007",
                                   "status": "Loaded"})
            assert st == 422, (st, body)
            st, _, raw = raw_http(gw, b"GET /ws/x%0aFORGED%0d HTTP/1.1\r\nHost: x\r\n"
                                  b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  b"Sec-WebSocket-Version: 13\r\n\r\n")
            assert st == 404, (st, raw)
            st, body = gw.http("POST", "/api/v1/publish", b'{"type":"bo\x07gus","submission":"a"}',
                               {"content-type": "application/json"})
            assert st == 400, (st, body)      # a raw control byte is not JSON
            wait_log(gw, r"refused a publish", 2)
            logs = gw.logs()
            assert "FORGED" in logs, logs
            for line in logs.splitlines():
                assert line.startswith("2") or line.startswith("{"), logs
                if fmt == "json":
                    json.loads(line)     # every line is one JSON object


@t.test
def oversize_publish_is_413_and_loses_nothing():
    with Gateway("--max-publish", "4096") as gw:
        ok(gw, status("big", "Loaded", "small"))
        before = gw.http("GET", "/api/v1/submissions/big")
        # just under the limit is fine
        note = "x" * (4096 - 100)
        body = json.dumps(status("big", "Loaded", note))
        assert len(body) <= 4096
        ok(gw, json.loads(body))
        before = gw.http("GET", "/api/v1/submissions/big")
        big = json.dumps(records("big", "animal", ["animal-%05d" % i for i in range(400)]))
        assert len(big) > 4096
        st, resp = gw.http("POST", "/api/v1/publish", big, {"content-type": "application/json"})
        assert st == 413, (st, resp)
        assert resp["error"] == "too_large" and "4096" in resp["detail"], resp
        assert gw.http("GET", "/api/v1/submissions/big") == before
        assert gw.http("GET", "/healthz")[0] == 200
        wait_log(gw, r"refused a publish.*4096", 1)


@t.test
def wrong_methods_and_paths():
    with Gateway() as gw:
        st, hdrs, body = raw_get(gw, "/api/v1/publish")
        assert st == 405 and "POST" in hdrs.get("allow", ""), (st, hdrs, body)
        b = json.loads(body)
        assert b["error"] == "method_not_allowed" and "POST" in b["detail"], b
        st, b = gw.http("DELETE", "/api/v1/submissions/1")
        assert st == 405 and b["error"] == "method_not_allowed", (st, b)
        st, b = gw.http("PUT", "/api/v1/publish", b"{}", {"content-type": "application/json"})
        assert st == 405, (st, b)
        st, b = gw.http("POST", "/healthz", b"{}")
        assert st == 405, (st, b)
        st, b = gw.http("GET", "/api/v1/nope")
        assert st == 404 and b["error"] == "not_found" and b["detail"], (st, b)
        st, b = gw.http("POST", "/api/v1/nope", b"{}")
        assert st in (404, 405) and b["error"], (st, b)
        assert gw.http("GET", "/healthz") == (200, {"status": "ok"})


@t.test
def one_keep_alive_connection_serves_good_and_bad_requests_in_turn():
    with Gateway() as gw:
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        try:
            for body, code in ((status("ka", "Loaded"), 200), ({"type": "nope", "submission": "ka"}, 422),
                               ("[1]", 400), (status("ka", "Ready"), 200)):
                c.request("POST", "/api/v1/publish",
                          body if isinstance(body, str) else json.dumps(body),
                          {"content-type": "application/json"})
                r = c.getresponse()
                b = json.loads(r.read())
                assert r.status == code, (r.status, b)
            c.request("GET", "/api/v1/publish")
            r = c.getresponse()
            assert r.status == 405 and r.getheader("allow") == "POST", r.status
            r.read()
            c.request("GET", "/api/v1/submissions/ka")
            r = c.getresponse()
            s = json.loads(r.read())
            assert r.status == 200 and s["status"] == "Ready" and s["seq"] == 2, s
        finally:
            c.close()


@t.test
def short_and_long_answers_keep_the_connection_in_step():
    """A short answer leaves in the write of its headers, a long one (over
    one 16 KiB chunk) in chunks after them: on one keep-alive connection
    each must be exactly its content-length, or the next answer would be
    read out of the previous one's bytes."""
    with Gateway() as gw:
        notes = ["n%03d-" % i + "x" * 400 for i in range(100)]
        for n in notes:
            ok(gw, status("long", "Loaded", n))
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        try:
            for _ in range(2):
                c.request("POST", "/api/v1/publish", json.dumps(status("short", "Loaded")),
                          {"content-type": "application/json"})
                r = c.getresponse()
                raw = r.read()
                assert r.status == 200 and len(raw) == int(r.getheader("content-length")), raw
                assert json.loads(raw)["accepted"] is True, raw
                c.request("GET", "/api/v1/submissions/long/events?limit=100")
                r = c.getresponse()
                raw = r.read()
                assert r.status == 200 and len(raw) == int(r.getheader("content-length")), r.status
                assert len(raw) > 3 * 16384, len(raw)     # several chunks
                evs = json.loads(raw)["events"]
                assert [e["notification"] for e in evs] == notes, [e["notification"][:5] for e in evs]
        finally:
            c.close()


@t.test
def chunked_bodies_and_the_app_envelope_are_accepted():
    with Gateway("--max-publish", "4096") as gw:
        doc = json.dumps(status("ch", "Loaded", "chunked")).encode()
        # in pieces, split mid-chunk, with an extension and a trailer
        body = b"%x;x=1\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trace: 1\r\n\r\n" % (
            10, doc[:10], len(doc) - 10, doc[10:])
        st, hdrs, raw = raw_http(gw, b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n" + body)
        assert st == 200 and json.loads(raw)["seq"] == 1, (st, raw)
        assert hdrs.get("connection") == "close", hdrs
        # over --max-publish once decoded: 413 without waiting for the end
        big = b"%x\r\n%s\r\n" % (5000, b"x" * 5000)
        st, hdrs, raw = raw_http(gw, b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n" + big)
        assert st == 413 and json.loads(raw)["error"] == "too_large", (st, raw)
        # the queue-manager envelope: body as a JSON string, datetime a number
        env = {"from": "importer", "to": "statusgate", "datetime": 1795494135.5,
               "body": json.dumps(status("ch", "Ready", "from the app"))}
        st, r = gw.publish(env)
        assert st == 200 and r["seq"] == 2, (st, r)
        st, r = gw.publish(dict(env, body="not json"))
        assert st == 422 and "body" in r["detail"], (st, r)
        _, state = gw.http("GET", "/api/v1/submissions/ch")
        assert (state["status"], state["notification"], state["seq"]) == ("Ready", "from the app", 2), state


@t.test
def loopback_publishes_without_a_token():
    with Gateway() as gw:
        st, r = gw.publish(status("lo", "Loaded"))
        assert st == 200 and r["seq"] == 1, (st, r)
        # a token is not needed and not checked when none is configured
        st, r = gw.publish(status("lo", "Ready"), token="anything")
        assert st == 200 and r["seq"] == 2, (st, r)


@t.test
def publish_token_is_required_when_configured():
    with Gateway("--publish-token", "s3cret-token") as gw:
        st, b = gw.publish(status("tok", "Loaded"))
        assert st == 401 and b["error"] == "unauthorized" and "Authorization" in b["detail"], (st, b)
        st, b = gw.publish(status("tok", "Loaded"), token="wrong")
        assert st == 403 and b["error"] == "forbidden" and b["detail"], (st, b)
        st, b = gw.http("POST", "/api/v1/publish", status("tok", "Loaded"),
                        {"authorization": "Basic czNjcmV0LXRva2Vu"})
        assert st in (401, 403), (st, b)
        assert gw.http("GET", "/api/v1/submissions/tok")[0] == 404
        st, b = gw.publish(status("tok", "Loaded", "with token"), token="s3cret-token")
        assert st == 200 and b["seq"] == 1, (st, b)
        st, s = gw.http("GET", "/api/v1/submissions/tok")
        assert s["status"] == "Loaded" and s["notification"] == "with token", s
        wait_log(gw, r"refused a publish", 3)


t.run()
