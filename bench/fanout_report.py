#!/usr/bin/python3
"""Summarises bench/fanout.sh's raw results (one JSON object per line from
wsload) as medians, prints them, and rewrites the generated part of the
"Fan-out" section of docs/BENCHMARKS.md: the text between the markers
<!-- fanout:results:begin --> and <!-- fanout:results:end -->. The hand-written
interpretation around the markers is left alone. Without the markers, a
"## Fan-out" section holding them is appended."""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess

BEGIN = "<!-- fanout:results:begin -->"
END = "<!-- fanout:results:end -->"

SCENARIOS = {
    "a": "1000 receivers, as fast as possible",
    "b": "100 receivers, as fast as possible, 4 publishers",
    "c": "10000 receivers, as fast as possible",
    "d": "1000 receivers, 50 events/s (latency at a light load)",
    "e": "100 receivers beside 9900 idle connections",
    "a-auto": "as a, nchan with worker_processes auto",
}


def med(rows, key, sub=None):
    vals = [(r[key][sub] if sub else r[key]) for r in rows if key in r]
    return statistics.median(vals) if vals else None


def fmt(v, nd=0):
    if v is None:
        return "-"
    if nd == 0:
        return f"{v:,.0f}"
    return f"{v:,.{nd}f}"


def ratio(a, b, nd=2):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.{nd}f}"


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}"


def nchan_version():
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libnginx-mod-nchan"],
                             capture_output=True, text=True).stdout
        ng = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
        return f"{ng.replace('nginx version: ', '')}, libnginx-mod-nchan {out}"
    except OSError:
        return "?"


def build(results, rev, reps):
    groups = {}
    for r in results:
        groups.setdefault((r["label"], r["server"]), []).append(r)
    out = []
    out.append(f"Last run: {datetime.date.today().isoformat()}, statusgate {rev} (Release build), "
               f"{nchan_version()}; {machine()}; {reps} repetitions per server "
               "and scenario, medians shown.\n")
    out.append("| scenario | server | deliveries/s | latency p50 / p90 / p99 / max (ms) | "
               "server CPU per delivery (ns) | of it on the service thread (ns) | "
               "CPU / syscall floor | peak RSS (MB) | RSS per connection (kB) | "
               "missing / out of order |")
    out.append("|---|---|---:|---|---:|---:|---:|---:|---:|---|")
    ratios = []
    for sc in ["a", "b", "c", "d", "e", "a-auto"]:
        floor = med(groups.get((sc, "floor"), []), "cpu_ns_per_write")
        per = {}
        for srv in ["statusgate", "nchan"]:
            rows = groups.get((sc, srv))
            if not rows:
                continue
            d = {
                "dps": med(rows, "deliveries_per_s"),
                "p50": med(rows, "lat_ms", "p50"), "p90": med(rows, "lat_ms", "p90"),
                "p99": med(rows, "lat_ms", "p99"), "max": med(rows, "lat_ms", "max"),
                "cpu": med(rows, "server_cpu_ns_per_delivery"),
                "main": med(rows, "server_main_cpu_ns_per_delivery"),
                "hwm": med(rows, "server_hwm_kb"), "kbc": med(rows, "server_kb_per_conn"),
                "missing": sum(r["missing"] for r in rows),
                "ooo": sum(r["out_of_order"] for r in rows),
                "lost": sum(r["receivers_lost"] + r["http_errors"] for r in rows),
                "n": len(rows),
            }
            per[srv] = d
            auto = sc.endswith("-auto")
            floor_col = "-" if floor is None else ratio(d["cpu"], floor)
            out.append(
                f"| {sc}: {SCENARIOS.get(sc, sc)} | {srv} | {fmt(d['dps'])} | "
                f"{fmt(d['p50'], 2)} / {fmt(d['p90'], 2)} / {fmt(d['p99'], 2)} / {fmt(d['max'], 1)} | "
                f"{'-' if auto else fmt(d['cpu'])} | {'-' if auto else fmt(d['main'])} | "
                f"{floor_col} | {'-' if auto else fmt(d['hwm'] / 1024 if d['hwm'] else None, 1)} | "
                f"{'-' if auto else fmt(d['kbc'], 1)} | {d['missing']} / {d['ooo']}"
                f"{' (%d lost)' % d['lost'] if d['lost'] else ''} |")
        if floor is not None:
            out.append(f"| {sc}: syscall floor | write() only | - | - | {fmt(floor)} | - | 1.00 | - | - | - |")
        if "statusgate" in per and "nchan" in per:
            s, n = per["statusgate"], per["nchan"]
            ratios.append(f"- {sc}: statusgate / nchan: deliveries/s {ratio(s['dps'], n['dps'])}, "
                          f"p50 latency {ratio(s['p50'], n['p50'])}, p99 latency {ratio(s['p99'], n['p99'])}, "
                          f"CPU per delivery {ratio(s['cpu'], n['cpu'])}, "
                          f"RSS per connection {ratio(s['kbc'], n['kbc'])}")
    out.append("")
    out.append("Ratios (statusgate / nchan, same run; below 1 is better for statusgate except "
               "deliveries/s):\n")
    out.extend(ratios)
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--rev", default="?")
    ap.add_argument("--reps", default="?")
    ap.add_argument("--docs")
    ap.add_argument("--no-docs", action="store_true")
    a = ap.parse_args()
    with open(a.results) as f:
        results = [json.loads(line) for line in f if line.strip().startswith("{")]
    text = build(results, a.rev, a.reps)
    print(text)
    if a.no_docs or not a.docs:
        return
    block = f"{BEGIN}\n{text}{END}"
    try:
        with open(a.docs) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = "# Benchmarks\n\nMeasured on the development machine; see each section for the command.\n"
    if BEGIN in doc and END in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda m: block, doc, flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n## Fan-out\n\n" + block + "\n"
    with open(a.docs, "w") as f:
        f.write(doc)
    print(f"updated {a.docs}")


if __name__ == "__main__":
    main()
