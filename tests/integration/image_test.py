"""The container image, built and run (label: image).

Builds the image with scripts/image.sh (podman; it sets podman and the
Debian base images up through ../shared/tools/podman-base when they are
missing), runs it with a published loopback port and a named volume, and
talks to it from outside as an operator would: /healthz and /readyz, a
publish over HTTP with the publish token reaching a WebSocket, the unprivileged
user, the image's HEALTHCHECK, `podman stop` (SIGTERM) ending in exit 0 with
WebSockets closed 1001, and the store surviving on its volume into a new
container. At the end it removes the containers, the volume, the image and the
build layers that depend on the sources; the base images and the build
stage's toolchain layers stay as cache. Nothing here skips: without podman
this fails with the reason.
"""
import asyncio
import atexit
import json
import os
import signal
import subprocess
import time

import websockets
import yaml

from harness import Gateway, Runner, SOURCE_DIR, free_port, recv_json, records, status, validation

t = Runner()

TAG = "localhost/statusgate:imagetest-%d" % os.getpid()
NAME = "sg-imagetest-%d" % os.getpid()
VOLUME = NAME + "-store"
TOKEN = "image-test-publish-token"
KEY = "image-1"
STATE = {}          # what one test leaves for the next: the state before the stop
made_containers = []


def podman(*args, check=True, timeout=120):
    """Runs podman; returns its stdout (stripped). check: fail on a non-zero
    exit with podman's stderr in the message."""
    try:
        p = subprocess.run(["podman"] + list(args), capture_output=True, text=True,
                           timeout=timeout)
    except FileNotFoundError:
        raise AssertionError("podman is not installed (scripts/image.sh installs it "
                             "with ../shared/tools/podman-base)")
    if check and p.returncode:
        raise AssertionError("podman %s: exit %d\n%s%s" % (" ".join(args), p.returncode,
                                                           p.stdout, p.stderr))
    return p.stdout.strip() if check else p


def image_ids():
    out = podman("images", "--all", "--quiet", "--no-trunc", check=False)
    return set(out.stdout.split()) if out.returncode == 0 else set()


IMAGES_BEFORE = image_ids()


class Container(Gateway):
    """The image run as a container: the harness's HTTP and WebSocket clients
    (http, publish, ws) against its published port."""

    def __init__(self, name, *args, env=None):
        super().__init__(port=free_port(), workdir="/nonexistent")
        self.name = name
        self.cmd_args = list(args)
        self.cenv = env or {}

    def start(self, wait=True):
        envs = []
        for k, v in self.cenv.items():
            envs += ["-e", "%s=%s" % (k, v)]
        made_containers.append(self.name)
        podman("run", "-d", "--name", self.name, "-p", "127.0.0.1:%d:8080" % self.port,
               "-v", VOLUME + ":/var/lib/statusgate", *envs, TAG, *self.cmd_args)
        if wait:
            self.wait_healthy()
        return self

    def running(self):
        return podman("inspect", "--format", "{{.State.Running}}", self.name) == "true"

    def wait_healthy(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.running():
                raise AssertionError("the container exited:\n" + self.logs())
            try:
                if self.http("GET", "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("the container did not answer /healthz:\n" + self.logs())

    def logs(self):
        p = podman("logs", self.name, check=False)
        return p.stdout + p.stderr

    def inspect(self, fmt):
        return podman("inspect", "--format", fmt, self.name)

    def exec(self, *cmd):
        return podman("exec", self.name, *cmd)

    def healthcheck(self):
        """Runs the image's HEALTHCHECK once and returns its exit status.
        podman schedules health checks with systemd timers; where there is no
        systemd (as on these machines) nothing runs them, so the test runs
        them as the timer would."""
        return podman("healthcheck", "run", self.name, check=False, timeout=30).returncode

    def stop(self, timeout=20):
        """podman stop (SIGTERM, the image's STOPSIGNAL; SIGKILL after timeout
        seconds); returns (exit code, seconds it took)."""
        t0 = time.time()
        podman("stop", "--time", str(timeout), self.name, timeout=timeout + 30)
        took = time.time() - t0
        return int(self.inspect("{{.State.ExitCode}}")), took

    def remove(self):
        podman("rm", "--force", self.name, check=False)


def cleanup():
    """Removes what the test made; returns what could not be removed."""
    left = []
    for name in made_containers:
        podman("rm", "--force", "--time", "0", name, check=False)
        if podman("container", "exists", name, check=False).returncode == 0:
            left.append("container " + name)
    podman("volume", "rm", "--force", VOLUME, check=False)
    if podman("volume", "exists", VOLUME, check=False).returncode == 0:
        left.append("volume " + VOLUME)
    podman("rmi", "--force", TAG, check=False)
    if podman("image", "exists", TAG, check=False).returncode == 0:
        left.append("image " + TAG)
    # Removing the image took the runtime stage's layers with it. Of the build
    # stage's intermediate images, those made from its COPY of the sources
    # onwards are removed (children first); the layers before it (the apt-get
    # of the pinned toolchain) are the cache that spares the next build the
    # download and are kept (--no-prune), as are the base images.
    new = image_ids() - IMAGES_BEFORE
    doomed = []
    for iid in new:
        p = podman("image", "inspect", "--format", "{{json .History}}", iid, check=False)
        if p.returncode:
            continue
        steps = [h.get("created_by", "") for h in json.loads(p.stdout or "[]") or []]
        if any(" COPY " in s for s in steps):
            doomed.append((len(steps), iid))
    for _, iid in sorted(doomed, reverse=True):
        podman("rmi", "--no-prune", iid, check=False)
        if podman("image", "exists", iid, check=False).returncode == 0:
            left.append("image " + iid[:12])
    return left


atexit.register(cleanup)


def running_container():
    """The container the previous tests started (each test goes on from the
    state the one before left)."""
    assert "c" in STATE, "no container: an earlier step (the build or the first run) failed"
    return STATE["c"]


@t.test
def image_builds_with_scripts_image_sh():
    t0 = time.time()
    p = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "image.sh")],
                       env=dict(os.environ, IMAGE=TAG), capture_output=True, text=True,
                       timeout=1000)
    STATE["build_seconds"] = time.time() - t0
    out = p.stdout + p.stderr
    assert p.returncode == 0, "scripts/image.sh failed (exit %d):\n%s" % (p.returncode, out[-6000:])
    STATE["build_ok"] = True
    size = int(podman("image", "inspect", "--format", "{{.Size}}", TAG))
    base = int(podman("image", "inspect", "--format", "{{.Size}}",
                      "docker.io/library/debian:12-slim"))
    print("image %s: %.1f MB (debian:12-slim %.1f MB), built in %.0f s" %
          (TAG, size / 1e6, base / 1e6, STATE["build_seconds"]))
    # the runtime stage adds the binary, web/ and the shared libraries only:
    # a compiler or the -dev packages in it would add far more than this
    assert size - base < 30e6, "the image is %.1f MB over debian:12-slim" % ((size - base) / 1e6)
    cfg = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", TAG))
    assert cfg["User"] == "10001:10001", cfg
    assert "/var/lib/statusgate" in (cfg.get("Volumes") or {}), cfg
    assert "8080/tcp" in (cfg.get("ExposedPorts") or {}), cfg
    assert cfg.get("StopSignal") in ("SIGTERM", "15"), cfg
    hc = json.loads(podman("image", "inspect", "--format", "{{json .HealthCheck}}", TAG)) or {}
    assert hc.get("Test") and "/healthz" in " ".join(hc["Test"]), \
        "no HEALTHCHECK on /healthz in the image (built without --format docker?): %r" % hc
    tools = subprocess.run(["podman", "run", "--rm", "--entrypoint", "bash", TAG, "-c",
                            "command -v cc gcc cmake make pkg-config || true"],
                           capture_output=True, text=True, timeout=60)
    assert tools.returncode == 0 and tools.stdout.strip() == "", \
        "build tools in the runtime image: %r %r" % (tools.stdout, tools.stderr)


@t.test
async def serves_health_ready_and_a_publish_to_websockets():
    assert "build_ok" in STATE, "the image was not built"
    c = STATE["c"] = Container(NAME + "-a", env={"STATUSGATE_PUBLISH_TOKEN": TOKEN}).start()
    st, body = c.http("GET", "/healthz")
    assert (st, body) == (200, {"status": "ok"}), (st, body)
    st, body = c.http("GET", "/readyz")
    assert (st, body) == (200, {"status": "ready"}), (st, body)

    async with c.ws("/ws") as mux:
        await mux.send(json.dumps({"op": "subscribe", "id": 1, "submission": KEY}))
        ack = await recv_json(mux)
        assert ack["op"] == "ack" and ack["seq"] == 0, ack
        snap = await recv_json(mux)
        assert snap["op"] == "snapshot" and snap["status"] is None, snap
        # from outside the container the publisher is not on its loopback:
        # only the token lets it publish
        st, body = c.publish(status(KEY, "Loaded", "from outside"))
        assert st == 401, (st, body)
        st, body = c.publish(status(KEY, "Loaded", "from outside"), token="wrong")
        assert st == 403, (st, body)
        st, body = c.publish(status(KEY, "Loaded", "from outside"), token=TOKEN)
        assert st == 200 and body["accepted"] and body["seq"] == 1, (st, body)
        ev = await recv_json(mux)
        assert (ev["op"], ev["submission"], ev["seq"], ev["status"], ev["notification"]) == \
            ("event", KEY, 1, "Loaded", "from outside"), ev
        assert ev["epoch"] == ack["epoch"], (ev, ack)

    for body in (records(KEY, "animal", ["a1", "a2", "a3"]),
                 validation(KEY, [("animal", "a1", "Error", [("bad breed", "breed")]),
                                  ("animal", "a2", "Pass", [])]),
                 status(KEY, "Need Revision", "fix a1")):
        st, resp = c.publish(body, token=TOKEN)
        assert st == 200 and resp["accepted"], (st, resp)
    st, state = c.http("GET", "/api/v1/submissions/" + KEY)
    assert st == 200 and state["seq"] == 4 and state["status"] == "Need Revision", state
    STATE["state"] = state


@t.test
def runs_as_an_unprivileged_user():
    c = running_container()
    uid = int(c.exec("id", "-u"))
    assert uid != 0, "podman exec runs as root"
    # the uid deploy/kubernetes/ sets as runAsUser and fsGroup
    assert uid == 10001 and c.exec("id", "-un") == "statusgate", uid
    # the gateway itself (PID 1), not only what exec starts
    st = dict(ln.split(":", 1) for ln in c.exec("cat", "/proc/1/status").splitlines() if ":" in ln)
    real, effective = st["Uid"].split()[:2]
    assert real == effective == str(uid), st["Uid"]
    # and the store on the volume belongs to that user
    owner = c.exec("stat", "-c", "%U %a", "/var/lib/statusgate", "/var/lib/statusgate/statusgate.db")
    assert owner.splitlines() == ["statusgate 750", "statusgate 644"], owner


@t.test
def health_check_reports_healthy_and_a_hung_gateway_unhealthy():
    c = running_container()
    deadline = time.time() + 60
    health = None
    while time.time() < deadline:
        rc = c.healthcheck()
        health = c.inspect("{{.State.Health.Status}}")
        if rc == 0 and health == "healthy":
            break
        time.sleep(1)
    assert health == "healthy", "health: %s\n%s" % (health, c.inspect("{{json .State.Health}}"))
    log = json.loads(c.inspect("{{json .State.Health.Log}}"))
    assert log and log[-1]["ExitCode"] == 0, log
    # a gateway that is there but does not answer must fail the check: stop
    # the process (SIGSTOP from the host; the kernel still accepts the TCP
    # connection) and the check must time out instead of passing
    pid = int(c.inspect("{{.State.Pid}}"))
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.time()
        rc = c.healthcheck()
        took = time.time() - t0
    finally:
        os.kill(pid, signal.SIGCONT)
    assert rc != 0, "the health check passed while the gateway was stopped"
    assert took < 15, took
    # (within the start period a failure is logged but not yet counted)
    log = json.loads(c.inspect("{{json .State.Health.Log}}"))
    assert log[-1]["ExitCode"] != 0, log
    assert c.healthcheck() == 0 and c.inspect("{{.State.Health.Status}}") == "healthy", \
        c.inspect("{{json .State.Health}}")


@t.test
async def podman_stop_closes_websockets_1001_and_exits_0():
    c = running_container()
    async with c.ws("/ws/submissions/%s/" % KEY) as legacy:
        first = await recv_json(legacy)
        assert first["message"] == "Need Revision", first
        loop = asyncio.get_running_loop()
        stopping = loop.run_in_executor(None, c.stop)
        try:
            while True:
                await asyncio.wait_for(legacy.recv(), 30)
        except websockets.exceptions.ConnectionClosed as e:
            code = e.code
        rc, took = await stopping
    assert code == 1001, code
    # 137 would be podman's SIGKILL after --time: SIGTERM alone must end it
    assert rc == 0, "exit code %s after %.1f s:\n%s" % (rc, took, c.logs())
    assert took < 10, "podman stop took %.1f s" % took
    logs = c.logs()
    assert "signal 15: stopping" in logs and "serve: stopped" in logs, logs


@t.test
async def store_survives_on_the_volume_in_a_new_container():
    running_container().remove()
    assert "state" in STATE, "no state was published before the restart"
    before = STATE["state"]
    c = STATE["c"] = Container(NAME + "-b", env={"STATUSGATE_PUBLISH_TOKEN": TOKEN}).start()
    st, state = c.http("GET", "/api/v1/submissions/" + KEY)
    assert (st, state) == (200, before), (st, state, before)
    st, events = c.http("GET", "/api/v1/submissions/%s/events?since=0" % KEY)
    assert st == 200 and [e["seq"] for e in events["events"]] == [1, 2, 3, 4], events
    async with c.ws("/ws/submissions/%s/" % KEY) as legacy:
        frame = await recv_json(legacy)
    assert frame["message"] == "Need Revision" and frame["validation_message"]["animals"] == 3, frame
    # same store, same epoch: the sequence goes on
    st, resp = c.publish(status(KEY, "Ready", "after the restart"), token=TOKEN)
    assert st == 200 and resp["seq"] == 5 and resp["epoch"] == before["epoch"], (st, resp)


@t.test
def kubernetes_prestop_hook_stops_it_with_exit_0():
    """The preStop command of deploy/kubernetes/deployment.yaml, run in the
    container as the kubelet would, must work in this image (bash, sleep and
    kill there; the unprivileged user may signal PID 1) and end it cleanly."""
    with open(os.path.join(SOURCE_DIR, "deploy", "kubernetes", "deployment.yaml")) as f:
        dep = next(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "Deployment")
    cmd = dep["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    c = running_container()
    t0 = time.time()
    hook = podman("exec", c.name, *cmd, check=False, timeout=60)
    rc = int(podman("wait", c.name, timeout=60))
    took = time.time() - t0
    assert rc == 0, "exit %s after the preStop hook (%r):\n%s" % (rc, hook.stderr, c.logs())
    assert took < 20, took
    assert "signal 15: stopping" in c.logs(), c.logs()


@t.test
def cleans_up_what_it_made():
    left = cleanup()
    assert not left, "left behind: %s" % ", ".join(left)
    assert podman("image", "exists", "docker.io/library/debian:12-slim", check=False).returncode == 0


t.run()
