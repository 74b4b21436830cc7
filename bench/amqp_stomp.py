#!/usr/bin/python3
"""Scenario D of bench/fanout.sh (issue 11): AMQP publish -> WebSocket
receipt, statusgate against RabbitMQ's own Web-STOMP plugin, which does the
same job inside the broker.

One private RabbitMQ node (tests/integration/rabbit.py) with the
rabbitmq_web_stomp plugin (shipped with Debian's rabbitmq-server) on a free
loopback port. Per repetition, alternately:

  statusgate   consumes its queue from the broker (--amqp), 10,000 WebSocket
               receivers on /ws/submissions/bench<c>/ (1,000 submissions);
               wsload publishes persistent notification publishes to the
               statusgate exchange (routing key submission.bench<c>.notification)
  web-stomp    10,000 STOMP-over-WebSocket receivers (wsload --stomp), each
               subscribed to /topic/bench<c>; wsload publishes the same bodies,
               persistent, to amq.topic with routing key bench<c>

at fixed rates (--rates, --step-s seconds each); wsload measures each
delivery's latency from the publish time stamped in the body. The broker and
the gateway run on the server CPU, wsload on the load CPU (taskset), so both
setups have one core for the server side. Prints one JSON line per run
(wsload's, with "steps": p50/p99/p99.9 per rate). Performance is measured
here, never asserted in tests.
"""
import argparse
import os
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


def pin_tree(pid, cpu):
    """taskset every thread of pid and of its descendants to cpu"""
    todo = [pid]
    while todo:
        p = todo.pop()
        subprocess.run(["taskset", "-a", "-cp", str(cpu), str(p)], capture_output=True)
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass


def beam_pid(pid):
    """the beam.smp process under the rabbitmq-server launcher"""
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/comm" % p) as f:
                if f.read().strip().startswith("beam"):
                    return p
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return pid


def wait_ready(port, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("statusgate never became ready")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--base-bin")
    ap.add_argument("--wsload", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--receivers", type=int, default=10000)
    ap.add_argument("--channels", type=int, default=1000)
    ap.add_argument("--rates", default="500,1000,2000,4000")
    ap.add_argument("--step-s", default="3")
    ap.add_argument("--with-base", action="store_true",
                    help="also run --base-bin (off by default: D compares against Web-STOMP)")
    ap.add_argument("--only", choices=("statusgate", "web-stomp"),
                    help="run one of the two servers only")
    ap.add_argument("--metrics-dir",
                    help="keep statusgate's /metrics after each run here (its "
                         "histograms say which part of the path the latency is in)")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--load-cpu", default="1")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="bench-d-")
    os.chmod(work, 0o755)   # the broker runs as the rabbitmq user
    # schedulers that sleep when idle: the broker shares its CPU with the
    # gateway in one setup and must not spin on it
    broker = rabbit.Broker(workdir=work, erl_args="+sbwt none +sbwtdcpu none +sbwtdio none",
                           nofile=30000)
    stomp_port = harness.free_port()
    with open(broker.conf + ".conf", "a") as f:
        # the plain STOMP listener that the plugin brings along: a free
        # loopback port too, not 61613 (another node may hold it)
        f.write("stomp.listeners.tcp.1 = 127.0.0.1:%d\n" % harness.free_port())
        f.write("web_stomp.tcp.port = %d\nweb_stomp.tcp.ip = 127.0.0.1\n"
                "web_stomp.max_connections = infinity\nweb_stomp.tcp.backlog = 4096\n"
                "vm_memory_calculation_strategy = allocated\n"
                # a subscriber that only listens is not idle (the default
                # closes it after 60 s without a frame from it; browsers
                # would send STOMP heart-beats, wsload asks for none)
                "web_stomp.cowboy_opts.idle_timeout = 3600000\n"
                % stomp_port)
    with open(os.path.join(broker.dir, "enabled_plugins"), "w") as f:
        f.write("[rabbitmq_web_stomp].\n")
    broker.start()
    pin_tree(broker.proc.pid, a.server_cpu)
    beam = beam_pid(broker.proc.pid)
    common = ["--receivers", str(a.receivers), "--channels", str(a.channels),
              "--rates", a.rates, "--step-s", a.step_s, "--size", "200",
              "--amqp", "127.0.0.1:%d" % broker.port, "--inflight", "500",
              "--idle-timeout", "30"]
    load = ["taskset", "-c", a.load_cpu, a.wsload, "run"]
    servers = ["statusgate", "web-stomp"] + (["statusgate-base"] if a.base_bin and a.with_base else [])
    if a.only:
        servers = [a.only]
    try:
        for rep in range(a.reps):
            order = servers[rep % len(servers):] + servers[:rep % len(servers)]
            for srv in order:
                if srv == "web-stomp":
                    cmd = load + common + ["--port", str(stomp_port), "--stomp",
                                           "--sub-path", "/ws", "--server-pid", str(beam),
                                           "--amqp-exchange", "amq.topic", "--amqp-key", "%s",
                                           "--label", "d"]
                    out = subprocess.run(cmd, capture_output=True, text=True)
                    line = out.stdout.strip()
                else:
                    binary = a.bin if srv == "statusgate" else a.base_bin
                    d = tempfile.mkdtemp(prefix="sg-", dir=work)
                    port = harness.free_port()
                    gw = subprocess.Popen(
                        ["taskset", "-c", a.server_cpu, binary, "serve", "--listen",
                         "127.0.0.1:%d" % port, "--db", os.path.join(d, "db"), "--web-dir", d,
                         "--log-level", "warn", "--amqp", broker.url,
                         "--max-connections", "20000", "--max-connections-per-ip", "20000"],
                        stdout=open(os.path.join(d, "log"), "wb"), stderr=subprocess.STDOUT)
                    try:
                        wait_ready(port)
                        cmd = load + common + ["--port", str(port), "--server-pid", str(gw.pid),
                                               "--sub-path", "/ws/submissions/%s/",
                                               "--amqp-exchange", "statusgate",
                                               "--amqp-key", "submission.%s.notification",
                                               "--label", "d"]
                        out = subprocess.run(cmd, capture_output=True, text=True)
                        line = out.stdout.strip()
                        if a.metrics_dir:
                            os.makedirs(a.metrics_dir, exist_ok=True)
                            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                                        timeout=10) as r, \
                                    open(os.path.join(a.metrics_dir, "%s-%d.txt" % (srv, rep)),
                                         "wb") as f:
                                f.write(r.read())
                    finally:
                        gw.terminate()
                        gw.wait(30)
                    line = line.replace('"server":"statusgate"', '"server":"%s"' % srv)
                if not line:
                    print("amqp_stomp: %s run %d printed nothing: %s" % (srv, rep, out.stderr[-2000:]),
                          file=sys.stderr)
                    continue
                print(line, flush=True)
                time.sleep(2)
    finally:
        broker.cleanup()


if __name__ == "__main__":
    main()
