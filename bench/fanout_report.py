#!/usr/bin/python3
"""Summarises bench/fanout.sh's raw results (one JSON object per line from
wsload and bench/amqp_stomp.py) as medians per server and scenario, with the
ratios issue 11 sets targets for, prints them, and rewrites the generated
part of the "Fan-out" section of docs/BENCHMARKS.md: the text between the
markers <!-- fanout:results:begin --> and <!-- fanout:results:end -->. The
hand-written interpretation around the markers is left alone."""
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

TITLES = {
    "a": "A: 10,000 receivers on 1,000 submissions, 20,000 publishes",
    "b": "B: 10,000 receivers on one submission, 200 publishes",
    "e": "E: 100 receivers beside 9,900 idle connections, 1,000 publishes",
}
SERVERS = ["statusgate", "statusgate-base", "nchan", "web-stomp", "floor"]


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=0):
    if v is None:
        return "-"
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


def pkg_version(name):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                              capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def rows_of(rows, label, server):
    return [r for r in rows if r.get("label") == label and r.get("server") == server]


def fanout_table(rows, out):
    out.append("| scenario | server | deliveries/s | latency p50 / p99 / p99.9 (ms) | "
               "server CPU per delivery (ns) | of it on the service thread (ns) | "
               "CPU / floor | missing / out of order |")
    out.append("|---|---|---:|---|---:|---:|---:|---|")
    figs = {}
    for sc in ("a", "b", "e"):
        fl = rows_of(rows, sc, "floor")
        floor_ns = med([r.get("cpu_ns_per_write") for r in fl])
        floor_rate = med([r.get("writes_per_s") for r in fl])
        for srv in ("statusgate", "statusgate-base", "nchan"):
            rs = rows_of(rows, sc, srv)
            if not rs:
                continue
            f = {
                "dps": med([r.get("deliveries_per_s") for r in rs]),
                "p50": med([r["lat_ms"]["p50"] for r in rs]),
                "p99": med([r["lat_ms"]["p99"] for r in rs]),
                "p999": med([r.get("lat_ms_p999") for r in rs]),
                "cpu": med([r.get("server_cpu_ns_per_delivery") for r in rs]),
                "main": med([r.get("server_main_cpu_ns_per_delivery") for r in rs]),
                "bad": (sum(r.get("missing", 0) for r in rs), sum(r.get("out_of_order", 0) for r in rs)),
            }
            figs[(sc, srv)] = f
            out.append(f"| {TITLES[sc]} | {srv} | {fmt(f['dps'])} | {fmt(f['p50'], 2)} / "
                       f"{fmt(f['p99'], 2)} / {fmt(f['p999'], 2)} | {fmt(f['cpu'])} | "
                       f"{fmt(f['main']) if srv != 'nchan' else '-'} | "
                       f"{ratio(f['cpu'], floor_ns)} | {f['bad'][0]} / {f['bad'][1]} |")
        if fl:
            figs[(sc, "floor")] = {"dps": floor_rate, "cpu": floor_ns}
            out.append(f"| {TITLES[sc]} | write() floor | {fmt(floor_rate)} | - | {fmt(floor_ns)} | - | "
                       f"1.00 | - |")
    return figs


def conns_table(rows, out):
    out.append("| figure | server | median | runs |")
    out.append("|---|---|---:|---|")
    figs = {}
    for srv in ("statusgate", "statusgate-base", "nchan"):
        rs = rows_of(rows, "c", srv)
        if rs:
            fresh = med([r["bytes_per_conn_fresh"] for r in rs])
            churn = med([r["bytes_per_conn_churned"] for r in rs])
            figs[("c", srv)] = {"fresh": fresh, "churn": churn}
            out.append(f"| C: RSS per idle connection, 19,000 open, fresh (B) | {srv} | {fmt(fresh)} | "
                       + ", ".join(fmt(r["bytes_per_conn_fresh"]) for r in rs) + " |")
            out.append(f"| C: the same after 3 rounds of all closing and reopening (B) | {srv} | "
                       f"{fmt(churn)} | " + ", ".join(fmt(r["bytes_per_conn_churned"]) for r in rs) + " |")
    for srv in ("statusgate", "statusgate-base", "nchan"):
        rs = rows_of(rows, "h", srv)
        if rs:
            hs = med([r["handshakes_per_s_median"] for r in rs])
            figs[("h", srv)] = {"hs": hs}
            out.append(f"| H: handshakes/s, 10,000 connecting at once | {srv} | {fmt(hs)} | "
                       + ", ".join(fmt(v) for r in rs for v in r["handshakes_per_s"]) + " |")
        rs = rows_of(rows, "c", srv)
        if rs:
            hs = med([r["handshakes_per_s_median"] for r in rs])
            out.append(f"| C: handshakes/s, 19,000 connecting 500 at a time | {srv} | {fmt(hs)} | "
                       + ", ".join(fmt(v) for r in rs for v in r["handshakes_per_s"]) + " |")
    return figs


def d_table(rows, out):
    rates = sorted({s["rate"] for r in rows if r.get("label") == "d" for s in r.get("steps", [])})
    figs = {}
    if not rates:
        return figs
    out.append("| publishes/s | server | deliveries / expected | p50 (ms) | p99 (ms) | p99.9 (ms) |")
    out.append("|---:|---|---|---:|---:|---:|")
    for srv in ("statusgate", "statusgate-base", "web-stomp"):
        rs = rows_of(rows, "d", srv)
        if not rs:
            continue
        best = 0
        for rate in rates:
            st = [s for r in rs for s in r.get("steps", []) if s["rate"] == rate]
            if not st:
                continue
            p50 = med([s["p50"] for s in st])
            p99 = med([s["p99"] for s in st])
            p999 = med([s["p999"] for s in st])
            got = sum(s["deliveries"] for s in st)
            exp = sum(s["expected"] for s in st)
            if p99 is not None and p99 < 10 and got == exp:
                best = rate
            out.append(f"| {fmt(rate)} | {srv} | {got:,} / {exp:,} | {fmt(p50, 2)} | "
                       f"{fmt(p99, 2)} | {fmt(p999, 2)} |")
        figs[srv] = best
    out.append("")
    out.append("Highest rate with every message delivered and p99 under 10 ms: " +
               ", ".join(f"{srv} {fmt(v)}/s" for srv, v in figs.items()) + ".")
    return figs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--rev", default="?")
    ap.add_argument("--base-rev")
    ap.add_argument("--reps", default="?")
    ap.add_argument("--docs")
    ap.add_argument("--no-docs", action="store_true")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.results) if l.strip().startswith("{")]

    out = []
    out.append(f"Last run: {datetime.date.today()}, statusgate {a.rev} (Release build)"
               + (f" and, as statusgate-base, {a.base_rev}" if a.base_rev else "")
               + f", nginx {pkg_version('nginx')}, libnginx-mod-nchan {pkg_version('libnginx-mod-nchan')}, "
               f"rabbitmq-server {pkg_version('rabbitmq-server')}; {machine()}; "
               f"{a.reps} repetitions per server and scenario, medians shown; servers pinned to "
               "CPU 0, the load tool to CPU 1.")
    out.append("")
    f1 = fanout_table(rows, out)
    out.append("")
    f2 = conns_table(rows, out)
    out.append("")
    f3 = d_table(rows, out)
    out.append("")
    out.append("Ratios (same run):")
    out.append("")
    for sc in ("a", "b", "e"):
        sg, ng, fl, bs = (f1.get((sc, s)) for s in ("statusgate", "nchan", "floor", "statusgate-base"))
        if not sg:
            continue
        parts = []
        if ng:
            parts.append(f"deliveries/s {ratio(sg['dps'], ng['dps'])}x nchan")
            parts.append(f"p99 {ratio(sg['p99'], ng['p99'])}x nchan's")
            parts.append(f"CPU per delivery {ratio(sg['cpu'], ng['cpu'])}x nchan's")
        if fl:
            parts.append(f"deliveries/s {ratio(sg['dps'], fl['dps'])}x the floor's write rate")
            parts.append(f"CPU per delivery {ratio(sg['cpu'], fl['cpu'])}x the floor's")
        if bs:
            parts.append(f"deliveries/s {ratio(sg['dps'], bs['dps'])}x base, "
                         f"CPU per delivery {ratio(sg['cpu'], bs['cpu'])}x base")
        out.append(f"- {sc.upper()}: " + "; ".join(parts))
    sgc, ngc, bsc = (f2.get(("c", s)) for s in ("statusgate", "nchan", "statusgate-base"))
    if sgc:
        out.append(f"- C: RSS per idle connection after churn {fmt(sgc['churn'])} B"
                   + (f" ({ratio(sgc['churn'], ngc['churn'])}x nchan's {fmt(ngc['churn'])} B)" if ngc else "")
                   + (f", base {fmt(bsc['churn'])} B" if bsc else ""))
    sgh, ngh, bsh = (f2.get(("h", s)) for s in ("statusgate", "nchan", "statusgate-base"))
    if sgh:
        out.append(f"- H: handshakes/s {fmt(sgh['hs'])}"
                   + (f" ({ratio(sgh['hs'], ngh['hs'])}x nchan's {fmt(ngh['hs'])})" if ngh else "")
                   + (f", base {fmt(bsh['hs'])}" if bsh else ""))
    if f3:
        out.append("- D: highest rate with p99 under 10 ms: " +
                   ", ".join(f"{s} {fmt(v)}/s" for s, v in f3.items()))
    text = "\n".join(out)
    print(text)
    if a.no_docs or not a.docs:
        return
    doc = open(a.docs).read()
    block = BEGIN + "\n" + text + "\n" + END
    if BEGIN in doc and END in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda m: block, doc, flags=re.S)
    else:
        doc += "\n## Fan-out\n\n" + block + "\n"
    open(a.docs, "w").write(doc)


if __name__ == "__main__":
    main()
