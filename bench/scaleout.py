#!/usr/bin/python3
"""Scale-out benchmark (SPEC section 7, docs/SCALING.md): one and three
gateways on one private RabbitMQ node, on this one machine.

Run by bench/scaleout.sh (which builds a Release statusgate and wsload with
AMQP), not by hand and never in CI:

  /usr/bin/python3 bench/scaleout.py --bin B/statusgate --wsload B/wsload
        [--reps 3] [--instances 1,3] [--scenarios ingest,fanout,rate,conn]
        [--raw results.jsonl] [--no-docs] [--docs docs/SCALING.md]

For each repetition, each instance count K and each scenario it starts K
gateways (`serve --amqp URL --instance gwN`, each on its own port with its
own fresh SQLite file, their ingest queues deleted first so that nothing is
left over and no queue of an absent instance is fed), then runs `wsload`:
the WebSocket receivers (/ws, one subscribe each, all to one submission) are
spread round-robin over the K gateways, the events are published once to the
exchange over AMQP (persistent, a message_id each), so that every gateway
ingests every event and fans it out to its own receivers. wsload checks that
every receiver got every event once and in order, and measures deliveries/s,
publish-to-receive latency, each gateway's CPU (whole process, service
thread, writer thread) and memory (VmRSS before the receivers, after they are
all subscribed, VmHWM at the end), and the broker's Erlang VM (CPU and RSS).
The gateways' /metrics give what each ingested and committed.

Scenarios (receivers are totals over the K instances):
  backlog 20,000 status publishes (100 submissions, a message_id each) queued
          in every instance's queue while the gateways are down (by
          bench/amqp_ackonly.c), then all K gateways start together: each
          one's ingest/s from its "consuming" log line to /metrics showing
          all of them committed, as bench/amqp_ingest.py measures one; the
          deepest batches, so the lowest cost per event
  ingest  K receivers (one per instance), 20,000 events as fast as a window
          of 1,000 events in flight allows: ingest/s per instance
  fanout  1,000 receivers, 400 events as fast as a window of 64 allows
  rate    1,000 receivers, 200 events at 20 events/s: latency below saturation
  conn    10,000 receivers held idle for 65 s (two rounds of the gateways'
          30 s pings), then 10 events at 1 event/s: memory per connection,
          CPU per connect, CPU of idle connections (wsload holds them all:
          the fd limit here is 20,000)
  drain   10,000 receivers connected and subscribed, then SIGTERM to every
          gateway at once: the seconds until each has closed its sockets
          (1001), committed and exited

Prints the medians and, unless --no-docs, rewrites the text between
<!-- scaleout:begin --> and <!-- scaleout:end --> in docs/SCALING.md.
Performance is measured here, never asserted in tests.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("GW_SOURCE_DIR", ROOT)

import harness  # noqa: E402
from gwhttp import http_get, metrics  # noqa: E402
import rabbit  # noqa: E402

BEGIN = "<!-- scaleout:begin -->"
END = "<!-- scaleout:end -->"

# name: (receivers, per instance?, events, window, rate, what it shows)
SCENARIOS = {
    "backlog": (0, True, 20000, 0, 0, "20,000 events queued while the gateways were down"),
    "ingest": (1, True, 20000, 1000, 0, "1 receiver per instance, 20,000 events, full speed"),
    "fanout": (1000, False, 400, 64, 0, "1,000 receivers, 400 events, full speed"),
    "rate": (1000, False, 200, 0, 20, "1,000 receivers, 20 events/s"),
    "conn": (10000, False, 10, 0, 1, "10,000 receivers held idle 65 s, then 1 event/s"),
    "drain": (10000, False, 0, 0, 0, "10,000 receivers, then SIGTERM to every gateway"),
}
MAX_CONN = 20000


def log(msg):
    print("%s scaleout: %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


class Gw:
    """one gateway process of a run"""

    def __init__(self, binary, broker, name, workdir, level="warn"):
        self.name = name
        self.port = harness.free_port()
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:%d" % self.port,
             "--db", os.path.join(self.dir, "statusgate.db"),
             "--web-dir", os.path.join(ROOT, "web"), "--log-level", level,
             "--amqp", broker.url, "--instance", name,
             "--max-connections", str(MAX_CONN), "--max-connections-per-ip", str(MAX_CONN)],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.proc.returncode,
                                                               self.logs()))
            try:
                if http_get(self.port, "/readyz", 2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("%s never became ready:\n%s" % (self.name, self.logs()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(300)    # 10,000 sockets take long to close (SCALING.md)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def logs(self, tail=3000):
        with open(os.path.join(self.dir, "log"), "rb") as f:
            return f.read()[-tail:].decode("utf-8", "replace")

    def consuming_at(self):
        """wall time of the "consuming" log line (the consumer is up)"""
        for line in self.logs(10**6).splitlines():
            if "bridge_main: consuming" in line:
                ts = line.split()[0]
                return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
        return None

    def cpu(self):
        """(all threads, service thread, writer thread) CPU seconds so far"""
        writer = 0.0
        for tid in os.listdir("/proc/%d/task" % self.proc.pid):
            with open("/proc/%d/task/%s/comm" % (self.proc.pid, tid)) as f:
                if f.read().strip() == "sg-writer":
                    writer = task_cpu_s(self.proc.pid, tid)
        return (proc_cpu_s(self.proc.pid), task_cpu_s(self.proc.pid, self.proc.pid), writer)


def delete_queues(broker, names):
    import pika
    c = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        ch = c.channel()
        for n in names:
            ch.queue_delete("statusgate.ingest." + n)
    finally:
        c.close()


def beam_pid(broker):
    pids = rabbit._group_pids(broker.proc.pid, "beam")
    if len(pids) != 1:
        raise RuntimeError("expected one Erlang VM for the broker, found %r" % pids)
    return pids[0]


def proc_cpu_s(pid):
    return task_cpu_s(pid, None)


def task_cpu_s(pid, tid):
    """utime+stime of a process (tid None) or one of its threads, seconds"""
    path = "/proc/%d/stat" % pid if tid is None else "/proc/%d/task/%s/stat" % (pid, tid)
    with open(path) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def vm_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def fresh_run(broker, work):
    """the gateways' names (up to three), their queues deleted, and a new
    directory for this run"""
    names = ["gw%d" % (i + 1) for i in range(3)]
    delete_queues(broker, names)
    return names, tempfile.mkdtemp(prefix="run-", dir=work)


def run_drain(a, broker, k, scenario, rep, work):
    """scenario drain: see the module's doc"""
    total = SCENARIOS[scenario][0]
    names, d = fresh_run(broker, work)
    gws = [Gw(a.bin, broker, names[i], d) for i in range(k)]
    load = None
    try:
        for g in gws:
            g.wait_ready()
        share = [total // k + (1 if i < total % k else 0) for i in range(k)]
        # wsload connects, subscribes, gets its warm-up message and holds
        load = subprocess.Popen(
            [a.wsload, "run", "--ports", ",".join(str(g.port) for g in gws),
             "--amqp", str(broker.port), "--mux", "--sub-path", "/ws", "--label", scenario,
             "--receivers", str(total), "--events", "1", "--hold", "900",
             "--connect-timeout", "900"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0, deadline = time.time(), time.time() + 900
        while True:
            counts = [metrics(g.port).get("statusgate_subscriptions", 0) for g in gws]
            if counts == share:
                break
            if time.time() > deadline or load.poll() is not None:
                raise RuntimeError("receivers did not all subscribe: %r of %r" % (counts, share))
            time.sleep(0.5)
        connect_s = time.time() - t0
        time.sleep(2)
        for g in gws:
            g.proc.send_signal(signal.SIGTERM)
        t_term = time.time()
        servers = []
        for g, n in zip(gws, share):
            try:
                rc = g.proc.wait(300)
            except subprocess.TimeoutExpired:
                rc = None
            servers.append({"instance": g.name, "connections": n, "stop_s": time.time() - t_term,
                            "exit": rc})
            if rc != 0:
                log("%s: exit %s after SIGTERM:\n%s" % (g.name, rc, g.logs()))
        return {"scenario": scenario, "instances": k, "rep": rep, "events": 0,
                "connect_s": connect_s, "servers": servers}
    finally:
        if load and load.poll() is None:
            load.terminate()
            load.wait()
        for g in gws:
            g.stop()
        shutil.rmtree(d, ignore_errors=True)


def run_backlog(a, broker, k, _scenario, rep, work):
    """scenario backlog: see the module's doc"""
    n = SCENARIOS["backlog"][2]
    names, d = fresh_run(broker, work)
    # once up to declare the queues and bindings, then down
    for name in names[:k]:
        g = Gw(a.bin, broker, name, d)
        g.wait_ready()
        if g.stop() != 0:
            raise RuntimeError("%s: exit %s\n%s" % (name, g.proc.returncode, g.logs()))
    beam = beam_pid(broker)
    b0, t0 = proc_cpu_s(beam), time.time()
    subprocess.run([a.ackonly, "publish", "127.0.0.1", str(broker.port), "statusgate",
                    "statusgate.ingest.gw1", str(n), "bl%d-%d" % (rep, k)], check=True)
    b1, t1 = proc_cpu_s(beam), time.time()
    gws = [Gw(a.bin, broker, names[i], d, level="info") for i in range(k)]
    done = {}
    key = 'statusgate_publishes_total{source="amqp",outcome="accepted"}'
    try:
        deadline = time.time() + 600
        while len(done) < k:
            for g in gws:
                if g.name in done:
                    continue
                if g.proc.poll() is not None:
                    raise RuntimeError("%s exited:\n%s" % (g.name, g.logs()))
                try:
                    m = metrics(g.port)
                except OSError:
                    continue
                if m.get(key, 0) >= n:
                    done[g.name] = (time.time(), g.cpu(), m, vm_kb(g.proc.pid, "VmHWM:"))
            if time.time() > deadline:
                raise RuntimeError("not ingested within 600 s")
            time.sleep(0.02)
        b2, t2 = proc_cpu_s(beam), time.time()
        servers = []
        for g in gws:
            t_done, (cpu, main, writer), m, hwm = done[g.name]
            t_cons = g.consuming_at()
            servers.append({"instance": g.name, "seconds": t_done - t_cons, "cpu_s": cpu,
                            "main_thread_cpu_s": main, "writer_cpu_s": writer, "hwm_kb": hwm,
                            "accepted": m.get(key), "commits":
                            m.get("statusgate_store_commit_seconds_count")})
        depths = [broker.queue_depth("statusgate.ingest." + nm) for nm in names[:k]]
        if any(depths):
            raise RuntimeError("left in the queues: %r" % depths)
        row = {"scenario": "backlog", "instances": k, "rep": rep, "events": n,
               "servers": servers, "broker_idle_cores": a.broker_idle,
               "broker": {"publish_cpu_s": b1 - b0, "publish_s": t1 - t0,
                          "consume_cpu_s": b2 - b1, "consume_s": t2 - t1,
                          "rss_end_kb": vm_kb(beam, "VmRSS:")}}
    finally:
        for g in gws:
            rc = g.stop()
            if rc != 0:
                log("%s exited with %s:\n%s" % (g.name, rc, g.logs()))
        shutil.rmtree(d, ignore_errors=True)
    return row


def broker_idle_cores(broker, seconds=20):
    """the Erlang VM's own background CPU while nothing is published"""
    pid = beam_pid(broker)
    c0, t0 = proc_cpu_s(pid), time.time()
    time.sleep(seconds)
    return (proc_cpu_s(pid) - c0) / (time.time() - t0)


def run_one(a, broker, k, scenario, rep, work):
    receivers, per_instance, events, window, rate, _ = SCENARIOS[scenario]
    total = receivers * k if per_instance else receivers
    names, d = fresh_run(broker, work)
    gws = [Gw(a.bin, broker, names[i], d) for i in range(k)]
    row = None
    try:
        for g in gws:
            g.wait_ready()
        cmd = [a.wsload, "run", "--ports", ",".join(str(g.port) for g in gws),
               "--server-pid", ",".join(str(g.proc.pid) for g in gws),
               "--broker-pid", str(beam_pid(broker)), "--amqp", str(broker.port),
               "--mux", "--sub-path", "/ws", "--label", scenario,
               "--receivers", str(total), "--events", str(events), "--size", "200",
               "--window", str(window), "--rate", str(rate), "--idle-timeout", "120",
               "--connect-timeout", "900", "--hold", "65" if scenario == "conn" else "0"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if p.stderr.strip():
            log("wsload: " + p.stderr.strip().replace("\n", "\n    "))
        if not p.stdout.strip():
            raise RuntimeError("wsload printed nothing (exit %d)" % p.returncode)
        row = json.loads(p.stdout.strip().splitlines()[-1])
        row.update(instances=k, scenario=scenario, rep=rep, wsload_exit=p.returncode,
                   broker_idle_cores=a.broker_idle)
        for g, s in zip(gws, row["servers"]):
            # a gateway that has just lost 10,000 connections may take a while
            m = metrics(g.port, timeout=300)
            s.update(instance=g.name, connections=total // k + (1 if gws.index(g) < total % k else 0),
                     accepted=m.get('statusgate_publishes_total{source="amqp",outcome="accepted"}'),
                     commits=m.get("statusgate_store_commit_seconds_count"),
                     lagging_closes=m.get("statusgate_lagging_closes_total"),
                     drops=m.get("statusgate_drops_total"))
    finally:
        for g in gws:
            rc = g.stop()
            if rc != 0:
                log("%s exited with %s:\n%s" % (g.name, rc, g.logs()))
        shutil.rmtree(d, ignore_errors=True)
    return row


# ---- summary ----

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def derive_backlog(row):
    k, n, srv, b = row["instances"], row["events"], row["servers"], row["broker"]
    idle = row.get("broker_idle_cores", 0)
    net = max(0.0, b["publish_cpu_s"] + b["consume_cpu_s"] - idle * (b["publish_s"] + b["consume_s"]))
    wall = max(s["seconds"] for s in srv)
    return {
        "deliveries_per_s": None, "p50": None, "p99": None, "lost": 0, "closed": 0,
        "events_per_s": statistics.mean(n / s["seconds"] for s in srv),
        "us_per_event": 1e6 * statistics.mean(s["cpu_s"] for s in srv) / n,
        "writer_us_per_event": 1e6 * statistics.mean(s["writer_cpu_s"] for s in srv) / n,
        "main_us_per_event": 1e6 * statistics.mean(s["main_thread_cpu_s"] for s in srv) / n,
        "ns_per_delivery": None,
        "rss0_mb": None, "rss_warm_mb": None,
        "hwm_mb": statistics.mean(s["hwm_kb"] for s in srv) / 1024,
        "kb_per_conn_idle": None, "kb_per_conn_busy": None,
        "connect_us_per_conn": None, "idle_cores": None,
        "batch": statistics.mean(s["accepted"] / s["commits"] for s in srv if s.get("commits")),
        "broker_us_per_event": 1e6 * net / n,
        "broker_us_per_routed": 1e6 * net / (n * k),
        "broker_publish_us_per_event": 1e6 * max(0.0, b["publish_cpu_s"] - idle * b["publish_s"]) / n,
        "broker_rss_mb": b["rss_end_kb"] / 1024,
        "broker_cores": b["consume_cpu_s"] / b["consume_s"],
        "gw_cores": sum(s["cpu_s"] for s in srv) / wall,
        "client_cores": None,
    }


def derive_drain(row):
    keys = ("deliveries_per_s", "p50", "p99", "events_per_s", "us_per_event",
            "writer_us_per_event", "main_us_per_event", "ns_per_delivery", "rss0_mb",
            "rss_warm_mb", "hwm_mb", "kb_per_conn_idle", "kb_per_conn_busy", "batch",
            "connect_us_per_conn", "idle_cores", "broker_us_per_event", "broker_us_per_routed",
            "broker_publish_us_per_event", "broker_rss_mb", "broker_cores", "gw_cores",
            "client_cores")
    out = dict.fromkeys(keys)
    out.update(lost=sum(1 for s in row["servers"] if s["exit"] != 0), closed=0,
               stop_s=max(s["stop_s"] for s in row["servers"]))
    return out


def derive(row):
    """per-run figures computed from one wsload row; the broker's CPU per
    event is net of its idle background (row["broker_idle_cores"])"""
    if row["scenario"] == "backlog":
        return derive_backlog(row)
    if row["scenario"] == "drain":
        return derive_drain(row)
    k = row["instances"]
    ev = row["events"]
    srv = row["servers"]
    hz_cpu = [s["cpu_s"] for s in srv]
    broker_net = max(0.0, row["broker"]["cpu_s"] -
                     row.get("broker_idle_cores", 0) * row["duration_s"])
    out = {
        "deliveries_per_s": row["deliveries_per_s"],
        "events_per_s": row["events_per_s"],
        "p50": row["lat_ms"]["p50"], "p99": row["lat_ms"]["p99"],
        # a receiver the gateway closed ends the run, so the frames it and
        # the others did not get then are not counted as lost
        "lost": row["out_of_order"] + (0 if row["receivers_lost"] else row["missing"]),
        "closed": row["receivers_lost"],
        # each instance ingests every event: per instance, events/s
        "ingest_per_instance": row["events_per_s"],
        "cpu_s_per_instance": statistics.mean(hz_cpu),
        # CPU per event and instance, all threads / the writer thread
        "us_per_event": 1e6 * statistics.mean(hz_cpu) / ev,
        "writer_us_per_event": 1e6 * statistics.mean(s["writer_cpu_s"] for s in srv) / ev,
        "main_us_per_event": 1e6 * statistics.mean(s["main_thread_cpu_s"] for s in srv) / ev,
        "ns_per_delivery": 1e9 * sum(hz_cpu) / max(1, row["deliveries"]),
        "rss0_mb": statistics.mean(s["rss0_kb"] for s in srv) / 1024,
        "rss_warm_mb": statistics.mean(s["rss_warm_kb"] for s in srv) / 1024,
        "hwm_mb": statistics.mean(s["hwm_kb"] for s in srv) / 1024,
        "kb_per_conn_idle": statistics.mean((s["rss_warm_kb"] - s["rss0_kb"]) / s["connections"]
                                            for s in srv),
        "kb_per_conn_busy": statistics.mean((s["hwm_kb"] - s["rss0_kb"]) / s["connections"]
                                            for s in srv),
        "batch": statistics.mean(s["accepted"] / s["commits"] for s in srv if s.get("commits")),
        "connect_us_per_conn": 1e6 * statistics.mean(s["connect_cpu_s"] / s["connections"]
                                                     for s in srv),
        "idle_cores": statistics.mean(s["hold_cpu_s"] for s in srv) / row["hold_s"]
        if row.get("hold_s") else None,
        "broker_cpu_s": row["broker"]["cpu_s"],
        "broker_us_per_event": 1e6 * broker_net / ev,
        "broker_us_per_routed": 1e6 * broker_net / (ev * k),
        "broker_publish_us_per_event": None,
        "broker_rss_mb": row["broker"]["rss_end_kb"] / 1024,
        "broker_cores": row["broker"]["cpu_s"] / row["duration_s"],
        "gw_cores": sum(hz_cpu) / row["duration_s"],
        "client_cores": row["client_cpu_s"] / row["duration_s"],
    }
    return out


def summarise(rows):
    """{(scenario, k): {figure: median over the repetitions}}"""
    groups = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["instances"]), []).append(derive(r))
    return {key: {f: med([d[f] for d in ds]) for f in ds[0]} | {
        "n": len(ds), "lost_total": sum(d["lost"] for d in ds),
        "closed_total": sum(d["closed"] for d in ds),
        "closed_runs": sum(1 for d in ds if d["closed"])} for key, ds in groups.items()}


def fmt(v, nd=0):
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"


def report(summary, meta):
    lines = []
    add = lines.append
    add("Measured %(date)s: statusgate %(rev)s (Release), RabbitMQ %(rmq)s (one node, default "
        "VM settings), on %(nproc)s cores (`nproc`; %(cpu)s), %(mem)s of memory (`free -h`), "
        "Linux %(kernel)s (`uname -r`). Load average %(load0)s before the run, %(load1)s after "
        "(the machine is shared with other engineers' builds and tests). %(reps)s repetitions "
        "per scenario and instance count, medians shown; %(took)s. The broker's own background "
        "while idle, %(idle).3f cores, is subtracted from its CPU per event." % meta)
    add("")
    add("Command: `%s`" % meta["command"])
    if meta.get("failures"):
        add("")
        add("Runs that failed and are left out of the medians: " + "; ".join(meta["failures"]) + ".")
    every = [(sc, k, summary[(sc, k)]) for sc in SCENARIOS for k in meta["instances"]
             if (sc, k) in summary]
    rows = [r for r in every if r[0] != "drain"]

    def name(sc):
        return "%s: %s" % (sc, SCENARIOS[sc][5])

    def per_inst(sc, k):
        recv, per, *_ = SCENARIOS[sc]
        return recv if per else recv // k

    add("")
    add("**Throughput and latency** (receivers all watch one submission; events/s is also each "
        "instance's ingest rate, since every instance ingests every event)")
    add("")
    add("| scenario | instances | receivers per instance | deliveries/s (all) | events/s "
        "| latency p50 / p99 (ms) | cores busy: gateways / broker / load tool "
        "| frames lost or reordered; receivers the gateway closed |")
    add("|---|---:|---:|---:|---:|---|---|---|")
    for sc, k, s in rows:
        add("| %s | %d | %s | %s | %s | %s / %s | %s / %s / %s | %s in %d runs |" % (
            name(sc), k, fmt(per_inst(sc, k)), fmt(s["deliveries_per_s"]), fmt(s["events_per_s"]),
            fmt(s["p50"], 1), fmt(s["p99"], 1), fmt(s["gw_cores"], 2), fmt(s["broker_cores"], 2),
            fmt(s["client_cores"], 2), ("none" if s["lost_total"] == 0 else
                                         "%d frames" % s["lost_total"]) +
            ("" if not s["closed_total"] else "; %d receivers closed (%d of the runs stopped there)"
             % (s["closed_total"], s["closed_runs"])), s["n"]))
    add("")
    add("**CPU costs** (CPU seconds from /proc over the publish phase, divided by the events "
        "each instance ingested or by all deliveries; the broker's only where 20,000 events "
        "outweigh its background)")
    add("")
    add("| scenario | instances | gateway CPU per event and instance (us): all threads / writer "
        "/ service thread | gateway CPU per delivery (ns) | publishes per commit "
        "| broker CPU per event (us) | of it, taking the publish in (us) "
        "| broker CPU per queued copy (us) |")
    add("|---|---:|---|---:|---:|---:|---:|---:|")
    for sc, k, s in rows:
        add("| %s | %d | %s / %s / %s | %s | %s | %s | %s | %s |" % (
            name(sc), k, fmt(s["us_per_event"], 1), fmt(s["writer_us_per_event"], 1),
            fmt(s["main_us_per_event"], 1),
            fmt(s["ns_per_delivery"]) if per_inst(sc, k) >= 100 else "-", fmt(s["batch"]),
            *((fmt(s["broker_us_per_event"], 1), fmt(s["broker_publish_us_per_event"], 1),
               fmt(s["broker_us_per_routed"], 1)) if SCENARIOS[sc][2] >= 10000 else ("-",) * 3)))
    add("")
    add("**Connections and memory** (VmRSS of each gateway before the receivers connect, once "
        "all are subscribed, and VmHWM at the end; per connection: the growth divided by the "
        "instance's connections; connect CPU: from the first connect to the end of the warm-up, "
        "per connection; idle CPU: over the 65 s hold, per instance; stop: from SIGTERM to "
        "every instance's exit, all of them stopped at once)")
    add("")
    add("| scenario | instances | connections per instance | gateway RSS per instance (MB): "
        "before / subscribed / peak | kB per connection: subscribed / peak "
        "| connect CPU per connection (us) | idle CPU per instance (cores) | stop (s) "
        "| broker RSS at the end (MB) |")
    add("|---|---:|---:|---|---|---:|---:|---:|---:|")
    for sc, k, s in every:
        many = per_inst(sc, k) >= 100
        conn = "%s / %s" % (fmt(s["kb_per_conn_idle"], 1), fmt(s["kb_per_conn_busy"], 1)) \
            if many else "- (too few)"
        if sc == "drain":
            conn = "-"
        add("| %s | %d | %s | %s / %s / %s | %s | %s | %s | %s | %s |" % (
            name(sc), k, fmt(per_inst(sc, k)), fmt(s["rss0_mb"], 1), fmt(s["rss_warm_mb"], 1),
            fmt(s["hwm_mb"], 1), conn, fmt(s["connect_us_per_conn"]) if many else "-",
            fmt(s["idle_cores"], 3), fmt(s.get("stop_s"), 1) +
            (" (%d exits not 0)" % s["lost_total"] if sc == "drain" and s["lost_total"] else ""),
            fmt(s["broker_rss_mb"])))
    ratios = []

    def r(three, one, key):
        return "%.2f" % (three[key] / one[key]) if three[key] and one[key] else "-"
    for sc in SCENARIOS:
        one, three = summary.get((sc, 1)), summary.get((sc, 3))
        if one and three and sc != "drain":
            ratios.append("%s: deliveries/s %s, events/s %s, gateway CPU per event and instance "
                          "%s, broker CPU per event %s" % (
                              sc, r(three, one, "deliveries_per_s"), r(three, one, "events_per_s"),
                              r(three, one, "us_per_event"),
                              r(three, one, "broker_us_per_event") if SCENARIOS[sc][2] >= 10000
                              else "-"))
    if ratios:
        add("")
        add("Three instances against one (ratios of the medians, same run):")
        add("")
        for r in ratios:
            add("- " + r)
    return "\n".join(lines) + "\n"


def machine_meta():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()
    total = mem[1].split()[1] if len(mem) > 1 else "?"
    rmq = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"],
                         capture_output=True, text=True).stdout
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem": total, "kernel": platform.release(),
            "rmq": rmq}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--wsload", required=True, help="wsload built with -DWSLOAD_AMQP")
    ap.add_argument("--ackonly", help="bench/amqp_ackonly.c built (scenario backlog)")
    ap.add_argument("--rev", default="?")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--instances", default="1,3")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--raw", help="append every run's JSON line here")
    ap.add_argument("--from-raw", help="only summarise the runs in this file")
    ap.add_argument("--command", default="bench/scaleout.sh")
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs", "SCALING.md"))
    ap.add_argument("--no-docs", action="store_true")
    a = ap.parse_args()
    instances = [int(x) for x in a.instances.split(",")]
    scenarios = a.scenarios.split(",")
    for sc in scenarios:
        if sc not in SCENARIOS:
            ap.error("unknown scenario %s" % sc)

    meta = machine_meta()
    meta.update(date=datetime.date.today().isoformat(), rev=a.rev, reps=a.reps,
                instances=instances, command=a.command, load0=loadavg())
    t0 = time.time()
    rows = []
    failures = []
    if a.from_raw:     # a finished run's lines; its last line is its meta
        with open(a.from_raw) as f:
            rows = [json.loads(x) for x in f if x.strip()]
        for r in rows:
            meta.update(r.get("meta", {}))
        rows = [r for r in rows if "meta" not in r]
    else:
        work = tempfile.mkdtemp(prefix="bench-scaleout-")
        broker = rabbit.Broker()   # its own temp dir, readable by the rabbitmq user
        # SIGTERM unwinds like an exception, so the broker and gateways go too
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        try:
            broker.start()
            a.broker_idle = broker_idle_cores(broker)
            log("broker idle: %.3f cores" % a.broker_idle)
            for rep in range(a.reps):
                # the order of the instance counts flips every repetition
                for k in (instances if rep % 2 == 0 else instances[::-1]):
                    for sc in scenarios:
                        log("rep %d, %d instance(s), %s" % (rep + 1, k, sc))
                        run = {"backlog": run_backlog, "drain": run_drain}.get(sc, run_one)
                        try:
                            row = run(a, broker, k, sc, rep, work)
                        except (RuntimeError, OSError, subprocess.SubprocessError,
                                json.JSONDecodeError) as e:
                            log("  FAILED, left out of the medians: %s" % e)
                            failures.append("%s with %d instance(s), repetition %d: %s" % (
                                sc, k, rep + 1, str(e).splitlines()[0]))
                            continue
                        rows.append(row)
                        if a.raw:
                            with open(a.raw, "a") as f:
                                f.write(json.dumps(row) + "\n")
                        d = derive(row)
                        log("  %s deliveries/s, %s events/s, p50 %s ms, %s us/event/instance, "
                            "%s kB/conn subscribed, broker %s us/event, stop %s s, lost %d" % (
                                fmt(d["deliveries_per_s"]), fmt(d["events_per_s"]), fmt(d["p50"], 1),
                                fmt(d["us_per_event"], 1), fmt(d["kb_per_conn_idle"], 1),
                                fmt(d["broker_us_per_event"], 1), fmt(d.get("stop_s"), 1), d["lost"]))
        finally:
            broker.cleanup()
            shutil.rmtree(work, ignore_errors=True)
    if not a.from_raw:
        meta.update(load1=loadavg(), took="the run took %d minutes" % round((time.time() - t0) / 60),
                    idle=statistics.median(r.get("broker_idle_cores", 0) for r in rows) if rows else 0)
        meta["failures"] = failures
        if a.raw:
            with open(a.raw, "a") as f:
                f.write(json.dumps({"meta": meta}) + "\n")
    summary = summarise(rows)
    text = report(summary, meta)
    print(text)
    if a.no_docs:
        return 0
    block = "%s\n%s%s" % (BEGIN, text, END)
    doc = open(a.docs).read() if os.path.exists(a.docs) else "# Scaling\n"
    if BEGIN in doc and END in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda m: block, doc, flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    with open(a.docs, "w") as f:
        f.write(doc)
    log("wrote " + a.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
