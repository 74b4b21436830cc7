#!/usr/bin/python3
"""What N WebSocket connections cost ONE gateway, for several N (docs/SCALING.md):
the CPU of connecting them, of holding them idle (the gateway pings every
connection after 30 s without traffic), and of the drain after SIGTERM.

  /usr/bin/python3 bench/connprobe.py --bin B/statusgate --wsload B/wsload
        [--sizes 3333,10000,16000] [--reps 3] [--hold 65]

For each size and repetition (sizes alternate within a repetition): a fresh
gateway (no broker), `wsload run --hold` connecting N receivers to /ws, each
subscribing to one submission; once /metrics shows N subscriptions the
gateway's CPU is read from /proc (connect), again after the hold (idle), and
SIGTERM goes out; the drain is the wall time to its exit and the CPU it used
then (from wait4's rusage). Prints one line per run and the medians as a
Markdown table. These costs grow faster than N: libwebsockets 4.1 keeps
every timer (per-connection timeouts, the ping "validity" timers) in one
sorted list, and inserting walks it (SCALING.md). Nothing is asserted.
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def subscriptions(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=300) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("statusgate_subscriptions "):
                return int(float(line.split()[1]))
    return 0


def probe(a, n):
    d = tempfile.mkdtemp(prefix="connprobe-")
    port = free_port()
    gw = subprocess.Popen([a.bin, "serve", "--listen", "127.0.0.1:%d" % port, "--db",
                           os.path.join(d, "db"), "--log-level", "warn",
                           "--max-connections", "20000", "--max-connections-per-ip", "20000"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    load = None
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.time() > deadline or gw.poll() is not None:
                    raise RuntimeError("the gateway did not start")
                time.sleep(0.05)
        c0, t0 = cpu_s(gw.pid), time.time()
        load = subprocess.Popen([a.wsload, "run", "--port", str(port), "--receivers", str(n),
                                 "--events", "1", "--hold", "3600", "--mux", "--sub-path", "/ws",
                                 "--connect-timeout", "900"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while subscriptions(port) < n:
            if load.poll() is not None or time.time() > t0 + 900:
                raise RuntimeError("%d receivers did not all subscribe" % n)
            time.sleep(0.5)
        c1, t1 = cpu_s(gw.pid), time.time()
        time.sleep(a.hold)
        c2, t2 = cpu_s(gw.pid), time.time()
        gw.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(gw.pid, 0)
        t3 = time.time()
        gw.returncode = os.waitstatus_to_exitcode(status)
        return {"n": n, "connect_s": t1 - t0, "connect_us": 1e6 * (c1 - c0) / n,
                "idle_cores": (c2 - c1) / (t2 - t1), "drain_s": t3 - t2,
                "drain_cpu_s": ru.ru_utime + ru.ru_stime - c2, "exit": gw.returncode}
    finally:
        if load and load.poll() is None:
            load.terminate()
            load.wait()
        if gw.poll() is None and gw.returncode is None:
            gw.kill()
            gw.wait()
        subprocess.run(["rm", "-rf", d])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--wsload", required=True)
    ap.add_argument("--sizes", default="3333,10000,16000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hold", type=float, default=65)
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    runs = {n: [] for n in sizes}
    print("load average before: %s" % open("/proc/loadavg").read().strip(), flush=True)
    for rep in range(a.reps):
        for n in (sizes if rep % 2 == 0 else sizes[::-1]):
            r = probe(a, n)
            runs[n].append(r)
            print("rep %d: %d connections: connect %.1f s (%.0f us CPU each), idle %.3f cores, "
                  "drain %.1f s (%.1f s CPU), exit %d" % (
                      rep + 1, n, r["connect_s"], r["connect_us"], r["idle_cores"],
                      r["drain_s"], r["drain_cpu_s"], r["exit"]), flush=True)
    print("load average after: %s" % open("/proc/loadavg").read().strip())
    print()
    print("| connections (one instance) | connect: CPU per connection (us) | idle: CPU (cores) "
          "| idle: CPU per connection (us/s) | drain after SIGTERM: wall (s) | drain: CPU (s) "
          "| exit statuses |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        rs = runs[n]
        med = lambda k: statistics.median(r[k] for r in rs)   # noqa: E731
        print("| %s | %.0f | %.3f | %.1f | %.1f | %.1f | %s |" % (
            f"{n:,}", med("connect_us"), med("idle_cores"), 1e6 * med("idle_cores") / n,
            med("drain_s"), med("drain_cpu_s"), ", ".join(str(r["exit"]) for r in rs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
