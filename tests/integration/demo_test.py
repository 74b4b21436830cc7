"""`statusgate demo` against a real gateway: plays the whole life cycle with
--speed 0 and ends Completed with the counts it announces; it reports an
unreachable gateway and a refused publish clearly, with exit status 1, and a
bad option with exit status 2.
"""
import re
import subprocess

from harness import BIN, CheckedGateway as Gateway
from harness import Runner, free_port

t = Runner()


def demo(*args, timeout=120):
    return subprocess.run([BIN, "demo"] + list(args), capture_output=True, text=True,
                          timeout=timeout)


@t.test
def demo_plays_to_completed():
    with Gateway() as gw:
        r = demo("--url", gw.base, "--submission", "demo-t", "--speed", "0")
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stdout.splitlines()
        for st in ("Waiting", "Loaded", "Need Revision", "Ready", "Submitted", "Completed"):
            assert any(re.match(r"\s*\d+\s+%s\s" % st, l) for l in lines), (st, r.stdout)
        m = re.search(r"done: animal (\d+) \(pass (\d+), warning (\d+)\), "
                      r"sample (\d+) \(pass (\d+), warning (\d+)\), (\d+) errors fixed", r.stdout)
        assert m, r.stdout
        na, ap, aw, ns, sp, sw, fixed = map(int, m.groups())
        assert (na, ns) == (500, 500) and ap + aw == 500 and sp + sw == 500, m.groups()
        assert aw > 0 and sw > 0 and fixed > 0, m.groups()

        st, body = gw.http("GET", "/api/v1/submissions/demo-t")
        assert st == 200, body
        assert body["status"] == "Completed", body
        s = body["summary"]
        assert s["animal"] == {"all": 500, "known": 500, "unknown": 0, "pass": ap,
                               "warning": aw, "error": 0, "issues": 0}, s["animal"]
        assert s["sample"] == {"all": 500, "known": 500, "unknown": 0, "pass": sp,
                               "warning": sw, "error": 0, "issues": 0}, s["sample"]
        texts = {(m["text"], m["column"]) for m in s["messages"]}
        assert ("Breed not in ontology", "breed") in texts, texts
        assert ("Missing collection date", "collection_date") in texts, texts

        # the life cycle as the page's timeline sees it: statuses in order,
        # and the validation passed through Need Revision with errors
        st, ev = gw.http("GET", "/api/v1/submissions/demo-t/events?since=0")
        assert st == 200 and not ev["truncated"], ev
        seqs = [e["seq"] for e in ev["events"]]
        assert seqs == list(range(1, len(seqs) + 1)), seqs
        statuses = []
        for e in ev["events"]:
            if e["type"] == "status":
                statuses.append(e["status"])
        assert statuses == ["Waiting", "Loaded", "Need Revision", "Ready", "Submitted",
                            "Completed"], statuses
        nr = [e for e in ev["events"] if e["type"] == "status" and e["status"] == "Need Revision"][0]
        assert nr["summary"]["animal"]["error"] + nr["summary"]["sample"]["error"] == fixed, nr
        batches = [e for e in ev["events"] if e["type"] == "validation"]
        assert len(batches) >= 10, len(batches)

        # a second run on the same key starts from a clean slate (reset)
        r = demo("--url", gw.base, "--submission", "demo-t", "--speed", "0",
                 "--animals", "20", "--samples", "10")
        assert r.returncode == 0, r.stdout + r.stderr
        st, body = gw.http("GET", "/api/v1/submissions/demo-t")
        assert body["summary"]["animal"]["all"] == 20, body
        assert body["summary"]["sample"]["all"] == 10, body


@t.test
def demo_reports_unreachable_gateway():
    port = free_port()
    r = demo("--url", "http://127.0.0.1:%d" % port, "--speed", "0", timeout=30)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "cannot reach the gateway" in r.stderr and "refused" in r.stderr, r.stderr


@t.test
def demo_reports_refused_publish():
    with Gateway("--publish-token", "sekrit") as gw:
        r = demo("--url", gw.base, "--speed", "0")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "refused" in r.stderr and "401" in r.stderr and "--token" in r.stderr, r.stderr
        r = demo("--url", gw.base, "--speed", "0", "--token", "sekrit",
                 "--animals", "10", "--samples", "0")
        assert r.returncode == 0, r.stdout + r.stderr
        st, body = gw.http("GET", "/api/v1/submissions/demo-1")
        assert st == 200 and body["status"] == "Completed", body


@t.test
def demo_bad_options():
    for args in (["--speed", "fast"], ["--speed", "-1"], ["--url", "ftp://x"],
                 ["--animals", "-5"], ["--submission", "no/slash"], ["--nope"]):
        r = demo(*args, timeout=30)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert r.stderr.strip(), args
    r = demo("--help", timeout=30)
    assert r.returncode == 0 and "--speed" in r.stdout + r.stderr, r


t.run()
