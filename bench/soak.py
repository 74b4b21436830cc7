#!/usr/bin/python3
"""Soak test (issue 10): one Release statusgate under a long, steady, mixed
load, sampled every 10 s, to see whether anything grows. Run by
bench/soak.sh (which builds the binary), by hand, never in CI:

  /usr/bin/python3 bench/soak.py --bin B/statusgate [--duration 1800]
        [--rate 200] [--subscribers 1500] [--legacy 200] [--churn 10]
        [--out DIR] [--no-docs] [--docs docs/BENCHMARKS.md] [--svg docs/soak.svg]

What runs (all on 127.0.0.1):
  broker   a private RabbitMQ node (tests/integration/rabbit.py), never the
           system one; the gateway consumes from it (--amqp)
  gateway  `statusgate serve` with a short history and short retention so
           that its store reaches a steady state within the run:
           --history 100, --retention 10m, --retention-final 60s,
           --dedup-window 120
  pub      (a process) publishes at --rate per second in total, half over
           HTTP (keep-alive connections, POST /api/v1/publish) and half over
           AMQP (pika, persistent, publisher confirms, a message_id each),
           every publish with an id; 1% are resent with the same id on
           purpose (they must come back as duplicates). The mix:
             30% to 8 hot submissions (status / notification), so their
                 event history is pruned all the time;
             30% to 300 watched submissions (mostly status / notification,
                 some records and validation over a bounded set of names);
             40% step short-lived submissions through a life cycle (Waiting,
                 records, validation with messages, Submitted, Completed or
                 Error) and then leave them, so retention deletes them.
           Status and notification publishes carry their send time in the
           notification text ("soak <src> <unix time>").
  subs     (a process) --subscribers /ws connections, each subscribed to 1 to
           3 watched or hot submissions (mode all), and --legacy
           /ws/submissions/<key>/ sockets; --churn connections a second are
           closed (60% with a close frame, 40% dropped without one: the
           socket is aborted) and reopened 0.05 to 2 s later; 80% of the /ws
           reopens resume with since = the last (epoch, seq) they saw, the
           others subscribe afresh (snapshot). Every /ws
           subscription checks that seqs grow by exactly one (after the
           snapshot, or after `since` on a resume): a jump is a gap, a repeat
           a duplicate.
  probe    (a process) 4 quiet /ws connections on the hot and a few watched
           submissions: publish-to-receipt latency from the time in the
           notification.

Every 10 s the orchestrator samples the gateway's VmRSS, its open
descriptors, the store's size (db + -wal + -shm), the probe latencies of
the window (p50, p99), /metrics (connections, publishes, store rows, the
gateway's own publish-to-send histogram), CPU of the gateway, the load
generator, the broker and the whole machine. At the end it drains (waits
until the gateway has taken every confirmed publish), stops the gateway with
SIGTERM, writes samples.csv, the SVG plot and (unless --no-docs) rewrites
the text between <!-- soak:begin --> and <!-- soak:end --> in
docs/BENCHMARKS.md (appending the section when it is missing).

Exit status: 0 when no gap, no duplicate delivery, no publish error and the
gateway lived (and exited 0 on SIGTERM); 1 otherwise.
"""
import argparse
import asyncio
import csv
import datetime
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("GW_SOURCE_DIR", ROOT)

import harness  # noqa: E402
import rabbit  # noqa: E402
import soak_svg  # noqa: E402
from gwhttp import http_get, metrics  # noqa: E402

BEGIN = "<!-- soak:begin -->"
END = "<!-- soak:end -->"

N_HOT = 8
N_WATCHED = 300
HOT = ["hot%d" % i for i in range(N_HOT)]
WATCHED = ["w%03d" % i for i in range(N_WATCHED)]
STATUSES = ["Waiting", "Loaded", "Submitted", "Need Revision", "Ready"]
KINDS = ["animal", "sample"]
TEXTS = ["missing value", "unknown breed", "date in the future", "bad ontology term",
         "duplicate name", "value out of range"]
COLUMNS = ["breed", "birth_date", "sex", "species", "weight"]


def log(msg):
    print("%s soak: %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------- publishes

class Mix:
    """The publishes of one publisher thread: its own random generator, ids
    and pool of short-lived submissions (no locking)."""

    def __init__(self, tag, seed):
        self.tag = tag
        self.rnd = random.Random(seed)
        self.n = 0
        self.eph_n = 0
        self.pool = [self.new_life() for _ in range(12)]

    def new_life(self):
        self.eph_n += 1
        return {"key": "e%s-%d" % (self.tag, self.eph_n), "step": 0,
                "names": {k: ["%s%d" % (k[0], i) for i in range(self.rnd.randint(5, 40))]
                          for k in KINDS}}

    def results(self, names, kind):
        out = []
        for nm in self.rnd.sample(names, max(1, len(names) // 3)):
            st = self.rnd.choice(["Pass", "Pass", "Warning", "Error"])
            msgs = [] if st == "Pass" else [
                {"text": self.rnd.choice(TEXTS), "column": self.rnd.choice(COLUMNS)}
                for _ in range(self.rnd.randint(1, 2))]
            out.append({"kind": kind, "name": nm, "status": st, "messages": msgs})
        return out

    def stamped(self, key, src):
        note = "soak %s %.6f" % (src, time.time())
        if self.rnd.random() < 0.5:
            return {"type": "status", "submission": key,
                    "status": self.rnd.choice(STATUSES), "notification": note}
        return {"type": "notification", "submission": key, "notification": note}

    def life_step(self):
        i = self.rnd.randrange(len(self.pool))
        life = self.pool[i]
        key, step = life["key"], life["step"]
        life["step"] += 1
        if step == 0:
            return {"type": "status", "submission": key, "status": "Waiting",
                    "notification": "created"}
        if step in (1, 2):
            kind = KINDS[step - 1]
            return {"type": "records", "submission": key,
                    "records": [{"kind": kind, "name": n} for n in life["names"][kind]]}
        if step in (3, 4, 5):
            kind = KINDS[step % 2]
            return {"type": "validation", "submission": key,
                    "results": self.results(life["names"][kind], kind)}
        if step == 6:
            return {"type": "status", "submission": key, "status": "Submitted",
                    "notification": "submitted"}
        self.pool[i] = self.new_life()
        if self.rnd.random() < 0.1:
            return {"type": "status", "submission": key, "status": "Error",
                    "notification": "rejected by the archive"}
        return {"type": "status", "submission": key, "status": "Completed",
                "notification": "accessioned"}

    def next(self, src):
        """(publish object without id, id)"""
        self.n += 1
        pid = "%s-%d" % (self.tag, self.n)
        r = self.rnd.random()
        if r < 0.3:
            return self.stamped(self.rnd.choice(HOT), src), pid
        if r < 0.6:
            key = self.rnd.choice(WATCHED)
            r2 = self.rnd.random()
            if r2 < 0.05:   # a bounded set of names: the watched rows stay bounded
                kind = self.rnd.choice(KINDS)
                return {"type": "records", "submission": key,
                        "records": [{"kind": kind, "name": "%s%d" % (kind[0], self.rnd.randrange(20))}
                                    for _ in range(3)]}, pid
            if r2 < 0.12:
                kind = self.rnd.choice(KINDS)
                return {"type": "validation", "submission": key,
                        "results": self.results(["%s%d" % (kind[0], i) for i in range(20)],
                                                kind)[:4]}, pid
            return self.stamped(key, src), pid
        return self.life_step(), pid


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}
        self.last_error = ""

    def add(self, name, n=1):
        with self.lock:
            self.c[name] = self.c.get(name, 0) + n

    def error(self, name, text):
        with self.lock:
            self.c[name] = self.c.get(name, 0) + 1
            self.last_error = text[:300]

    def snap(self):
        with self.lock:
            d = dict(self.c)
            d["last_error"] = self.last_error
            return d


def paced(rate, stop, fn, cnt):
    """calls fn() rate times a second until stop is set; when more than a
    second behind, forgets the backlog (and counts it) rather than burst"""
    interval = 1.0 / rate
    nxt = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if nxt > now:
            time.sleep(nxt - now)
        elif now - nxt > 1.0:
            cnt.add("behind_s", int(now - nxt))
            nxt = now
        fn()
        nxt += interval


def http_publisher(port, rate, tag, stop, cnt):
    mix = Mix("h" + tag, hash(("h", tag, os.getpid())))
    state = {"conn": None, "last": None}

    def post(body):
        for attempt in (1, 2):
            if state["conn"] is None:
                state["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                cnt.add("http_connects")
            try:
                state["conn"].request("POST", "/api/v1/publish", body,
                                      {"content-type": "application/json"})
                resp = state["conn"].getresponse()
                data = resp.read()
                if resp.will_close:
                    state["conn"].close()
                    state["conn"] = None
                return resp.status, data
            except (OSError, http.client.HTTPException):
                state["conn"].close()
                state["conn"] = None
                if attempt == 2:
                    raise
                cnt.add("http_retries")   # a keep-alive connection the server closed
        raise AssertionError("unreachable")

    def one():
        dup = state["last"] is not None and mix.rnd.random() < 0.01
        if dup:
            obj = state["last"]
        else:
            obj, pid = mix.next("h")
            obj["id"] = pid
        try:
            st, data = post(json.dumps(obj).encode())
        except (OSError, http.client.HTTPException) as e:
            cnt.error("http_errors", "HTTP publish: %r" % e)
            return
        if st != 200:
            cnt.error("http_errors", "HTTP publish: %d %s" % (st, data[:200]))
            return
        cnt.add("http_acked")
        try:
            answer = json.loads(data)
        except ValueError:
            cnt.error("http_errors", "HTTP publish: not JSON: %r" % data[:200])
            return
        if dup:
            cnt.add("http_dup_sent")
            if not answer.get("duplicate"):
                cnt.error("dup_not_detected", "HTTP resend of %s accepted again" % obj["id"])
        elif answer.get("duplicate"):
            cnt.error("http_errors", "HTTP publish %s taken for a duplicate" % obj["id"])
        state["last"] = obj

    paced(rate, stop, one, cnt)


def amqp_publisher(url, rate, tag, stop, cnt):
    import pika
    mix = Mix("a" + tag, hash(("a", tag, os.getpid())))
    state = {"ch": None, "conn": None, "last": None}

    def channel():
        if state["ch"] is None:
            state["conn"] = pika.BlockingConnection(pika.URLParameters(url))
            state["ch"] = state["conn"].channel()
            state["ch"].confirm_delivery()
            cnt.add("amqp_connects")
        return state["ch"]

    def one():
        dup = state["last"] is not None and mix.rnd.random() < 0.01
        if dup:
            obj, pid = state["last"]
        else:
            obj, pid = mix.next("a")
        try:
            channel().basic_publish(
                exchange="statusgate",
                routing_key="submission.%s.%s" % (obj["submission"], obj["type"]),
                body=json.dumps(obj).encode(),
                properties=pika.BasicProperties(delivery_mode=2, message_id=pid,
                                                content_type="application/json"),
                mandatory=True)
        except pika.exceptions.AMQPError as e:
            cnt.error("amqp_errors", "AMQP publish: %r" % e)
            try:
                state["conn"].close()
            except Exception:
                pass
            state["ch"] = state["conn"] = None
            return
        cnt.add("amqp_acked")
        if dup:
            cnt.add("amqp_dup_sent")
        state["last"] = (obj, pid)

    paced(rate, stop, one, cnt)
    if state["conn"]:
        state["conn"].close()


def pub_main(a, amqp_url, q, stop):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    a.pub_go.wait()
    cnt = Counters()
    half = a.rate / 2.0
    threads = []
    for i in range(2):
        threads.append(threading.Thread(target=http_publisher,
                                        args=(a.port, half / 2, str(i), stop, cnt), daemon=True))
        threads.append(threading.Thread(target=amqp_publisher,
                                        args=(amqp_url, half / 2, str(i), stop, cnt), daemon=True))
    for t in threads:
        t.start()
    while not stop.is_set():
        q.put(("pub", cnt.snap(), None))
        stop.wait(1.0)
    for t in threads:
        t.join(30)
    q.put(("pub", cnt.snap(), None))
    q.put(("pub", "done", None))


# ---------------------------------------------------------------- subscribers

class SeqCheck:
    """seq continuity of the /ws subscriptions of one process"""

    def __init__(self, stats, gaplog):
        self.stats = stats
        self.gaplog = gaplog

    def event(self, conn, m):
        key, seq, epoch = m["submission"], m["seq"], m["epoch"]
        last = conn.last.get(key)
        self.stats["events"] += 1
        if last is None or last[0] != epoch:
            # no snapshot seen yet on this subscription (should not happen:
            # every key is known before anyone subscribes)
            self.stats["event_before_snapshot"] += 1
        elif seq == last[1] + 1:
            pass
        elif seq > last[1] + 1:
            self.stats["gaps"] += 1
            self.stats["gap_events"] += seq - last[1] - 1
            self.gaplog.write("%.3f gap conn=%d key=%s last=%d got=%d resumed=%s\n"
                              % (time.time(), conn.id, key, last[1], seq, conn.resumed))
            self.gaplog.flush()
        else:
            self.stats["dups"] += 1
            self.gaplog.write("%.3f dup conn=%d key=%s last=%d got=%d resumed=%s\n"
                              % (time.time(), conn.id, key, last[1], seq, conn.resumed))
            self.gaplog.flush()
        if last is None or last[0] != epoch or seq > last[1]:
            conn.last[key] = (epoch, seq)


class Conn:
    def __init__(self, cid, kind, keys):
        self.id = cid
        self.kind = kind          # "ws" or "legacy"
        self.keys = keys
        self.last = {}            # ws: key -> (epoch, seq) last seen
        self.ws = None
        self.resumed = False
        self.resume_next = False
        self.churning = None      # set by the churner: how it ends this session


async def ws_session(c, base, stats, check, on_latency=None):
    import websockets
    ws = await websockets.connect(base + "/ws", ping_interval=None, max_size=None,
                                  open_timeout=20, close_timeout=5)
    c.ws = ws
    stats["opens"] += 1
    resumed_keys = set()
    try:
        c.resumed = c.resume_next
        for i, k in enumerate(c.keys):
            msg = {"op": "subscribe", "id": i + 1, "submission": k}
            if c.resume_next and k in c.last:
                e, s = c.last[k]
                msg["since"] = {"epoch": e, "seq": s}
                resumed_keys.add(k)
            elif not c.resume_next:
                c.last.pop(k, None)
            await ws.send(json.dumps(msg))
        if c.resumed:
            stats["resumes"] += 1
        async for raw in ws:
            m = json.loads(raw)
            op = m.get("op")
            if op == "event":
                check.event(c, m)
                if on_latency and m.get("type") in ("status", "notification"):
                    note = m.get("notification") or ""
                    if note.startswith("soak "):
                        parts = note.split()
                        on_latency(parts[1], time.time() - float(parts[2]))
            elif op == "snapshot":
                k = m["submission"]
                last = c.last.get(k)
                if k in resumed_keys:
                    stats["resume_snapshots"] += 1
                if last and last[0] == m["epoch"] and m["seq"] < last[1]:
                    stats["snapshot_went_back"] += 1
                c.last[k] = (m["epoch"], m["seq"])
                stats["snapshots"] += 1
            elif op == "ack":
                stats["acks"] += 1
                k = m.get("submission")
                if k in resumed_keys and k in c.last and m.get("seq", 0) > c.last[k][1]:
                    stats["resume_behind"] += 1   # events missed while away: a replay
            elif op == "error":
                stats["ws_errors"] += 1
                stats["last_ws_error"] = raw[:200]
    finally:
        c.ws = None


async def legacy_session(c, base, stats):
    import websockets
    ws = await websockets.connect(base + "/ws/submissions/%s/" % c.keys[0], ping_interval=None,
                                  max_size=None, open_timeout=20, close_timeout=5)
    c.ws = ws
    stats["opens"] += 1
    try:
        try:
            first = await asyncio.wait_for(ws.recv(), 10)
        except asyncio.TimeoutError:
            stats["legacy_no_initial"] += 1
            first = None
        if first is not None:
            m = json.loads(first)
            if "message" not in m:
                stats["legacy_bad_frame"] += 1
            stats["legacy_frames"] += 1
        async for raw in ws:
            stats["legacy_frames"] += 1
    finally:
        c.ws = None


async def conn_loop(c, base, stats, check, stopping, on_latency=None):
    """keeps c connected until stopping; sessions end by the churner (counted
    as churn) or otherwise (counted as unexpected closes)"""
    import websockets
    while not stopping.is_set():
        try:
            if c.kind == "ws":
                await ws_session(c, base, stats, check, on_latency)
            else:
                await legacy_session(c, base, stats)
            if not c.churning and not stopping.is_set():
                stats["unexpected_closes"] += 1
        except websockets.exceptions.ConnectionClosed as e:
            if not c.churning and not stopping.is_set():
                stats["unexpected_closes"] += 1
                stats["last_close"] = "%s: %s" % (type(e).__name__, e)
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
            if stopping.is_set():
                break
            stats["connect_errors"] += 1
            stats["last_connect_error"] = repr(e)[:200]
            await asyncio.sleep(1)
            c.resume_next = True
            continue
        if stopping.is_set():
            break
        how = c.churning
        c.churning = None
        if how:
            await asyncio.sleep(random.uniform(0.05, 2.0))
            c.resume_next = c.kind == "ws" and random.random() < 0.8
        else:
            await asyncio.sleep(1)
            c.resume_next = True


async def churner(conns, rate, stats, stopping):
    while not stopping.is_set():
        await asyncio.sleep(random.expovariate(rate))
        c = random.choice(conns)
        ws = c.ws
        if ws is None or c.churning:
            continue
        r = random.random()
        if r < 0.6:
            c.churning = "close"
            stats["churn_close"] += 1
            asyncio.ensure_future(ws.close())
        else:
            c.churning = "abort"
            stats["churn_abort"] += 1
            ws.transport.abort()


def new_stats():
    from collections import defaultdict
    return defaultdict(int)


async def subs_async(a, q, stop, role):
    base = "ws://127.0.0.1:%d" % a.port
    rnd = random.Random(7 if role == "subs" else 11)
    stats = new_stats()
    gaplog = open(os.path.join(a.workdir, "gaps-%s.log" % role), "a")
    check = SeqCheck(stats, gaplog)
    stopping = asyncio.Event()
    lat = {"h": [], "a": []}

    def on_latency(src, seconds):
        lat.setdefault(src, []).append(seconds)

    conns = []
    if role == "subs":
        for i in range(a.subscribers):
            keys = []
            for _ in range(rnd.randint(1, 3)):
                k = rnd.choice(HOT) if rnd.random() < 0.05 else rnd.choice(WATCHED)
                if k not in keys:
                    keys.append(k)
            conns.append(Conn(i, "ws", keys))
        for i in range(a.legacy):
            k = rnd.choice(HOT) if rnd.random() < 0.05 else rnd.choice(WATCHED)
            conns.append(Conn(a.subscribers + i, "legacy", [k]))
        rnd.shuffle(conns)
    else:
        for i in range(4):
            conns.append(Conn(100000 + i, "ws", HOT + rnd.sample(WATCHED, 4)))
    tasks = []
    for c in conns:   # about 200 connects a second: no thundering herd
        tasks.append(asyncio.ensure_future(
            conn_loop(c, base, stats, check, stopping, on_latency if role == "probe" else None)))
        await asyncio.sleep(0.005)
    churn_task = None
    t_last = time.time()
    while not stop.is_set():
        if role == "subs" and churn_task is None and a.churn_go.is_set():
            churn_task = asyncio.ensure_future(churner(conns, a.churn, stats, stopping))
        await asyncio.sleep(1.0)
        now = time.time()
        stats["loop_lag_ms_max"] = max(stats["loop_lag_ms_max"], int((now - t_last - 1.0) * 1000))
        t_last = now
        d = dict(stats)
        d["open_ws"] = sum(1 for c in conns if c.ws is not None and c.kind == "ws")
        d["open_legacy"] = sum(1 for c in conns if c.ws is not None and c.kind == "legacy")
        q.put((role, d, lat if role == "probe" else None))
        lat = {"h": [], "a": []}
        stats["loop_lag_ms_max"] = 0
    stopping.set()
    if churn_task:
        churn_task.cancel()
    await asyncio.gather(*[c.ws.close() for c in conns if c.ws is not None],
                         return_exceptions=True)
    await asyncio.wait(tasks, timeout=20)
    d = dict(stats)
    d["open_ws"] = d["open_legacy"] = 0
    q.put((role, d, lat if role == "probe" else None))
    q.put((role, "done", None))
    gaplog.close()


def subs_main(a, q, stop, role):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(subs_async(a, q, stop, role))


# ---------------------------------------------------------------- sampling

def cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def host_cpu():
    """(busy, total) jiffies of the whole machine"""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def vm_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(math.ceil(p / 100.0 * len(xs))) - 1))
    return xs[k]


def hist_quantile(cur, prev, name, p):
    """upper bucket bound (s) holding quantile p of a histogram's window"""
    pre = name + '_bucket{le="'
    buckets = []
    for k, v in cur.items():
        if k.startswith(pre):
            le = k[len(pre):-2]
            buckets.append((math.inf if le == "+Inf" else float(le), v - prev.get(k, 0)))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    want = p * buckets[-1][1]
    for le, c in buckets:
        if c >= want:
            return le
    return None


class Collector(threading.Thread):
    """drains the workers' queue: latest counters per role, the window's
    latencies"""

    def __init__(self, q):
        super().__init__(daemon=True)
        self.q = q
        self.lock = threading.Lock()
        self.last = {}
        self.done = set()
        self.lat = {"h": [], "a": []}
        self.lag = {}

    def run(self):
        while True:
            try:
                role, d, lat = self.q.get()
            except (EOFError, OSError):
                return
            with self.lock:
                if d == "done":
                    self.done.add(role)
                    continue
                self.last[role] = d
                self.lag[role] = max(self.lag.get(role, 0), d.get("loop_lag_ms_max", 0))
                if lat:
                    for k, v in lat.items():
                        self.lat.setdefault(k, []).extend(v)

    def take_window(self):
        with self.lock:
            lat, self.lat = self.lat, {"h": [], "a": []}
            lag, self.lag = self.lag, {}
            return lat, lag, {r: dict(d) for r, d in self.last.items()}


def tot(last, key):
    return sum(d.get(key, 0) for d in last.values() if isinstance(d, dict))


class Soak:
    def __init__(self, a):
        self.a = a
        self.rows = []
        self.prev_m = {}
        self.gw = None
        self.died = None
        self.notes = []

    def store_bytes(self):
        out = {}
        for suf in ("", "-wal", "-shm"):
            try:
                out[suf] = os.path.getsize(self.db + suf)
            except OSError:
                out[suf] = 0
        return out

    def sample(self, t, coll, procs):
        a = self.a
        lat, lag, last = coll.take_window()
        pid = self.gw.pid
        now = time.time()
        row = {"t_s": round(t, 1)}
        try:
            m = metrics(a.port, 10)
        except Exception as e:
            m = {}
            self.notes.append("t=%.0f s: /metrics failed: %r" % (t, e))
        try:
            row["rss_mb"] = round(vm_kb(pid, "VmRSS") / 1024.0, 2)
            row["hwm_mb"] = round(vm_kb(pid, "VmHWM") / 1024.0, 2)
            row["rss_anon_mb"] = round(vm_kb(pid, "RssAnon") / 1024.0, 2)
            row["fds"] = len(os.listdir("/proc/%d/fd" % pid))
            row["threads"] = len(os.listdir("/proc/%d/task" % pid))
        except OSError:
            row.update(rss_mb=None, hwm_mb=None, rss_anon_mb=None, fds=None, threads=None)
        for col, name in (("heap_use_mb", "statusgate_heap_in_use_bytes"),
                          ("heap_free_mb", "statusgate_heap_free_bytes"),
                          ("sqlite_mb", "statusgate_sqlite_memory_bytes")):
            v = m.get(name)
            row[col] = round(v / 1048576.0, 2) if v is not None and v >= 0 else None
        sb = self.store_bytes()
        row["store_mb"] = round(sum(sb.values()) / 1e6, 3)
        row["db_mb"] = round(sb[""] / 1e6, 3)
        row["wal_mb"] = round(sb["-wal"] / 1e6, 3)
        allat = lat.get("h", []) + lat.get("a", [])
        row["lat_n"] = len(allat)
        for name, xs in (("", allat), ("_http", lat.get("h", [])), ("_amqp", lat.get("a", []))):
            p50, p99 = pct(xs, 50), pct(xs, 99)
            if name == "":
                row["p50_ms"] = round(p50 * 1000, 2) if p50 is not None else None
            row["p99%s_ms" % name] = round(p99 * 1000, 2) if p99 is not None else None
        srv = hist_quantile(m, self.prev_m, "statusgate_publish_to_send_seconds", 0.99) if m else None
        row["srv_p99_le_ms"] = (None if srv is None else
                                ("inf" if srv == math.inf else round(srv * 1000, 2)))
        row["conns"] = int(m.get("statusgate_connections", -1))
        row["fds_minus_conns"] = (row["fds"] - row["conns"]
                                  if row["fds"] is not None and m else None)
        row["subscriptions"] = int(m.get("statusgate_subscriptions", -1))
        row["groups"] = int(m.get("statusgate_groups", -1))
        row["client_open"] = tot(last, "open_ws") + tot(last, "open_legacy")
        acked = tot(last, "http_acked") + tot(last, "amqp_acked")
        row["published_acked"] = acked
        prev = self.rows[-1] if self.rows else None
        dt = t - prev["t_s"] if prev else t
        row["pub_per_s"] = round((acked - (prev["published_acked"] if prev else 0)) / dt, 1) if dt > 0 else None
        row["gw_accepted"] = int(sum(m.get('statusgate_publishes_total{source="%s",outcome="accepted"}' % s, 0)
                                     for s in ("http", "amqp", "ws")))
        gw_bad = int(sum(m.get('statusgate_publishes_total{source="%s",outcome="%s"}' % (s, o), 0)
                         for s in ("http", "amqp", "ws") for o in ("invalid", "failed"))
                     + m.get("statusgate_dead_lettered_total", 0)
                     + m.get("statusgate_store_commit_failures_total", 0))
        row["publish_errors"] = int(tot(last, "http_errors") + tot(last, "amqp_errors")
                                    + tot(last, "dup_not_detected") + gw_bad)
        row["gaps"] = tot(last, "gaps")
        row["dups"] = tot(last, "dups")
        row["events_rx"] = tot(last, "events")
        row["churned"] = tot(last, "churn_close") + tot(last, "churn_abort")
        row["unexpected_closes"] = tot(last, "unexpected_closes")
        row["lagging_closes"] = int(m.get("statusgate_lagging_closes_total", 0))
        row["store_submissions"] = int(m.get("statusgate_store_submissions", -1))
        row["store_events"] = int(m.get("statusgate_store_events", -1))
        row["store_records"] = int(m.get("statusgate_store_records", -1))
        row["retention_deleted"] = int(m.get("statusgate_retention_deleted_total", 0))
        row["amqp_held"] = int(m.get("statusgate_amqp_held", 0))
        # CPU over the window, % of one core
        cpu = {"gw": cpu_s(pid), "load": sum(cpu_s(p) for p in procs),
               "broker": sum(cpu_s(p) for p in self.beam)}
        hb, ht = host_cpu()
        if self.prev_cpu:
            wall = now - self.prev_cpu["wall"]
            for k in ("gw", "load", "broker"):
                row["%s_cpu_pct" % k] = round(100 * (cpu[k] - self.prev_cpu[k]) / wall, 1)
            row["host_busy_pct"] = round(100 * (hb - self.prev_cpu["hb"]) /
                                         max(1, ht - self.prev_cpu["ht"]), 1)
        else:
            row.update(gw_cpu_pct=None, load_cpu_pct=None, broker_cpu_pct=None, host_busy_pct=None)
        cpu.update(wall=now, hb=hb, ht=ht)
        self.prev_cpu = cpu
        row["loadgen_lag_ms"] = max(lag.values()) if lag else 0
        self.prev_m = m or self.prev_m
        self.last = last
        self.rows.append(row)
        return row

    def run(self):
        a = self.a
        self.work = a.workdir
        log("work dir %s" % self.work)
        self.broker = rabbit.Broker(workdir=self.work)
        self.broker.start()
        self.beam = rabbit._group_pids(self.broker.proc.pid, "beam")
        self.db = os.path.join(self.work, "statusgate.db")
        a.port = harness.free_port()
        self.gw_log = os.path.join(self.work, "gateway.log")
        self.gw_args = [a.bin, "serve", "--listen", "127.0.0.1:%d" % a.port, "--db", self.db,
                        "--web-dir", os.path.join(ROOT, "web"), "--log-level", "info",
                        "--amqp", self.broker.url,
                        "--history", str(a.history), "--retention", a.retention,
                        "--retention-final", a.retention_final,
                        "--dedup-window", str(a.dedup_window),
                        "--max-connections", "10000", "--max-connections-per-ip", "10000"]
        self.gw = subprocess.Popen(self.gw_args, stdout=open(self.gw_log, "ab"),
                                   stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            if self.gw.poll() is not None:
                raise RuntimeError("statusgate exited at start:\n" + open(self.gw_log).read()[-3000:])
            try:
                if http_get(a.port, "/readyz", 2)[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("statusgate never became ready")
            time.sleep(0.2)
        # every watched and hot key is known before anyone subscribes
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
        for k in HOT + WATCHED:
            conn.request("POST", "/api/v1/publish",
                         json.dumps({"type": "status", "submission": k, "status": "Waiting",
                                     "notification": "seeded", "id": "seed-" + k}).encode(),
                         {"content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError("seeding %s: %d" % (k, r.status))
        conn.close()

        ctx = mp.get_context("fork")
        q = ctx.Queue()
        stop_pub, stop_subs = ctx.Event(), ctx.Event()
        a.churn_go, a.pub_go = ctx.Event(), ctx.Event()
        coll = Collector(q)
        workers = {
            "probe": ctx.Process(target=subs_main, args=(a, q, stop_subs, "probe"), name="soak-probe"),
            "subs": ctx.Process(target=subs_main, args=(a, q, stop_subs, "subs"), name="soak-subs"),
            "pub": ctx.Process(target=pub_main, args=(a, self.broker.url, q, stop_pub), name="soak-pub"),
        }
        for w in workers.values():   # all forks before the collector thread
            w.start()
        coll.start()
        target = a.subscribers + a.legacy
        log("connecting %d /ws and %d legacy subscribers" % (a.subscribers, a.legacy))
        deadline = time.time() + 180
        while True:
            time.sleep(1)
            with coll.lock:
                d = coll.last.get("subs", {})
                n = d.get("open_ws", 0) + d.get("open_legacy", 0)
            if n >= target:
                break
            if time.time() > deadline:
                raise RuntimeError("only %d of %d subscribers connected" % (n, target))
        log("%d subscribers up; publishing %g/s for %d s, churning %g connections/s"
            % (n, a.rate, a.duration, a.churn))
        self.prev_cpu = None
        procs = [w.pid for w in workers.values()]
        self.t0 = time.time()
        a.pub_go.set()
        a.churn_go.set()
        self.started = datetime.datetime.now(datetime.timezone.utc)
        coll.take_window()
        self.sample(0.0, coll, procs)
        self.rows.clear()
        next_t = self.t0 + a.sample
        while next_t <= self.t0 + a.duration + 0.5:
            time.sleep(max(0, next_t - time.time()))
            if self.gw.poll() is not None:
                self.died = "statusgate exited with %s at t=%.0f s" % (self.gw.returncode,
                                                                       time.time() - self.t0)
                log(self.died)
                break
            row = self.sample(next_t - self.t0, coll, procs)
            log("t=%4.0fs rss %.1f MB fds %s store %.2f MB p50/p99 %s/%s ms conns %d "
                "pub %s/s acked %d errors %d gaps %d churned %d cpu gw %s%% load %s%% host %s%%"
                % (row["t_s"], row["rss_mb"] or 0, row["fds"], row["store_mb"], row["p50_ms"],
                   row["p99_ms"], row["conns"], row["pub_per_s"], row["published_acked"],
                   row["publish_errors"], row["gaps"], row["churned"], row["gw_cpu_pct"],
                   row["load_cpu_pct"], row["host_busy_pct"]))
            self.write_csv()
            next_t += a.sample
        self.t_end = time.time() - self.t0

        # drain: publishers stop, the gateway takes every confirmed publish
        stop_pub.set()
        workers["pub"].join(60)
        deadline = time.time() + 10
        while "pub" not in coll.done and time.time() < deadline:
            time.sleep(0.1)
        deadline = time.time() + 90
        self.drained = False
        while not self.died and time.time() < deadline:
            time.sleep(1)
            try:
                m = metrics(a.port, 10)
            except Exception:
                continue
            with coll.lock:
                p = dict(coll.last.get("pub", {}))
            got = sum(m.get('statusgate_publishes_total{source="%s",outcome="%s"}' % (s, o), 0)
                      for s in ("http", "amqp") for o in ("accepted", "duplicate", "invalid", "failed"))
            want = p.get("http_acked", 0) + p.get("amqp_acked", 0) + len(HOT) + len(WATCHED)
            if got >= want:
                self.drained = True
                break
        time.sleep(2)      # the last events reach the subscribers
        stop_subs.set()
        for w in workers.values():
            w.join(60)
            if w.is_alive():
                w.terminate()
        time.sleep(0.5)
        self.final_m = {}
        if self.gw.poll() is None:
            try:
                self.final_m = metrics(a.port, 10)
            except Exception as e:
                self.notes.append("final /metrics failed: %r" % e)
            self.gw.send_signal(signal.SIGTERM)
            try:
                self.gw_rc = self.gw.wait(60)
            except subprocess.TimeoutExpired:
                self.gw.kill()
                self.gw_rc = "killed after 60 s"
        else:
            self.gw_rc = self.gw.returncode
            if not self.died:
                self.died = "statusgate exited with %s during the drain" % self.gw_rc
        with coll.lock:
            self.final = {r: dict(d) for r, d in coll.last.items()}
        self.broker.stop()
        self.write_csv()
        return self

    def write_csv(self):
        path = os.path.join(self.a.out, "samples.csv")
        if not self.rows:
            return
        cols = list(self.rows[0].keys())
        for r in self.rows:
            for k in r:
                if k not in cols:
                    cols.append(k)
        with open(path + ".tmp", "w", newline="") as f:
            w = csv.DictWriter(f, cols)
            w.writeheader()
            for r in self.rows:
                w.writerow(r)
        os.replace(path + ".tmp", path)


# ---------------------------------------------------------------- analysis

def num(v):
    return v if isinstance(v, (int, float)) and v is not None else None


def fit(ts, ys):
    """least-squares slope per second and its standard error"""
    pts = [(t, y) for t, y in zip(ts, ys) if num(y) is not None]
    n = len(pts)
    if n < 3:
        return None, None
    mt = sum(t for t, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((t - mt) ** 2 for t, _ in pts)
    if sxx == 0:
        return None, None
    b = sum((t - mt) * (y - my) for t, y in pts) / sxx
    res = sum((y - my - b * (t - mt)) ** 2 for t, y in pts)
    se = math.sqrt(res / (n - 2) / sxx)
    return b, se


def mean(xs):
    xs = [x for x in xs if num(x) is not None]
    return sum(xs) / len(xs) if xs else None


# (column, label, unit, verdict threshold in % of the mean per hour or None:
# no verdict for figures that follow the load rather than the gateway's age)
FIGURES = [
    ("rss_mb", "gateway RSS", "MB", 10.0),
    ("rss_anon_mb", "gateway RSS, anonymous (heap)", "MB", 10.0),
    ("heap_use_mb", "heap in use (allocated, not freed)", "MB", 10.0),
    ("heap_free_mb", "heap free but held by the allocator", "MB", None),
    ("sqlite_mb", "of the heap in use, SQLite's", "MB", None),
    ("fds", "open descriptors", "", None),
    ("fds_minus_conns", "descriptors beyond connections", "", 10.0),
    ("store_mb", "store size (db + wal + shm)", "MB", 10.0),
    ("store_events", "stored events", "", 10.0),
    ("store_submissions", "stored submissions", "", 10.0),
    ("store_records", "stored records", "", 10.0),
    ("p50_ms", "latency p50 (probes)", "ms", None),
    ("p99_ms", "latency p99 (probes)", "ms", 50.0),
    ("p99_http_ms", "latency p99, HTTP publishes", "ms", None),
    ("p99_amqp_ms", "latency p99, AMQP publishes", "ms", None),
    ("conns", "connections open", "", None),
    ("pub_per_s", "publishes acked per second", "/s", None),
    ("gw_cpu_pct", "gateway CPU (% of one core)", "%", None),
    ("load_cpu_pct", "load generator CPU (% of one core)", "%", None),
    ("broker_cpu_pct", "broker CPU (% of one core)", "%", None),
    ("host_busy_pct", "machine busy (both cores)", "%", None),
]

RULE = ("A figure **grows** when its least-squares slope over the second half of the run, "
        "per hour, is above its threshold (a share of its second-half mean) and its 2-sigma "
        "lower bound is above 0; it is **flat** when the whole 2-sigma interval of the slope "
        "lies within plus or minus the threshold; **shrinks** mirrors grows; anything else is "
        "**inconclusive** (too noisy for this run to tell).")


def verdict(slope_h, se_h, mean_v, thr):
    if thr is None or slope_h is None or not mean_v:
        return ""
    rel = 100.0 * slope_h / abs(mean_v)
    lo = 100.0 * (slope_h - 2 * se_h) / abs(mean_v)
    up = 100.0 * (slope_h + 2 * se_h) / abs(mean_v)
    if rel > thr and lo > 0:
        return "grows"
    if rel < -thr and up < 0:
        return "shrinks"
    if -thr <= lo and up <= thr:
        return "flat"
    return "inconclusive"


def summarise(rows):
    T = rows[-1]["t_s"] if rows else 0
    out = []
    ts = [r["t_s"] for r in rows]
    for col, label, unit, thr in FIGURES:
        ys = [num(r.get(col)) for r in rows]
        first = mean([y for t, y in zip(ts, ys) if t <= 60])
        last = mean([y for t, y in zip(ts, ys) if t >= T - 60])
        mx = max([y for y in ys if y is not None], default=None)
        half = [(t, y) for t, y in zip(ts, ys) if t >= T / 2]
        b, se = fit([t for t, _ in half], [y for _, y in half])
        hm = mean([y for _, y in half])
        slope_h = b * 3600 if b is not None else None
        se_h = se * 3600 if se is not None else None
        rel = (100.0 * slope_h / abs(hm)) if slope_h is not None and hm else None
        out.append({"col": col, "label": label, "unit": unit, "thr": thr, "first": first,
                    "last": last, "max": mx, "slope_h": slope_h, "se_h": se_h, "rel": rel,
                    "half_mean": hm, "verdict": verdict(slope_h, se_h, hm, thr)})
    return out


def f(v, digits=1):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return "{:,.0f}".format(v)
        return "%.*f" % (digits, v)
    return "{:,}".format(v)


def with_unit(v, unit, digits=2):
    if v is None:
        return "n/a"
    if not unit:
        return f(v, digits)
    if unit.startswith("%") or unit.startswith("/"):
        return f(v, digits) + unit
    return f(v, digits) + " " + unit


def pearson(xs, ys):
    pts = [(x, y) for x, y in zip(xs, ys) if num(x) is not None and num(y) is not None]
    n = len(pts)
    if n < 3:
        return None
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    syy = sum((y - my) ** 2 for _, y in pts)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else None


def thirds(rows, col):
    """slope per hour over each third of the run"""
    T = rows[-1]["t_s"]
    out = []
    for i in range(3):
        pts = [(r["t_s"], num(r.get(col))) for r in rows if i * T / 3 <= r["t_s"] <= (i + 1) * T / 3]
        b, _ = fit([t for t, _ in pts], [y for _, y in pts])
        out.append(b * 3600 if b is not None else None)
    return out


def reading(s, res, a, rows=None):
    """plain sentences computed from the summary (and the samples)"""
    rows = rows or []
    judged = [x for x in s if x["thr"] is not None]
    grows = [x["label"] for x in judged if x["verdict"] == "grows"]
    unsure = [x["label"] for x in judged if x["verdict"] == "inconclusive"]
    lines = [RULE, ""]
    if grows:
        lines.append("**Something grows: %s.**" % ", ".join(grows))
    elif unsure:
        lines.append("**Nothing grows measurably; inconclusive: %s.**" % ", ".join(unsure))
    else:
        lines.append("**Nothing grows: every judged figure is flat (or shrinks) over the second "
                     "half.**")
    lines.append("")
    T = rows[-1]["t_s"] if rows else 0
    churn_s = (rows[-1].get("churned") or 0) / T if T else 0
    pub_s = (rows[-1].get("published_acked") or 0) / T if T else 0
    for x in judged:
        if x["slope_h"] is None:
            lines.append("- %s: too few samples in the second half to fit a slope." % x["label"])
            continue
        line = ("- %s: **%s**, %s per hour ± %s, that is %s%% of its second-half mean "
                "(%s) per hour (threshold %g%%); first minute %s, last minute %s, max %s." %
                (x["label"], x["verdict"], with_unit(x["slope_h"], x["unit"]),
                 with_unit(x["se_h"], x["unit"]), f(x["rel"], 1),
                 with_unit(x["half_mean"], x["unit"]), x["thr"],
                 with_unit(x["first"], x["unit"]), with_unit(x["last"], x["unit"]),
                 with_unit(x["max"], x["unit"])))
        if x["verdict"] == "grows" and len(rows) >= 9:
            th = thirds(rows, x["col"])
            if None not in th:
                line += (" Slope by thirds of the run: %s per hour." %
                         ", ".join(with_unit(v, x["unit"]) for v in th))
                if th[1] > 0 and th[2] >= 0:
                    ratio = th[2] / th[1]
                    line += (" The last third's slope is %s%% of the middle third's: %s." %
                             (f(100 * ratio, 0),
                              "levelling off, though not level within this run" if ratio < 0.5
                              else "slowing down, not level within this run" if ratio < 0.9
                              else "not slowing down"))
            if x["unit"] == "MB" and x["col"].startswith("rss") and x["slope_h"] > 0:
                per_s = x["slope_h"] * 1e6 / 3600
                line += (" Were it a leak, it would be about %s bytes per churned connection "
                         "(%s/s) or %s bytes per publish (%s/s)." %
                         (f(per_s / churn_s, 0) if churn_s else "n/a", f(churn_s, 1),
                          f(per_s / pub_s, 1) if pub_s else "n/a", f(pub_s, 0)))
        if x["col"] == "store_records":
            line += (" (By construction the %d watched submissions draw their records from 20 "
                     "names per kind, at most %s records in all, which fill up by chance over "
                     "the run; the short-lived submissions' records go with retention.)" %
                     (N_WATCHED, f(N_WATCHED * 2 * 20)))
        if x["col"] == "p99_ms" and rows:
            r = pearson([num(r.get("p99_ms")) for r in rows],
                        [num(r.get("host_busy_pct")) for r in rows])
            if r is not None:
                line += (" Its correlation with how busy the whole machine was over the same "
                         "windows: r = %s%s." % (f(r, 2), ", so it moved mostly with the rest of "
                                                  "the machine, not with the gateway's age"
                                                  if r >= 0.5 else ""))
        lines.append(line)
    return lines


def render_section(soak, s, res, a):
    rows = soak.rows
    T = rows[-1]["t_s"] if rows else 0
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    fin = soak.final
    subs, pub = fin.get("subs", {}), fin.get("pub", {})
    L = [BEGIN, "## Soak", "",
         "What it measures (issue 10): one Release `statusgate` under %d minutes of steady mixed "
         "load, to see whether anything grows: memory, descriptors, the store, latency. "
         "`bench/soak.sh` builds git HEAD, starts a private RabbitMQ node and the gateway, "
         "drives it with `bench/soak.py` and rewrites this block; not run in CI. "
         "`bench/soak.py`'s docstring says exactly what the load is." % round(T / 60), "",
         "Measured %s on %s cores (nproc), %s; statusgate %s. Command: `%s`." %
         (soak.started.strftime("%Y-%m-%d %H:%M UTC"), os.cpu_count(), cpu, a.rev, a.command), "",
         "Load: %d s measured (a sample every %d s, %d samples), publishes at %g/s "
         "requested (half HTTP keep-alive, half AMQP persistent with confirms; %s acked in all, "
         "%s/s on average), %d `/ws` subscribers on 1 to 3 of %d watched and %d hot "
         "submissions plus %d legacy sockets, %g connections/s churned (%s closes with a close "
         "frame, %s dropped without one; %s `/ws` reopens resumed with `since`), 4 latency "
         "probes. Gateway options: `--history %d --retention %s --retention-final %s "
         "--dedup-window %d`. Every publish to a watched submission is one event, so each "
         "watched submission reaches its %d events of history after about %s minutes and "
         "the store should be steady from then on (short-lived submissions go %s after "
         "they end)." %
         (round(T), a.sample, len(rows), a.rate, f(res["acked"]), f(res["acked"] / T if T else 0.0, 1),
          a.subscribers, N_WATCHED, N_HOT, a.legacy, a.churn, f(subs.get("churn_close", 0)),
          f(subs.get("churn_abort", 0)), f(subs.get("resumes", 0)), a.history, a.retention,
          a.retention_final, a.dedup_window, a.history,
          f(a.history / (a.rate * 0.3 / N_WATCHED) / 60.0, 1), a.retention_final), "",
         "| figure | first minute | last minute | max | 2nd-half slope per hour | slope, % of mean per hour | verdict |",
         "|---|---|---|---|---|---|---|"]
    for x in s:
        L.append("| %s | %s | %s | %s | %s ± %s | %s | %s |" %
                 (x["label"], with_unit(x["first"], x["unit"]), with_unit(x["last"], x["unit"]),
                  with_unit(x["max"], x["unit"]), with_unit(x["slope_h"], x["unit"]),
                  f(x["se_h"], 2), f(x["rel"], 1) if x["rel"] is not None else "n/a",
                  x["verdict"] or "-"))
    L += ["", "![soak](soak.svg)", "",
          "Correctness over the run: %s gaps (%s events missed) and %s duplicate deliveries "
          "seen by the `/ws` subscriptions (%s events checked; %s resumed subscriptions had "
          "missed events and got them replayed, %s were answered with a snapshot instead); %s publish errors (HTTP %s, AMQP %s, "
          "gateway invalid/failed/dead-lettered %s, resends not taken for duplicates %s); "
          "%s unexpected closes by the server, %s lagging closes, %s legacy sockets without "
          "their initial frame; gateway %s, exit status on SIGTERM %s; drained: %s." %
          (f(res["gaps"]), f(res["gap_events"]), f(res["dups"]), f(res["events"]),
           f(res["resume_behind"]), f(res["resume_snapshots"]), f(res["errors"]), f(pub.get("http_errors", 0)),
           f(pub.get("amqp_errors", 0)), f(res["gw_bad"]), f(pub.get("dup_not_detected", 0)),
           f(res["unexpected"]), f(res["lagging"]), f(subs.get("legacy_no_initial", 0)),
           "died (" + soak.died + ")" if soak.died else "stayed up", soak.gw_rc,
           "yes" if soak.drained else "NO"), "",
          "Reading (computed from the samples, not written by hand):", ""]
    L += reading(s, res, a, rows)
    L += ["", "Caveats: the machine is a shared 2-core VM, so latency and CPU move with "
          "whatever else runs (the `machine busy` row); the load generator (Python) runs on "
          "the same cores and its CPU is in the table; RSS includes the page caches of "
          "SQLite's two connections (writer and reader), which fill as the store grows; the "
          "anonymous part of RSS is the heap; store size is the files on disk (SQLite reuses freed "
          "pages, the file does not shrink). A %d-minute run bounds slow leaks only: a slope "
          "below the thresholds here is a bound for this load, not a proof." % round(T / 60),
          END]
    return "\n".join(L) + "\n"


def write_docs(path, text):
    with open(path) as fh:
        doc = fh.read()
    if BEGIN in doc and END in doc:
        pre, rest = doc.split(BEGIN, 1)
        post = rest.split(END, 1)[1]
        doc = pre + text.rstrip("\n") + post
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    with open(path, "w") as fh:
        fh.write(doc)


def plot(rows, path, rev, started):
    ts = [r["t_s"] for r in rows]
    g = lambda c: [num(r.get(c)) for r in rows]  # noqa: E731
    soak_svg.write(path, ts, [
        {"title": "gateway memory (MB)", "series": [("VmRSS", g("rss_mb")),
                                                     ("heap in use", g("heap_use_mb")),
                                                     ("heap held free", g("heap_free_mb"))]},
        {"title": "open descriptors", "series": [("fds", g("fds")), ("connections", g("conns"))]},
        {"title": "store size (MB, db + wal + shm)", "series": [("all", g("store_mb")),
                                                                ("db", g("db_mb"))]},
        {"title": "publish-to-receipt latency (ms)", "series": [("p99", g("p99_ms")),
                                                                ("p50", g("p50_ms"))]},
    ], caption="statusgate soak, %s, %s, a sample every 10 s" %
       (rev, started.strftime("%Y-%m-%d")))


# the options a report needs (kept in final.json for --render-from)
ARGS = ("duration", "rate", "subscribers", "legacy", "churn", "sample", "history", "retention",
        "retention_final", "dedup_window", "rev", "command")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin")
    p.add_argument("--duration", type=float, default=float(os.environ.get("DURATION", 1800)))
    p.add_argument("--rate", type=float, default=200.0, help="publishes per second in total")
    p.add_argument("--subscribers", type=int, default=1500)
    p.add_argument("--legacy", type=int, default=200)
    p.add_argument("--churn", type=float, default=10.0, help="connections churned per second")
    p.add_argument("--sample", type=int, default=10)
    p.add_argument("--history", type=int, default=100)
    p.add_argument("--retention", default="10m")
    p.add_argument("--retention-final", default="60s")
    p.add_argument("--dedup-window", type=int, default=120)
    p.add_argument("--out", default=None, help="directory for samples.csv and logs")
    p.add_argument("--rev", default="?")
    p.add_argument("--command", default="bench/soak.sh")
    p.add_argument("--docs", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    p.add_argument("--svg", default=os.path.join(ROOT, "docs", "soak.svg"))
    p.add_argument("--no-docs", action="store_true")
    p.add_argument("--render-from", metavar="DIR",
                   help="only rewrite the report from DIR/samples.csv and DIR/final.json")
    a = p.parse_args()
    if a.render_from:
        return render_from(a)
    if not a.bin:
        p.error("--bin is required")
    a.workdir = tempfile.mkdtemp(prefix="soak-")
    os.chmod(a.workdir, 0o755)   # the broker's directory is in it; it runs as rabbitmq
    a.out = a.out or a.workdir
    os.makedirs(a.out, exist_ok=True)
    soak = Soak(a)
    try:
        soak.run()
    finally:
        if soak.gw and soak.gw.poll() is None:
            soak.gw.kill()
        b = getattr(soak, "broker", None)
        if b:
            b.stop()
    rows = soak.rows
    fin = soak.final
    m = soak.final_m
    gw_bad = int(sum(m.get('statusgate_publishes_total{source="%s",outcome="%s"}' % (s, o), 0)
                     for s in ("http", "amqp", "ws") for o in ("invalid", "failed"))
                 + m.get("statusgate_dead_lettered_total", 0)
                 + m.get("statusgate_store_commit_failures_total", 0))
    res = {"gaps": tot(fin, "gaps"), "gap_events": tot(fin, "gap_events"), "dups": tot(fin, "dups"),
           "events": tot(fin, "events"), "resume_snapshots": tot(fin, "resume_snapshots"),
           "resume_behind": tot(fin, "resume_behind"),
           "unexpected": tot(fin, "unexpected_closes"), "gw_bad": gw_bad,
           "lagging": int(m.get("statusgate_lagging_closes_total", 0)),
           "acked": tot(fin, "http_acked") + tot(fin, "amqp_acked")}
    res["errors"] = (tot(fin, "http_errors") + tot(fin, "amqp_errors")
                     + tot(fin, "dup_not_detected") + gw_bad)
    # what the gateway took against what the publishers had acknowledged
    if m:
        got = {s: sum(m.get('statusgate_publishes_total{source="%s",outcome="%s"}' % (s, o), 0)
                      for o in ("accepted", "duplicate")) for s in ("http", "amqp")}
        pub = fin.get("pub", {})
        miss_amqp = pub.get("amqp_acked", 0) - got["amqp"]
        miss_http = pub.get("http_acked", 0) + len(HOT) + len(WATCHED) - got["http"]
        res["unaccounted"] = miss_amqp + miss_http
        if miss_amqp or miss_http:
            soak.notes.append("publishes acknowledged to the publishers but not counted by the "
                              "gateway: AMQP %d, HTTP %d" % (miss_amqp, miss_http))
    args = {k: getattr(a, k) for k in ARGS}
    with open(os.path.join(a.out, "final.json"), "w") as fh:
        json.dump({"final": fin, "metrics": m, "res": res, "notes": soak.notes,
                   "died": soak.died, "gw_rc": soak.gw_rc, "drained": soak.drained,
                   "started": soak.started.isoformat() if getattr(soak, "started", None) else None,
                   "args": args, "summary": summarise(rows) if rows else []},
                  fh, indent=1, default=str)
    # the gateway's log: warnings and errors by where they come from
    counts = {}
    try:
        with open(soak.gw_log, errors="replace") as fh:
            for line in fh:
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("warn", "error"):
                    k = parts[1] + " " + parts[2]
                    counts[k] = counts.get(k, 0) + 1
    except OSError:
        pass
    if os.path.abspath(a.out) != os.path.abspath(a.workdir):
        shutil.copy(soak.gw_log, os.path.join(a.out, "gateway.log"))
        for role in ("subs", "probe"):
            g = os.path.join(a.workdir, "gaps-%s.log" % role)
            if os.path.exists(g):
                shutil.copy(g, a.out)
    for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:10]:
        log("gateway log: %d x %s" % (v, k))
    report(a, soak, res)
    ok = (not soak.died and soak.gw_rc == 0 and res["gaps"] == 0 and res["dups"] == 0
          and res["errors"] == 0 and soak.drained)
    if ok and os.path.abspath(a.out) != os.path.abspath(a.workdir):
        shutil.rmtree(a.workdir, ignore_errors=True)
    elif not ok:
        log("kept the work dir (store, broker, logs): %s" % a.workdir)
    sys.exit(0 if ok else 1)


def report(a, soak, res):
    """the summary on stderr, the plot and the docs section (or section.md)"""
    rows = soak.rows
    s = summarise(rows) if rows else []
    for x in s:
        log("%-32s first %-10s last %-10s max %-10s slope/h %-10s (%s%%/h) %s" %
            (x["label"], f(x["first"], 2), f(x["last"], 2), f(x["max"], 2), f(x["slope_h"], 2),
             f(x["rel"], 1), x["verdict"]))
    for n in soak.notes:
        log("note: " + n)
    log("gaps %d (%d events), duplicates %d, publish errors %d, unexpected closes %d, "
        "resumes replayed %d, resume snapshots %d, gateway %s, exit %s"
        % (res["gaps"], res["gap_events"], res["dups"], res["errors"], res["unexpected"],
           res["resume_behind"], res["resume_snapshots"], soak.died or "up", soak.gw_rc))
    if rows:
        plot(rows, a.svg if not a.no_docs else os.path.join(a.out, "soak.svg"), a.rev, soak.started)
        if not a.no_docs:
            write_docs(a.docs, render_section(soak, s, res, a))
            log("rewrote the soak section of %s and %s" % (a.docs, a.svg))
        else:
            with open(os.path.join(a.out, "section.md"), "w") as fh:
                fh.write(render_section(soak, s, res, a))
    log("samples: %s" % os.path.join(a.out, "samples.csv"))


def render_from(a):
    """--render-from DIR: the report again from DIR's samples.csv and
    final.json (a finished run), e.g. after changing the report's wording"""
    import types
    with open(os.path.join(a.render_from, "final.json")) as fh:
        d = json.load(fh)
    rows = []
    with open(os.path.join(a.render_from, "samples.csv")) as fh:
        for r in csv.DictReader(fh):
            row = {}
            for k, v in r.items():
                try:
                    row[k] = float(v) if v not in ("", "None") else None
                except ValueError:
                    row[k] = v
            rows.append(row)
    for k, v in d["args"].items():
        setattr(a, k, v)
    a.out = a.render_from
    soak = types.SimpleNamespace(
        rows=rows, final=d["final"], died=d["died"], gw_rc=d["gw_rc"], drained=d["drained"],
        notes=d["notes"], started=datetime.datetime.fromisoformat(d["started"]))
    report(a, soak, d["res"])


if __name__ == "__main__":
    main()
