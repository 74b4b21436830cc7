"""A real nginx (Debian's) in front of statusgate, as a deployment that
replaces a Django Channels server runs it: deploy/nginx/statusgate.conf with
its two upstreams and its listen port rewritten, inside a minimal nginx.conf
of our own (own prefix, pid and temp paths, foreground: daemon off).

Used as a module (Nginx) by the Python tests and as a program by the browser
tests:  python3 nginx_proxy.py --gateway 127.0.0.1:P --app 127.0.0.1:Q
prints "ready PORT" once nginx answers, and runs until it gets SIGTERM.
With --refuse-websocket the /ws location answers 403 to everything, as a
corporate proxy that blocks WebSockets does (/sse/ still goes through).
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.environ.get("GW_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
CONF = os.path.join(SOURCE_DIR, "deploy", "nginx", "statusgate.conf")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(gateway, app, port, refuse_websocket=False):
    """deploy/nginx/statusgate.conf for these addresses; fails loudly if the
    file no longer has the lines this rewrites"""
    with open(CONF) as f:
        text = f.read()
    subs = ((r"server statusgate:8080;", "server %s;" % gateway),
            (r"server web:8000;", "server %s;" % app),
            (r"listen 80;", "listen 127.0.0.1:%d;" % port))
    if refuse_websocket:
        subs += ((r"location /ws {", "location /ws {\n\t\treturn 403;   # a proxy that blocks WebSockets"),)
    for pat, rep in subs:
        text, n = re.subn(re.escape(pat), rep, text)
        if n != 1:
            raise RuntimeError("%s: expected one '%s'" % (CONF, pat))
    return text


class Nginx:
    def __init__(self, gateway, app="127.0.0.1:9", port=None, refuse_websocket=False):
        if not os.path.exists(NGINX):
            raise RuntimeError("nginx is not installed (scripts/deps.sh --test installs it)")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="sg-nginx-")
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(self.dir, d))
        with open(os.path.join(self.dir, "statusgate.conf"), "w") as f:
            f.write(render(gateway, app, self.port, refuse_websocket))
        tmp = os.path.join(self.dir, "tmp")
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write("""daemon off;
master_process off;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/logs/error.log info;
events { worker_connections 4096; }
http {
    access_log %(d)s/logs/access.log;
    client_body_temp_path %(t)s/body;
    proxy_temp_path %(t)s/proxy;
    fastcgi_temp_path %(t)s/fastcgi;
    uwsgi_temp_path %(t)s/uwsgi;
    scgi_temp_path %(t)s/scgi;
    include %(d)s/statusgate.conf;
}
""" % {"d": self.dir, "t": tmp})
        self.proc = None

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def ws_base(self):
        return "ws://127.0.0.1:%d" % self.port

    def start(self, timeout=15):
        self.proc = subprocess.Popen(
            [NGINX, "-p", self.dir, "-c", os.path.join(self.dir, "nginx.conf"),
             "-e", os.path.join(self.dir, "logs", "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited with %s: %s\n%s" % (
                    self.proc.returncode, self.proc.stderr.read().decode(), self.logs()))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen on %d:\n%s" % (self.port, self.logs()))

    def logs(self):
        try:
            with open(os.path.join(self.dir, "logs", "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)   # graceful: finish and exit
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", required=True, help="statusgate's HOST:PORT")
    ap.add_argument("--app", default="127.0.0.1:9", help="the web application's HOST:PORT")
    ap.add_argument("--refuse-websocket", action="store_true",
                    help="answer 403 on /ws, as a proxy that blocks WebSockets")
    a = ap.parse_args()
    ng = Nginx(a.gateway, a.app, refuse_websocket=a.refuse_websocket).start()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print("ready %d" % ng.port, flush=True)
    try:
        while not stop and ng.proc.poll() is None:
            time.sleep(0.1)
    finally:
        ng.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
