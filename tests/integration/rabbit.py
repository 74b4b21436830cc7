"""A private RabbitMQ node for one test file (or one benchmark run).

Broker(...).start() runs Debian's rabbitmq-server in the foreground as the
`rabbitmq` user with its own node name (sg<random>@localhost), its own AMQP
and distribution ports (free loopback ports), and its own mnesia, log and
HOME directories (so its own Erlang cookie) in a temp dir. It never touches
the system node or another test's node, so tests can run side by side.
stop() / start() again keep the same ports and data: that is the broker-loss
test. A node that cannot start raises (a failure, never a skip).
Broker(netns=NAME, host=IP) runs the node (and rabbitmqctl) inside a network
namespace, listening on IP there: the partition tests cut its link.

Cluster(3).start() makes a RabbitMQ cluster of such private nodes on this
one machine: the same Erlang cookie in each node's HOME, the nodes started
side by side, then each joined to the first (stop_app, join_cluster,
start_app). Every node runs its VM small (one scheduler, no busy waiting),
for a shared two-core machine.

Installs rabbitmq-server through scripts/deps.sh --test when it is missing.
"""
import json
import os
import pwd
import random
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time

import harness

RMQ_BIN = "/usr/lib/rabbitmq/bin"


def ensure_installed():
    if os.path.exists(os.path.join(RMQ_BIN, "rabbitmq-server")):
        return
    deps = os.path.join(harness.SOURCE_DIR, "scripts", "deps.sh")
    subprocess.run([deps, "--test"], check=True)
    if not os.path.exists(os.path.join(RMQ_BIN, "rabbitmq-server")):
        raise RuntimeError("rabbitmq-server is not installed and deps.sh could not install it")


def _as_rabbitmq(cmd, netns=None):
    """argv that runs cmd as the rabbitmq user (we are root in CI), inside
    network namespace netns when given."""
    if netns:
        return ["ip", "netns", "exec", netns, "runuser", "-u", "rabbitmq", "--"] + cmd
    if os.getuid() == 0:
        return ["runuser", "-u", "rabbitmq", "--"] + cmd
    if pwd.getpwuid(os.getuid()).pw_name == "rabbitmq":
        return cmd
    return ["sudo", "-E", "-u", "rabbitmq", "--"] + cmd


class Broker:
    def __init__(self, workdir=None, cookie=None, erl_args=None, netns=None, host="127.0.0.1",
                 nofile=None):
        """cookie: the Erlang cookie (nodes of one cluster share it; default:
        the VM makes one); erl_args: RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS;
        netns, host: run it in a network namespace, listening on host;
        nofile: the server's descriptor limit (runuser's PAM session sets
        the soft limit back to 1024, too few for thousands of clients)."""
        ensure_installed()
        self.erl_args = erl_args
        self.nofile = nofile
        self.netns, self.host = netns, host
        suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        self.node = "sg%s@localhost" % suffix
        self.port = harness.free_port()
        self.dist_port = harness.free_port()
        self.dir = tempfile.mkdtemp(prefix="sg-rabbit-", dir=workdir)
        for d in ("mnesia", "log", "home"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        # an empty config: the system's /etc/rabbitmq must not leak in
        self.conf = os.path.join(self.dir, "rabbitmq")
        with open(self.conf + ".conf", "w") as f:
            f.write("loopback_users = none\nlisteners.tcp.1 = %s:%d\n" % (self.host, self.port))
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        if cookie:
            path = os.path.join(self.dir, "home", ".erlang.cookie")
            with open(path, "w") as f:
                f.write(cookie)
            os.chmod(path, 0o400)
        os.chmod(self.dir, 0o755)
        if os.getuid() == 0:
            ent = pwd.getpwnam("rabbitmq")
            for root, dirs, files in os.walk(self.dir):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), ent.pw_uid, ent.pw_gid)
            os.chown(self.dir, ent.pw_uid, ent.pw_gid)
        self.proc = None
        self.log_path = os.path.join(self.dir, "server-console.log")

    @property
    def url(self):
        return "amqp://guest:guest@%s:%d" % (self.host, self.port)

    def _env(self, server):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.path.join(self.dir, "home"),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_CONFIG_FILE": self.conf,
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.dir, "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.dir, "rabbitmq-env.conf"),
        }
        if server:
            env["RABBITMQ_NODE_PORT"] = str(self.port)
            env["RABBITMQ_NODE_IP_ADDRESS"] = self.host
            env["RABBITMQ_DIST_PORT"] = str(self.dist_port)
            if self.erl_args:
                env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = self.erl_args
        return env

    def ctl(self, *args, timeout=60, check=True):
        """rabbitmqctl against this node; returns its stdout."""
        r = subprocess.run(_as_rabbitmq([os.path.join(RMQ_BIN, "rabbitmqctl"), "-n", self.node] +
                                        list(args), self.netns),
                           env=self._env(False), cwd=self.dir, capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("rabbitmqctl %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                                   r.stdout, r.stderr))
        return r.stdout

    def start(self, timeout=90):
        """Starts the node. On its first start only (a restart must keep the
        ports gateways were given), a port taken between free_port() and the
        broker's bind (another process on this machine got it first) is no
        failure of the code under test: the node gets fresh ports and tries
        again, twice at most."""
        first = not getattr(self, "_started", False)
        for attempt in range(3):
            try:
                self._start_once(timeout)
                self._started = True
                return self
            except RuntimeError as e:
                taken = "eaddrinuse" in str(e) or "could not bind" in str(e)
                if not (first and taken and attempt < 2):
                    raise
                self.port, self.dist_port = harness.free_port(), harness.free_port()
                with open(self.conf + ".conf", "w") as f:
                    f.write("loopback_users = none\nlisteners.tcp.1 = %s:%d\n" % (self.host, self.port))
                if os.getuid() == 0:
                    ent = pwd.getpwnam("rabbitmq")
                    os.chown(self.conf + ".conf", ent.pw_uid, ent.pw_gid)
                print("   (a port of RabbitMQ node %s was taken by another process; "
                      "trying again on fresh ports)" % self.node, flush=True)
        return self

    def _start_once(self, timeout):
        if self.proc and self.proc.poll() is None:
            return self
        log = open(self.log_path, "ab")
        server = [os.path.join(RMQ_BIN, "rabbitmq-server")]
        if self.nofile:
            server = ["sh", "-c", 'ulimit -n %d 2>/dev/null || ulimit -n "$(ulimit -Hn)"; '
                      'exec "$0" "$@"' % self.nofile] + server
        self.proc = subprocess.Popen(
            _as_rabbitmq(server, self.netns),
            env=self._env(True), cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        last = ""
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rabbitmq-server exited with %s:\n%s" %
                                   (self.proc.returncode, self.logs()))
            try:
                r = subprocess.run(
                    _as_rabbitmq([os.path.join(RMQ_BIN, "rabbitmqctl"), "-n", self.node,
                                  "await_startup", "--timeout", "10"], self.netns),
                    env=self._env(False), cwd=self.dir, capture_output=True, text=True,
                    timeout=30)
                if r.returncode == 0 and self._port_open():
                    return self
                last = r.stdout + r.stderr
            except subprocess.TimeoutExpired:
                last = "await_startup timed out"
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("RabbitMQ node %s did not start within %ss: %s\n%s" %
                           (self.node, timeout, last, self.logs()))

    def _port_open(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self, timeout=60):
        """Stops the node (rabbitmqctl stop, then signals); keeps its data."""
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            self.ctl("stop", timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        # the Erlang VM may leave epmd running (shared; harmless) but never beam
        deadline = time.time() + 10
        while self._port_open() and time.time() < deadline:
            time.sleep(0.2)

    def kill(self):
        """A crash: SIGKILL to the Erlang VM, no goodbye to anyone."""
        if not self.running():
            return
        _signal_node(self, 9)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        out = []
        for p in [self.log_path] + [os.path.join(self.dir, "log", n)
                                    for n in sorted(os.listdir(os.path.join(self.dir, "log")))
                                    if n.endswith(".log")]:
            try:
                with open(p, "rb") as f:
                    out.append(f.read()[-4000:].decode("utf-8", "replace"))
            except OSError:
                pass
        return "\n".join(out)

    def queue_depth(self, name):
        """messages (ready + unacked) in a queue, or None if it does not exist."""
        out = self.ctl("list_queues", "-q", "--no-table-headers", "name", "messages",
                       check=False)
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return int(parts[1])
        return None

    def running(self):
        return bool(self.proc) and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


# one scheduler, and no busy-waiting schedulers: three nodes share two cores
SMALL_VM = "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none"


class Cluster:
    """n private nodes joined into one RabbitMQ cluster on this machine."""

    def __init__(self, n=3, workdir=None):
        cookie = "".join(random.choice(string.ascii_uppercase) for _ in range(20))
        self.nodes = [Broker(workdir, cookie=cookie, erl_args=SMALL_VM) for _ in range(n)]

    def start(self, timeout=180):
        """Starts every node side by side, then joins the others to the
        first. Raises (with the nodes' logs) when that fails."""
        errors = []

        def start_one(node):
            try:
                node.start(timeout)
            except Exception as e:   # reported below, for every node
                errors.append(e)
        threads = [threading.Thread(target=start_one, args=(n,)) for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node, timeout=120)
            node.ctl("start_app", timeout=120)
            node.ctl("await_startup", "--timeout", "60", timeout=90)
        members = self.running_nodes()
        if sorted(members) != sorted(n.node for n in self.nodes):
            raise RuntimeError("cluster formed with %r, not all of %r" %
                               (members, [n.node for n in self.nodes]))
        return self

    def urls(self, first=0):
        """The nodes' AMQP URLs, comma-separated, starting at node first."""
        order = self.nodes[first:] + self.nodes[:first]
        return ",".join(n.url for n in order)

    def any_running(self):
        for n in self.nodes:
            if n.running():
                return n
        raise RuntimeError("no node of the cluster is running")

    def running_nodes(self):
        out = self.any_running().ctl("cluster_status", "--formatter", "json")
        return json.loads(out)["running_nodes"]

    def queues(self):
        """{name: {"type", "leader", "messages"}} from a running node."""
        out = self.any_running().ctl("list_queues", "-q", "--no-table-headers",
                                     "name", "type", "leader", "messages", check=False)
        res = {}
        for line in out.splitlines():
            parts = line.split("\t")   # a classic queue has no leader: ""
            if len(parts) == 4:
                res[parts[0]] = {"type": parts[1], "leader": parts[2].strip(),
                                 "messages": int(parts[3]) if parts[3].isdigit() else None}
        return res

    def node(self, name):
        for n in self.nodes:
            if n.node == name:
                return n
        raise KeyError(name)

    def logs(self):
        return "\n".join("== %s\n%s" % (n.node, n.logs()) for n in self.nodes)

    def cleanup(self):
        for n in self.nodes:
            n.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


class CheckedGateway(harness.Gateway):
    """A Gateway whose clean stop is part of the test: SIGTERM must end it
    with status 0 (under ASan that also means no leak and no error report)."""

    def __exit__(self, *exc):
        rc = self.stop()
        if exc[0] is None:
            assert rc == 0, "statusgate exited with %s:\n%s" % (rc, self.logs()[-4000:])


def _group_pids(pgid, comm_prefix):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/comm" % d) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if int(rest[2]) == pgid and comm.startswith(comm_prefix):
            pids.append(int(d))
    return pids


def _signal_node(broker, sig):
    # only the Erlang VM: stopping runuser would make it stop itself too (it
    # mirrors its child's job-control state) and it could miss our SIGCONT;
    # epmd is shared and is never in our process group anyway
    for pid in _group_pids(broker.proc.pid, "beam"):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def pause(broker):
    """SIGSTOP the node (never the shared epmd): its TCP connections stay
    open but fall silent, as with a dead peer or a cut network."""
    _signal_node(broker, 19)


def resume(broker):
    _signal_node(broker, 18)


def run_with_broker(runner, module_globals, cluster=0):
    """Starts one private node (or, with cluster=N, a cluster of N) for a
    whole test file, sets the file's BROKER (or CLUSTER) to it, runs the
    file's tests and removes the nodes. A broker that cannot start is a
    failure, never a skip."""
    broker = Cluster(cluster) if cluster else Broker()
    module_globals["CLUSTER" if cluster else "BROKER"] = broker
    try:
        broker.start()
    except Exception as e:
        print("FAIL broker_start: %s" % e)
        print("0 passed, 1 failed")
        broker.cleanup()
        sys.exit(1)
    try:
        runner.run()
    finally:
        broker.cleanup()
