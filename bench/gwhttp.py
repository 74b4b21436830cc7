"""The gateway's HTTP side as the bench scripts read it (imported by
bench/scaleout.py and bench/soak.py)."""
import urllib.error
import urllib.request


def http_get(port, path, timeout=5):
    """(status, body text) of GET path on 127.0.0.1:port"""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics(port, timeout=5):
    """{sample name with labels: value} of a gateway's /metrics"""
    st, text = http_get(port, "/metrics", timeout)
    if st != 200:
        raise RuntimeError("/metrics: %d" % st)
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.rpartition(" ")
            out[name] = float(v)
    return out
