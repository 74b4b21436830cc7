#!/usr/bin/python3
"""AMQP ingest benchmark (issue 3): statusgate against a plain ack-only consumer.

Against one private RabbitMQ node (tests/integration/rabbit.py), in the same
run and alternately, REPS times each:

  peer        N persistent messages pre-published into a durable queue are
              consumed by bench/amqp_ackonly.c (rabbitmq-c, built here) with
              the same prefetch, acknowledging each one and doing nothing
              else. Time: basic.consume -> the broker has handled the last ack.
  statusgate  the same N messages (same bodies, routing key
              submission.<key>.status, distinct message_ids) pre-published
              into statusgate.ingest while the gateway is down; then the
              gateway starts on a fresh SQLite file. Time: its "consuming" log
              line (the consumer is up) -> /metrics shows N publishes accepted,
              i.e. decoded, committed to SQLite, events fanned out; each is
              acknowledged right after its commit (checked: the queue is
              empty afterwards).

Prints medians and the ratio statusgate / peer (target >= 0.80) and, unless
--no-docs, rewrites the text between <!-- amqp_ingest:begin --> and
<!-- amqp_ingest:end --> in docs/BENCHMARKS.md. Performance is measured
here, never asserted in tests.

  /usr/bin/python3 bench/amqp_ingest.py [--n 20000] [--reps 5] [--bin build/statusgate]
"""
import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("GW_SOURCE_DIR", ROOT)

import harness  # noqa: E402
import rabbit  # noqa: E402

BEGIN = "<!-- amqp_ingest:begin -->"
END = "<!-- amqp_ingest:end -->"


def metric(base, name):
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def log_time(logs, needle):
    for line in logs.splitlines():
        if needle in line:
            ts = line.split()[0]
            return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
    raise RuntimeError("no log line with %r" % needle)


def run_peer(tool, broker, n, prefetch, rep):
    subprocess.run([tool, "publish", "127.0.0.1", str(broker.port), "", "bench.peer", str(n),
                    "peer%d" % rep], check=True)
    out = subprocess.run([tool, "consume", "127.0.0.1", str(broker.port), "bench.peer", str(n),
                          str(prefetch)], check=True, capture_output=True, text=True).stdout
    return float(out)


def run_statusgate(tool, broker, n, prefetch, batch, rep, binary, workdir):
    subprocess.run([tool, "publish", "127.0.0.1", str(broker.port), "statusgate",
                    "statusgate.ingest", str(n), "sg%d" % rep], check=True)
    d = tempfile.mkdtemp(prefix="gw-", dir=workdir)
    gw = harness.Gateway("--amqp", broker.url, "--amqp-prefetch", str(prefetch),
                         "--batch", str(batch), "--log-level", "info", workdir=d)
    gw.start(wait=False)
    try:
        gw.wait_healthy()
        name = 'statusgate_publishes_total{source="amqp",outcome="accepted"}'
        deadline = time.time() + 600
        while metric(gw.base, name) < n:
            if time.time() > deadline:
                raise RuntimeError("statusgate did not ingest %d messages:\n%s" % (n, gw.logs()))
            time.sleep(0.01)
        t1 = time.time()
        t0 = log_time(gw.logs(), "bridge_main: consuming")
        depth = broker.queue_depth("statusgate.ingest")
        if depth != 0:
            time.sleep(1)
            depth = broker.queue_depth("statusgate.ingest")
        if depth != 0:
            raise RuntimeError("%s messages left unacknowledged" % depth)
        return t1 - t0
    finally:
        gw.stop()
        shutil.rmtree(d, ignore_errors=True)


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    rmq = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"],
                         capture_output=True, text=True).stdout
    return "%d cores (nproc), %s; RabbitMQ %s" % (os.cpu_count(), model, rmq)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--prefetch", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--bin", default=os.environ.get("STATUSGATE_BIN",
                                                    os.path.join(ROOT, "build", "statusgate")))
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    ap.add_argument("--no-docs", action="store_true")
    a = ap.parse_args()
    harness.BIN = os.path.abspath(a.bin)

    work = tempfile.mkdtemp(prefix="bench-amqp-")
    tool = os.path.join(work, "amqp_ackonly")
    subprocess.run(["cc", "-O2", "-o", tool, os.path.join(ROOT, "bench", "amqp_ackonly.c"),
                    "-lrabbitmq"], check=True)
    broker = rabbit.Broker()
    broker.start()
    peer, sg = [], []
    try:
        import pika
        c = pika.BlockingConnection(pika.URLParameters(broker.url))
        c.channel().queue_declare("bench.peer", durable=True)
        c.close()
        # let the gateway declare its exchange, queues and bindings once
        g = harness.Gateway("--amqp", broker.url, workdir=tempfile.mkdtemp(dir=work))
        g.start()
        g.wait_ready()
        g.stop()
        for rep in range(a.reps):
            order = [0, 1] if rep % 2 == 0 else [1, 0]
            for which in order:
                if which == 0:
                    s = run_peer(tool, broker, a.n, a.prefetch, rep)
                    peer.append(s)
                    print("rep %d peer       %.3f s  %8.0f msg/s" % (rep, s, a.n / s), flush=True)
                else:
                    s = run_statusgate(tool, broker, a.n, a.prefetch, a.batch, rep, a.bin, work)
                    sg.append(s)
                    print("rep %d statusgate %.3f s  %8.0f msg/s" % (rep, s, a.n / s), flush=True)
    finally:
        broker.cleanup()
        shutil.rmtree(work, ignore_errors=True)

    peer_rate = a.n / statistics.median(peer)
    sg_rate = a.n / statistics.median(sg)
    ratio = sg_rate / peer_rate
    # each statusgate run against the peer run of the same repetition: on a
    # noisy machine this pairs runs made under the same load
    paired = statistics.median(p / s for p, s in zip(peer, sg))
    print("median: peer %.0f msg/s, statusgate %.0f msg/s, ratio %.2f, paired ratio %.2f "
          "(target >= 0.80)" % (peer_rate, sg_rate, ratio, paired))

    if a.no_docs:
        return
    text = (
        "Measured %s on %s.\n\n"
        "Command: `/usr/bin/python3 bench/amqp_ingest.py --n %d --reps %d --prefetch %d "
        "--batch %d`\n\n"
        "| consumer | median time for %d msgs | median rate | runs (s) |\n"
        "|---|---|---|---|\n"
        "| ack-only rabbitmq-c consumer (peer) | %.3f s | %.0f msg/s | %s |\n"
        "| statusgate (decode, commit, fan out, ack) | %.3f s | %.0f msg/s | %s |\n\n"
        "**Ratio statusgate / peer: %.2f** (ratio of the medians; median of the "
        "per-repetition ratios: %.2f; target >= 0.80).\n" % (
            datetime.date.today().isoformat(), machine(), a.n, a.reps, a.prefetch, a.batch,
            a.n, statistics.median(peer), peer_rate, ", ".join("%.3f" % x for x in peer),
            statistics.median(sg), sg_rate, ", ".join("%.3f" % x for x in sg), ratio, paired))
    block = "%s\n%s%s" % (BEGIN, text, END)
    doc = open(a.docs).read() if os.path.exists(a.docs) else "# Benchmarks\n"
    if BEGIN in doc and END in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda m: block, doc, flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n## AMQP ingest\n\n" + block + "\n"
    with open(a.docs, "w") as f:
        f.write(doc)
    print("wrote", a.docs)


if __name__ == "__main__":
    main()
