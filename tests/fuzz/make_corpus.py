#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into tests/fuzz/corpus/<target>/.

    python3 tests/fuzz/make_corpus.py

The seeds are small realistic inputs and edge cases in each target's input
layout (see the comment at the top of tests/fuzz/fuzz_<target>.c). Files
named crash-* are inputs that once broke something; they are kept as they
are and never rewritten here. Running this again gives the same files.
"""
import base64
import hashlib
import hmac
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN_SECRET = b"fuzz-secret"   # the secret fuzz_token.c verifies with


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def j(obj):
    return json.dumps(obj, separators=(",", ":"))


# ---- publish: byte 0 = hint (bits 0-2), 256-byte limit (bit 3), reason size (bits 4-7)
def publish():
    no_hint, hint42, long_reason = 0x00, 0x01, 0xc0
    status = {"type": "status", "submission": "42", "status": "Loaded",
              "notification": "Data loaded"}
    seeds = {
        "status": (long_reason, j(status)),
        "status-snake-case": (long_reason, j(dict(status, status="need_revision"))),
        "status-with-id": (long_reason, j(dict(status, id="job-17:step-3"))),
        "status-numeric-key": (long_reason, j(dict(status, submission=4711))),
        "status-from-hint": (long_reason | hint42, j({"type": "status", "status": "Ready"})),
        "hint-mismatch": (long_reason | hint42, j(dict(status, submission="43"))),
        "envelope": (long_reason, j({"from": "importer", "to": "statusgate",
                                     "datetime": "2026-11-24T04:22:15Z", "body": status})),
        "envelope-body-string": (long_reason, j({"from": "validator", "datetime": 1764000000.5,
                                                 "body": j(status)})),
        "records": (long_reason, j({"type": "records", "submission": "42", "records": [
            {"kind": "animal", "name": "a1"}, {"kind": "sample", "name": "s1"}]})),
        "validation": (long_reason, j({"type": "validation", "submission": "42", "results": [
            {"kind": "animal", "name": "a1", "status": "Error",
             "messages": [{"text": "missing value", "column": "sex"}, {"text": "bad date"}]},
            {"kind": "sample", "name": "s1", "status": "pass"}]})),
        "notification": (long_reason, j({"type": "notification", "submission": "x.y-z_1",
                                         "notification": "Validating \u00e9\u4e2d"})),
        "reset": (no_hint, j({"type": "reset", "submission": "42"})),
        "unknown-type": (long_reason, j(dict(status, type="delete"))),
        "unknown-status": (long_reason, j(dict(status, status="Done"))),
        "bad-key": (long_reason, j(dict(status, submission="../42"))),
        "bad-kind": (long_reason, j({"type": "records", "submission": "42",
                                     "records": [{"kind": "messages", "name": "m"}]})),
        "bad-message": (long_reason, j({"type": "validation", "submission": "42", "results": [
            {"kind": "animal", "name": "a", "status": "Warning", "messages": [{"column": 1}]}]})),
        "not-object": (long_reason, "[1,2,3]"),
        "truncated": (long_reason, '{"type":"status","submission":"4'),
        "duplicate-member": (long_reason, '{"type":"status","type":"reset","submission":"42"}'),
        "invalid-utf8": (long_reason, b'{"type":"notification","submission":"42","notification":"\xc3\x28"}'),
        "nul-escape": (long_reason, '{"type":"notification","submission":"42","notification":"a\\u0000b"}'),
        "over-limit": (long_reason | 0x08, j(dict(status, notification="n" * 300))),
        "short-reason": (0x00, j(dict(status, status="Nope"))),
        "deep": (long_reason, "[" * 200 + "]" * 200),
    }
    for name, (b0, body) in seeds.items():
        write("publish", name, bytes([b0]) + (body if isinstance(body, bytes) else body.encode()))


# ---- command: the frame itself
def command():
    seeds = {
        "subscribe": {"op": "subscribe", "id": 1, "submission": "42"},
        "subscribe-full": {"op": "subscribe", "id": "s1", "submission": "42",
                           "since": {"epoch": "a1b2c3", "seq": 17},
                           "filter": {"kinds": ["status", "validation"]}, "mode": "latest"},
        "subscribe-nulls": {"op": "subscribe", "id": 2, "submission": "k", "since": None,
                            "filter": None, "mode": "all"},
        "unsubscribe": {"op": "unsubscribe", "id": 3, "submission": "42"},
        "ping": {"op": "ping", "id": 4},
        "ping-odd-id": {"op": "ping", "id": [1]},
        "no-op": {"id": 5},
        "unknown-op": {"op": "publish", "id": 6},
        "bad-key": {"op": "subscribe", "id": 7, "submission": ".."},
        "bad-filter": {"op": "subscribe", "id": 8, "submission": "42", "filter": {"kinds": ["x"]}},
        "bad-since": {"op": "subscribe", "id": 9, "submission": "42",
                      "since": {"epoch": "e", "seq": -1}},
        "bad-mode": {"op": "subscribe", "id": 10, "submission": "42", "mode": "newest"},
    }
    for name, obj in seeds.items():
        write("command", name, j(obj))
    write("command", "not-object", "42")
    write("command", "truncated", '{"op":"subscribe","submission":"4')
    write("command", "duplicate-member", '{"op":"ping","op":"ping"}')
    write("command", "invalid-utf8", b'{"op":"\xff\xfe"}')
    write("command", "empty", b"")


# ---- legacy: byte 0 = key (bits 0-1), 256-byte limit (bit 2)
def legacy():
    counts = {"animals": 10, "samples": 20, "animal_unkn": 2, "sample_unkn": 0,
              "animal_issues": 1, "sample_issues": 3}
    seeds = {
        "frame": {"message": "Loaded", "notification_message": "Data loaded",
                  "validation_message": counts},
        "frame-empty-counts": {"message": "Submitted", "notification_message": "",
                               "validation_message": ""},
        "frame-null-counts": {"message": "ready", "validation_message": None},
        "frame-animals-only": {"message": "Error", "validation_message": {"animals": 3}},
        "frame-max-count": {"message": "Waiting", "validation_message": {"samples": 2 ** 53}},
        "frame-count-too-big": {"message": "Waiting", "validation_message": {"samples": 2 ** 53 + 1}},
        "frame-negative-count": {"message": "Waiting", "validation_message": {"animals": -1}},
        "frame-real-count": {"message": "Waiting", "validation_message": {"animals": 1.5}},
        "frame-counts-string": {"message": "Waiting", "validation_message": "3"},
        "frame-unknown-status": {"message": "Finished", "notification_message": "x"},
        "frame-no-message": {"notification_message": "hello"},
        "new-format": {"type": "status", "status": "Completed", "notification": "done"},
        "new-format-other-key": {"type": "reset", "submission": "43"},
        "envelope": {"from": "legacy", "body": {"type": "notification", "notification": "hi"}},
    }
    for i, (name, obj) in enumerate(seeds.items()):
        write("legacy", name, bytes([i % 4]) + j(obj).encode())
    write("legacy", "over-limit", bytes([4]) + j({"message": "Loaded",
                                                 "notification_message": "n" * 300}).encode())
    write("legacy", "not-object", bytes([0]) + b'"Loaded"')


# ---- token: byte 0 = mode (bits 0-1), time index (bits 2-4)
def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def mint(header, payload, secret=TOKEN_SECRET):
    signing = b64(j(header).encode()) + b"." + b64(j(payload).encode())
    return signing + b"." + b64(hmac.new(secret, signing, hashlib.sha256).digest())


def token():
    hs = {"alg": "HS256", "typ": "JWT"}
    good = {"exp": 1700000600, "submissions": ["42", "a.b"]}
    raw = {
        "raw-good": mint(hs, good),
        "raw-star": mint(hs, {"exp": 1700000600.5, "nbf": 1699999999, "submissions": ["*"]}),
        "raw-expired": mint(hs, {"exp": 1600000000, "submissions": ["*"]}),
        "raw-other-secret": mint(hs, good, b"another"),
        "raw-alg-none": b64(b'{"alg":"none"}') + b"." + b64(j(good).encode()) + b".",
        "raw-two-parts": b64(b'{"alg":"HS256"}') + b"." + b64(j(good).encode()),
        "raw-padding": b64(b'{"alg":"HS256"}') + b"==." + b64(j(good).encode()) + b".AA",
    }
    for name, tok in raw.items():
        write("token", name, bytes([0]) + tok)      # mode 0, now = 1700000000
    payloads = {
        "payload-good": good,
        "payload-real-exp": {"exp": 1700000600.25, "submissions": ["x"]},
        "payload-nbf-future": {"exp": 1700000600, "nbf": 1700000300, "submissions": ["*"]},
        "payload-exp-int64-max": {"exp": 2 ** 63 - 1, "submissions": ["*"]},
        "payload-nbf-int64-min": {"exp": 1700000600, "nbf": -2 ** 63, "submissions": ["*"]},
        "payload-exp-huge-real": {"exp": 1e300, "submissions": ["*"]},
        "payload-no-exp": {"submissions": ["*"]},
        "payload-bad-key": {"exp": 1700000600, "submissions": ["a b", 7]},
        "payload-no-list": {"exp": 1700000600, "submissions": "42"},
    }
    for i, (name, p) in enumerate(payloads.items()):
        write("token", name, bytes([1 | (i % 8) << 2]) + j(p).encode())
    write("token", "payload-not-json", bytes([1]) + b"exp=1")
    headers = {
        "header-hs256": hs,
        "header-no-typ": {"alg": "HS256"},
        "header-none": {"alg": "none"},
        "header-lower": {"alg": "hs256"},
        "header-crit": {"alg": "HS256", "crit": ["b64"], "b64": False},
    }
    for name, h in headers.items():
        write("token", name, bytes([2]) + j(h).encode())
    write("token", "header-duplicate-alg", bytes([2]) + b'{"alg":"HS256","alg":"none"}')
    for name, s in {"b64-ok": b"eyJhbGciOiJIUzI1NiJ9", "b64-lone-sextet": b"Y",
                    "b64-unused-bits": b"YR", "b64-standard-alphabet": b"+/8"}.items():
        write("token", name, bytes([3]) + s)


# ---- path: byte 0 = output buffer size - 1, the rest one string
def path():
    seeds = [
        "/ws/submissions/42/", "/ws/submissions/a.b-c_D", "/ws/submissions/../",
        "/submissions/42", "/submissions/42/extra",
        "/api/v1/submissions", "/api/v1/submissions/42", "/api/v1/submissions/42/events",
        "/api/v1/submissions//", "/api/v1/submissions/42/events/x", "/api/v1/submissionsX",
        "index.html", "js/page.js", "../etc/passwd", "a/.hidden", "a//b",
        "a=1; token=eyJ.eyJ.sig; b=2", 'token="quoted"', " token = spaced ; x", "xtoken=no",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "bearer \t tok \t", "Bearer ", "Basic dXNlcg==",
        "0", "17", "18446744073709551615", "99999999999999999999999", "-1", "+5", "1x",
        "/sse/submissions/42", "/sse/submissions/42/", "/sse/submissions/a/b",
    ]
    for i, s in enumerate(seeds):
        write("path", "seed-%02d" % i, bytes([255 if i % 3 else 7]) + s.encode())


# ---- sse: byte 0 = epoch buffer size - 1, the rest an event id and event data
def sse():
    seeds = {
        "id": "cb559ee13a3be5cc9ffd7dfea3d3a837:25",
        "id-max-seq": "e:18446744073709551615",
        "id-overflow": "e:18446744073709551616",
        "id-colons": "a:b:7",
        "id-empty-epoch": ":5",
        "id-bad-char": "e.1:5",
        "id-long-epoch": "a" * 65 + ":1",
        "data-json": '{"op":"event","submission":"42","seq":26,"notification":"a\\nb"}',
        "data-lines": "one\ntwo\r\nthree\rfour\n",
        "data-blank-lines": "a\n\n\r\n\rb",
        "data-nul": "x:1\x00tail",
    }
    for name, s in seeds.items():
        write("sse", name, bytes([64 if "long" not in name else 200]) + s.encode())


# ---- amqp: flags, routing key length, message_id length, then the three
def amqp_input(rk, mid, body, flags):
    return bytes([flags, len(rk), len(mid)]) + rk + mid + body


def amqp():
    status = j({"type": "status", "status": "Loaded", "notification": "x"}).encode()
    seeds = {
        "delivery": (b"submission.42.status", b"msg-0001", status, 1),
        "delivery-dotted-key": (b"submission.a.b.c.records", b"",
                                j({"type": "records", "records": [
                                    {"kind": "animal", "name": "a"}]}).encode(), 0),
        "delivery-body-id": (b"submission.42.reset", b"mid",
                             j({"type": "reset", "id": "body-id"}).encode(), 1),
        "delivery-empty-mid": (b"submission.42.status", b"", status, 1),
        "delivery-mid-space": (b"submission.42.status", b"a b", status, 1),
        "delivery-mismatch": (b"submission.43.status", b"",
                              j({"type": "reset", "submission": "42"}).encode(), 0),
        "delivery-odd-rk": (b"statusgate.42", b"", status, 0),
        "delivery-over-limit": (b"submission.42.notification", b"",
                                j({"type": "notification", "notification": "n" * 300}).encode(), 2),
        "rpc-get": (b"", b"", j({"method": "get_submission", "submission": "42"}).encode(), 0),
        "rpc-presence": (b"", b"", j({"method": "presence", "submission": "k"}).encode(), 0),
        "rpc-unknown": (b"", b"", j({"method": "drop", "submission": "42"}).encode(), 0),
        "rpc-not-json": (b"", b"", b"method=presence", 0),
    }
    for name, (rk, mid, body, flags) in seeds.items():
        write("amqp", name, amqp_input(rk, mid, body, flags))


# ---- chunked: byte 0 = piece size - 1, the rest the body with its framing
def chunked():
    seeds = {
        "two-chunks": b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        "upper-hex": b"A\r\n0123456789\r\n0\r\n\r\n",
        "extension": b"3;name=value\r\nabc\r\n0;last\r\n\r\n",
        "blank-extension": b"3 \t\r\nabc\r\n0\r\n\r\n",
        "trailers": b"2\r\nhi\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n",
        "empty-body": b"0\r\n\r\n",
        "extra-after-end": b"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
        "sixteen-digits": b"0000000000000001\r\na\r\n0\r\n\r\n",
        "fifteen-digits": b"000000000000001\r\na\r\n0\r\n\r\n",
        "bare-lf": b"5\nhello\n0\n\n",
        "no-crlf-after-data": b"3\r\nabcX\r\n0\r\n\r\n",
        "huge-size": b"fffffffffffffff\r\nabc",
        "not-hex": b"zz\r\n",
        "truncated": b"5\r\nhel",
    }
    for i, (name, body) in enumerate(seeds.items()):
        write("chunked", name, bytes([(0, 1, 2, 6, 255)[i % 5]]) + body)


# ---- netaddr: byte 0 = output buffer size (mod 80) - 1, then xff [\n real ip]
def netaddr():
    seeds = [
        "203.0.113.7", "203.0.113.7, 10.0.0.1", "10.0.0.1, 10.0.0.2",
        "198.51.100.1, garbage, 10.0.0.1", "10.0.0.1,,192.168.1.1",
        " [2001:db8::1] ", "::ffff:192.0.2.1", "fd00::1, 2001:db8::2",
        "\n198.51.100.9", "unknown\n10.1.2.3", "10.0.0.1\n127.0.0.1",
        "127.0.0.0/8, ::1", "loopback, none", "10.0.0.0/33", "::/0",
        "1.2.3.4/-0", "300.1.1.1", "1:2:3:4:5:6:7:8:9", "",
    ]
    for i, s in enumerate(seeds):
        write("netaddr", "seed-%02d" % i, bytes([79 if i % 4 else 8]) + s.encode())


if __name__ == "__main__":
    for make in (publish, command, legacy, token, path, amqp, chunked, netaddr, sse):
        make()
