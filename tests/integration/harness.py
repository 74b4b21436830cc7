"""Shared helpers for statusgate's integration tests.

Each test file is a plain script run by ctest with Debian's /usr/bin/python3:
it starts the real `statusgate` binary on a free loopback port with a fresh
database, talks to it with real HTTP (urllib) and WebSocket (websockets)
clients, and ends with the line "N passed, N failed"; the exit status is 0
only when nothing failed. Nothing here skips: a missing dependency is a
failure.
"""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

import websockets

BIN = os.environ.get("STATUSGATE_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "statusgate")
SOURCE_DIR = os.environ.get("GW_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """A statusgate process on a loopback port with its own database."""

    def __init__(self, *args, db=None, port=None, env=None, workdir=None, ssl_ctx=None):
        self.ssl = ssl_ctx          # an ssl.SSLContext: talk https/wss
        self.workdir = workdir or tempfile.mkdtemp(prefix="sg-test-")
        self.db = db or os.path.join(self.workdir, "statusgate.db")
        self.port = port or free_port()
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.log_path = os.path.join(self.workdir, "gateway-%d.log" % self.port)

    @property
    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.ssl else "http", self.port)

    @property
    def ws_base(self):
        return "%s://127.0.0.1:%d" % ("wss" if self.ssl else "ws", self.port)

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        cmd = [BIN, "serve", "--listen", "127.0.0.1:%d" % self.port,
               "--db", self.db, "--web-dir", os.path.join(SOURCE_DIR, "web")] + self.args
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("statusgate exited with %s:\n%s" %
                                   (self.proc.returncode, self.logs()))
            try:
                st, _ = self.http("GET", "/healthz")
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("statusgate did not answer /healthz:\n" + self.logs())

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, body = self.http("GET", "/readyz")
            if st == 200:
                return body
            time.sleep(0.1)
        raise RuntimeError("statusgate never became ready:\n" + self.logs())

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the process; returns its exit status."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("statusgate did not exit within %ss of signal %s" % (timeout, sig))

    def kill(self):
        return self.stop(signal.SIGKILL)

    def freeze(self, timeout=10):
        """SIGSTOP, then wait until every thread has stopped: each one is out
        of the kernel then, so no system call of the process is still in
        flight (a thread inside fdatasync shows D until the call returns)."""
        self.proc.send_signal(signal.SIGSTOP)
        deadline = time.time() + timeout
        task = "/proc/%d/task" % self.proc.pid
        while True:
            states = []
            for tid in os.listdir(task):
                try:
                    with open("%s/%s/stat" % (task, tid)) as f:
                        states.append(f.read().rsplit(")", 1)[1].split()[0])
                except OSError:
                    pass       # the thread ended meanwhile
            if all(st in "TtZX" for st in states):   # stopped, or gone
                return
            if time.time() > deadline:
                raise RuntimeError("statusgate threads did not stop: %s" % states)
            time.sleep(0.001)

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def http(self, method, path, body=None, headers=None, timeout=10):
        """Returns (status, parsed JSON or text or bytes)."""
        data = body
        if body is not None and not isinstance(body, (bytes, str)):
            data = json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl) as r:
                return r.status, decode(r.read(), r.headers.get("content-type", ""))
        except urllib.error.HTTPError as e:
            return e.code, decode(e.read(), e.headers.get("content-type", ""))

    def publish(self, obj, token=None):
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = "Bearer " + token
        return self.http("POST", "/api/v1/publish", obj, headers)

    def ws(self, path, **kw):
        if self.ssl:
            kw.setdefault("ssl", self.ssl)
        return websockets.connect(self.ws_base + path, max_size=None, **kw)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.stop()


def decode(raw, ctype):
    if "json" in ctype:
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    if ctype.startswith("text/"):
        return raw.decode("utf-8", "replace")
    return raw


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def expect_silence(ws, seconds=0.3):
    """Asserts that nothing arrives on ws for a while."""
    try:
        msg = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError("unexpected frame: %r" % (msg,))


def status(sub, st, note=None, **extra):
    d = {"type": "status", "submission": sub, "status": st}
    if note is not None:
        d["notification"] = note
    d.update(extra)
    return d


def records(sub, kind, names, **extra):
    d = {"type": "records", "submission": sub,
         "records": [{"kind": kind, "name": n} for n in names]}
    d.update(extra)
    return d


def validation(sub, results, **extra):
    """results: [(kind, name, status, [(text, column), ...]), ...]"""
    d = {"type": "validation", "submission": sub, "results": [
        {"kind": k, "name": n, "status": s,
         "messages": [{"text": t, "column": c} for t, c in (msgs or [])]}
        for k, n, s, msgs in results]}
    d.update(extra)
    return d


class Runner:
    """Collects test functions (sync or async) and reports like a runner."""

    def __init__(self):
        self.tests = []

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def run(self):
        only = sys.argv[1:]
        passed = failed = 0
        for fn in self.tests:
            if only and fn.__name__ not in only:
                continue
            t0 = time.time()
            try:
                if asyncio.iscoroutinefunction(fn):
                    asyncio.run(fn())
                else:
                    fn()
                passed += 1
                print("ok   %s (%.2fs)" % (fn.__name__, time.time() - t0), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s (%.2fs)" % (fn.__name__, time.time() - t0), flush=True)
                traceback.print_exc()
        print("%d passed, %d failed" % (passed, failed))
        sys.exit(1 if failed or not passed else 0)


def raw_http(gw, request, timeout=10):
    """Sends request (bytes, sent exactly as given: no path normalisation) on
    a fresh connection and returns (status, {lower-case header: value}, body
    bytes), reading until the server closes or Content-Length is complete."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin-1").split("\r\n")
                hdrs = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                n = hdrs.get("content-length")
                if n is not None and len(rest) >= int(n):
                    return int(lines[0].split()[1]), hdrs, rest[:int(n)]
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if not sep:
                    raise ConnectionError("no HTTP response: %r" % data)
                return int(lines[0].split()[1]), hdrs, rest
            data += chunk


def raw_get(gw, path, extra=b""):
    return raw_http(gw, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Connection: close\r\n" + extra + b"\r\n")


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ThreadSanitizer", "UndefinedBehaviorSanitizer")


def assert_clean_exit(gw, rc):
    """Asserts exit status 0 and no sanitizer report (ASan, LSan at exit,
    UBSan) in the gateway's log."""
    log = gw.logs()
    for mark in SANITIZER_MARKS:
        assert mark not in log, "sanitizer report in the gateway log:\n" + log
    assert rc == 0, "statusgate exited with %r:\n%s" % (rc, log)


class CheckedGateway(Gateway):
    """A Gateway whose `with` block also fails the test when the process does
    not stop cleanly on SIGTERM: exit status 0 and no sanitizer report."""

    def __exit__(self, exc_type, *exc):
        if self.proc and self.proc.poll() is None:
            rc = self.stop()
        else:
            rc = self.proc.returncode if self.proc else 0
        if exc_type is None:
            assert_clean_exit(self, rc)


def wait_for(cond, what, timeout=120, gw=None):
    """Polls cond() until it returns something true (and returns that); on
    timeout fails with what, the last value and the tail of gw's log."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s (last: %r)%s" %
                         (what, last, "\n" + gw.logs()[-3000:] if gw else ""))


def submission_state(gw, key):
    """GET /api/v1/submissions/{key}: the document, or None (404, or the
    gateway not answering)."""
    try:
        st, body = gw.http("GET", "/api/v1/submissions/" + key)
    except OSError:
        return None
    return body if st == 200 else None


def all_events(gw, key, since=0):
    """Every stored event of key after since, read page by page (GET
    .../events answers at most ?limit=, 1000, per call)."""
    events = []
    while True:
        st, body = gw.http("GET", "/api/v1/submissions/%s/events?since=%d&limit=1000"
                           % (key, since), timeout=30)
        assert st == 200, (st, body)
        events += body["events"]
        if not body["more"]:
            return events
        since = body["next"]


def metric(gw, name):
    """The value of a /metrics sample: name alone or name{labels...}."""
    st, text = gw.http("GET", "/metrics")
    assert st == 200
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no metric " + name)


class RawWS:
    """A WebSocket client that speaks the framing by hand (RFC 6455), for
    what a library client will not do: send invalid or unmasked frames, or
    leave the server's close frame unanswered and keep reading."""

    def __init__(self, gw, path, headers=None, timeout=10, rcvbuf=None):
        import base64
        self.sock = socket.socket()
        if rcvbuf:      # a small window: the server's writes back up soon
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", gw.port))
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n%s\r\n" % (path, gw.port, key, extra)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake: %r" % self.buf)
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(head.split()[1])

    def send_frame(self, opcode, payload, masked=True, fin=True):
        n = len(payload)
        hdr = bytes([(0x80 if fin else 0) | opcode])
        mbit = 0x80 if masked else 0
        if n < 126:
            hdr += bytes([mbit | n])
        elif n < 65536:
            hdr += bytes([mbit | 126]) + n.to_bytes(2, "big")
        else:
            hdr += bytes([mbit | 127]) + n.to_bytes(8, "big")
        if masked:
            mask = os.urandom(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            hdr += mask
        self.sock.sendall(hdr + payload)

    def _need(self, n, deadline):
        while len(self.buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv_frame(self, timeout=5):
        """(opcode, payload), or None when nothing came in time; EOFError
        when the server closed the TCP connection"""
        deadline = time.time() + timeout
        try:
            self._need(2, deadline)
            n = self.buf[1] & 0x7f
            off = 2
            if n == 126:
                self._need(4, deadline)
                n, off = int.from_bytes(self.buf[2:4], "big"), 4
            elif n == 127:
                self._need(10, deadline)
                n, off = int.from_bytes(self.buf[2:10], "big"), 10
            self._need(off + n, deadline)
        except socket.timeout:
            return None
        opcode, payload = self.buf[0] & 0x0f, self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return opcode, payload

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
