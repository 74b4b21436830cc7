"""Fault injection for statusgate's fault tests (run as root): disks that
lose power, fill up or turn read-only, a network link that can be cut, and
the publishers and subscribers that check what survived.

Everything here is real: a loop-mounted ext4 file system whose page cache is
thrown away at a "power cut" (EXT4_IOC_SHUTDOWN without flushing the journal,
as xfstests' godown does), a small tmpfs that fills up, a network namespace
joined to ours by a veth pair whose link goes down. Each object removes what
it made in cleanup(), which the tests call in finally blocks, so a failing
test leaves no mount, loop device or namespace behind.
"""
import asyncio
import fcntl
import http.client
import json
import os
import random
import shutil
import string
import struct
import subprocess
import tempfile
import threading
import time

import harness


def _run(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


def _suffix():
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))


def _mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


def _unmount(path):
    for _ in range(50):
        if not _mounted(path):
            return
        if _run("umount", path, check=False).returncode == 0:
            return
        time.sleep(0.1)
    _run("umount", "-l", path, check=False)


# ---- disks ----

EXT4_IOC_SHUTDOWN = 0x8004587d      # _IOR('X', 125, __u32)
EXT4_GOING_FLAGS_NOLOGFLUSH = 2      # drop dirty pages and the running journal


class Ext4Disk:
    """An ext4 file system on a loop device over an image file in /dev/shm.

    power_cut() is a power loss as the kernel sees it: the file system is shut
    down without writing back dirty pages or committing the journal, so what
    survives the next mount is exactly what reached the "disk" (the loop
    device) before: what was fsynced, and whatever the kernel happened to
    write back on its own. Mounted with commit=600 so that the journal is not
    committed on a timer during a test; dirty data is written back on its own
    only after vm.dirty_expire_centisecs (30 s by default) or under memory
    pressure, so writes of the last seconds are really lost unless fsynced.

    fs_error() makes ext4 hit an error with errors=remount-ro: the file
    system turns read-only under the running process, as after a disk fault.
    """

    def __init__(self, size_mb=128, opts="commit=600"):
        self.dir = tempfile.mkdtemp(prefix="sg-ext4-")
        self.image = os.path.join("/dev/shm", "sg-ext4-%s.img" % _suffix())
        self.mnt = os.path.join(self.dir, "mnt")
        os.makedirs(self.mnt)
        self.opts = opts
        self.loop = None
        with open(self.image, "wb") as f:
            f.truncate(size_mb << 20)
        _run("mkfs.ext4", "-q", "-F", self.image)
        self.loop = _run("losetup", "-f", "--show", self.image).stdout.strip()

    def mount(self, opts=None):
        _run("mount", "-t", "ext4", "-o", opts or self.opts, self.loop, self.mnt)
        return self.mnt

    def unmount(self):
        _unmount(self.mnt)

    def power_cut(self):
        fd = os.open(self.mnt, os.O_RDONLY)
        try:
            fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, struct.pack("I", EXT4_GOING_FLAGS_NOLOGFLUSH))
        finally:
            os.close(fd)

    def fs_error(self):
        """ext4 reports an error; mounted with errors=remount-ro it turns read-only"""
        with open("/sys/fs/ext4/%s/trigger_fs_error" % os.path.basename(self.loop), "w") as f:
            f.write("statusgate fault test\n")

    def fsck(self):
        r = _run("e2fsck", "-fy", self.loop, check=False)
        if r.returncode not in (0, 1):   # 1: errors corrected
            raise RuntimeError("e2fsck: exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))

    def cleanup(self):
        self.unmount()
        if self.loop:
            _run("losetup", "-d", self.loop, check=False)
            self.loop = None
        if os.path.exists(self.image):
            os.unlink(self.image)
        shutil.rmtree(self.dir, ignore_errors=True)


class Tmpfs:
    """A small tmpfs of its own; fill() takes all the space that is left."""

    def __init__(self, size="4m"):
        self.dir = tempfile.mkdtemp(prefix="sg-tmpfs-")
        self.filler = os.path.join(self.dir, "filler")
        _run("mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", self.dir)

    def fill(self):
        """Writes a filler file until the file system is full."""
        chunk = b"\0" * 65536
        with open(self.filler, "ab") as f:
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError:
                pass
        # the last partial blocks
        with open(self.filler, "ab", buffering=0) as f:
            for n in (4096, 512, 1):
                try:
                    while True:
                        f.write(b"\0" * n)
                except OSError:
                    pass

    def free(self, keep=0):
        """Gives the space back (all of it, or all but keep bytes of the filler)."""
        if keep:
            with open(self.filler, "r+b") as f:
                f.truncate(keep)
        elif os.path.exists(self.filler):
            os.unlink(self.filler)

    def cleanup(self):
        _unmount(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- network ----

class NetNS:
    """A network namespace joined to ours by a veth pair:
    host side HOST_IP/30 on `host_if`, namespace side NS_IP/30 on eth0.
    Two kinds of partition, undone by heal():
    - cut("drop"): nftables inside the namespace drops every packet on eth0,
      both ways: packets vanish, no RST, no ICMP; open connections hang
      until a heartbeat or timeout notices, new ones time out;
    - cut("down"): the host side of the link goes down: new connections
      fail at once (no route), open ones hang.
    The addresses are a random /30 in 10.213.0.0/16: only these two ends,
    both on this machine, ever use them. cleanup() ends what still runs in
    the namespace (a broker's epmd) and removes it."""

    def __init__(self):
        sfx = _suffix()
        self.name = "sg-%s" % sfx
        self.host_if = "sgh%s" % sfx
        n = random.randrange(1, 16383)
        base = (10 << 24) | (213 << 16) | (n << 2)
        self.host_ip = "%d.%d.%d.%d" % (base >> 24, (base >> 16) & 255, (base >> 8) & 255,
                                        (base & 255) + 1)
        self.ns_ip = "%d.%d.%d.%d" % (base >> 24, (base >> 16) & 255, (base >> 8) & 255,
                                      (base & 255) + 2)
        self.created = False
        _run("ip", "netns", "add", self.name)
        self.created = True
        _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", "eth0",
             "netns", self.name)
        _run("ip", "addr", "add", self.host_ip + "/30", "dev", self.host_if)
        _run("ip", "link", "set", self.host_if, "up")
        self.exec("ip", "addr", "add", self.ns_ip + "/30", "dev", "eth0")
        self.exec("ip", "link", "set", "eth0", "up")
        self.exec("ip", "link", "set", "lo", "up")

    def prefix(self):
        """argv prefix that runs a command inside the namespace"""
        return ["ip", "netns", "exec", self.name]

    def exec(self, *cmd):
        return _run(*(self.prefix() + list(cmd)))

    def cut(self, how="drop"):
        if how == "down":
            _run("ip", "link", "set", self.host_if, "down")
            self.cuts = "down"
            return
        self.exec("nft", "add", "table", "inet", "sgpart")
        self.exec("nft", "add chain inet sgpart in { type filter hook input priority 0; }")
        self.exec("nft", "add chain inet sgpart out { type filter hook output priority 0; }")
        self.exec("nft", "add rule inet sgpart in iifname eth0 drop")
        self.exec("nft", "add rule inet sgpart out oifname eth0 drop")
        self.cuts = "drop"

    def heal(self):
        if getattr(self, "cuts", None) == "down":
            _run("ip", "link", "set", self.host_if, "up")
        elif getattr(self, "cuts", None) == "drop":
            self.exec("nft", "delete", "table", "inet", "sgpart")
        self.cuts = None

    def cleanup(self):
        if self.created:
            # what we started in there and left running (epmd): by pid
            r = _run("ip", "netns", "pids", self.name, check=False)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            _run("ip", "link", "del", self.host_if, check=False)
            # processes still inside would keep it: the tests stop theirs first
            _run("ip", "netns", "del", self.name, check=False)
            self.created = False


# ---- publishers and subscribers ----

def note_publish(key, pid):
    """A notification publish whose text is its own id, so that an event
    names the publish that made it."""
    return {"type": "notification", "submission": key, "notification": pid, "id": pid}


class HttpStream(threading.Thread):
    """Publishes ids prefix-0 .. prefix-(n-1) to submission key over HTTP, in
    order, one at a time; a publish that gets no 2xx (the gateway is down,
    or answered 503) is sent again, with the same id, until it is taken.
    acked[id] = (epoch, seq or None for a duplicate) of the answer."""

    def __init__(self, gw, key, prefix, n, pause=0.0):
        super().__init__(daemon=True)
        self.gw, self.key, self.prefix, self.n, self.pause = gw, key, prefix, n, pause
        self.acked = {}
        self.order = []           # ids in the order they were acknowledged
        self.retries = 0
        self.refused = {}         # status -> count of non-2xx answers
        self.error = None
        self.stop_flag = threading.Event()

    def run(self):
        try:
            for i in range(self.n):
                pid = "%s-%d" % (self.prefix, i)
                while not self.stop_flag.is_set():
                    try:
                        st, body = self.gw.publish(note_publish(self.key, pid))
                    except (OSError, http.client.HTTPException):
                        st, body = None, None   # the gateway went away
                    if st == 200:
                        self.acked[pid] = (body.get("epoch"), body.get("seq"))
                        self.order.append(pid)
                        break
                    if st is not None:
                        self.refused[st] = self.refused.get(st, 0) + 1
                        assert st == 503, (st, body)
                    self.retries += 1
                    time.sleep(0.02)
                if self.stop_flag.is_set():
                    return
                if self.pause:
                    time.sleep(self.pause)
        except Exception as e:
            self.error = e

    def stop(self):
        self.stop_flag.set()
        self.join(60)


def all_events(gw, key):
    """Every stored event of key, oldest first, read page by page with since
    (whatever page size the server uses)."""
    out, since = [], 0
    while True:
        st, body = gw.http("GET", "/api/v1/submissions/%s/events?since=%d" % (key, since))
        if st == 404:
            return out
        assert st == 200, (st, body)
        assert not body.get("truncated"), "events were pruned: raise --history for the test"
        evs = body["events"]
        if not evs:
            return out
        out.extend(evs)
        since = evs[-1]["seq"]


def check_exactly_once(events, ids):
    """events of one submission: seq 1..n without a gap, each id of ids
    exactly once and nothing else. Returns {id: seq}."""
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "seq not contiguous: %s" % _gaps(seqs)
    seen = {}
    for e in events:
        pid = e["notification"]
        assert pid not in seen, "%s applied twice (seq %d and %d)" % (pid, seen[pid], e["seq"])
        seen[pid] = e["seq"]
    missing = set(ids) - set(seen)
    extra = set(seen) - set(ids)
    assert not missing, "%d acknowledged publishes missing, e.g. %s" % (
        len(missing), sorted(missing)[:5])
    assert not extra, "unexpected events: %s" % sorted(extra)[:5]
    return seen


def _gaps(seqs):
    bad = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    return "first %r, %d breaks, e.g. %r" % (seqs[:1], len(bad), bad[:5])


class Resumer(threading.Thread):
    """A /ws client that watches keys and, whenever its connection drops
    (the gateway was killed), reconnects and resumes each key with since =
    the last (epoch, seq) it saw. Records every event it gets per key, so the
    test can check it saw each event exactly once, without a gap. A snapshot
    instead of a replay (the store no longer holds what it missed) is
    counted in snapshots[key]."""

    def __init__(self, gw, keys):
        super().__init__(daemon=True)
        self.gw, self.keys = gw, list(keys)
        self.events = {k: [] for k in self.keys}     # (epoch, seq, notification)
        self.last = {k: None for k in self.keys}     # (epoch, seq)
        self.snapshots = {k: 0 for k in self.keys}
        self.rollbacks = []                          # (key, last seen, snapshot seq)
        self.connects = 0
        self.error = None
        self.stop_flag = threading.Event()

    def run(self):
        try:
            asyncio.run(self._main())
        except Exception as e:
            self.error = e

    async def _main(self):
        while not self.stop_flag.is_set():
            try:
                async with self.gw.ws("/ws", open_timeout=2, ping_interval=1,
                                      ping_timeout=2) as ws:
                    self.connects += 1
                    for i, k in enumerate(self.keys):
                        cmd = {"op": "subscribe", "id": i + 1, "submission": k}
                        if self.last[k]:
                            cmd["since"] = {"epoch": self.last[k][0], "seq": self.last[k][1]}
                        await ws.send(json.dumps(cmd))
                    while not self.stop_flag.is_set():
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 0.2)
                        except asyncio.TimeoutError:
                            continue
                        self._frame(json.loads(raw))
            except (OSError, asyncio.TimeoutError, harness.websockets.exceptions.WebSocketException):
                await asyncio.sleep(0.05)

    def _frame(self, m):
        op, k = m.get("op"), m.get("submission")
        if op == "snapshot":
            seq, last = m.get("seq") or 0, self.last[k]
            if last and last[0] == m["epoch"] and seq < last[1]:
                # the store lost events this client had seen
                self.rollbacks.append((k, last, seq))
            elif seq and last != (m["epoch"], seq):
                self.snapshots[k] += 1
            if seq:
                self.last[k] = (m["epoch"], seq)
        elif op == "event":
            self.events[k].append((m["epoch"], m["seq"], m["notification"]))
            self.last[k] = (m["epoch"], m["seq"])
        elif op == "error":
            raise AssertionError("error frame: %r" % (m,))

    def stop(self):
        self.stop_flag.set()
        self.join(30)
        assert self.error is None, self.error


def wait_ready_timed(gw, timeout):
    """Polls /readyz until 200; returns the seconds it took (printed by the
    tests, never compared with a threshold)."""
    t0 = time.time()
    harness.wait_for(lambda: _ready(gw), "/readyz 200", timeout=timeout, gw=gw)
    return time.time() - t0


def _ready(gw):
    try:
        return gw.http("GET", "/readyz", timeout=2)[0] == 200
    except OSError:
        return False


def readyz(gw):
    """(status, body) of /readyz, or (None, None) when it does not answer"""
    try:
        return gw.http("GET", "/readyz", timeout=2)
    except OSError:
        return None, None


# ---- AMQP ----

def amqp_publish(url, key, ids, exchange="statusgate"):
    """Publishes a notification publish per id to submission key, persistent,
    with message_id = id and publisher confirms; returns once the broker
    confirmed them all (raises otherwise)."""
    import pika
    c = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = c.channel()
        ch.confirm_delivery()
        for pid in ids:
            ch.basic_publish(exchange, "submission.%s.notification" % key,
                             json.dumps({"type": "notification", "submission": key,
                                         "notification": pid}),
                             pika.BasicProperties(delivery_mode=2, message_id=pid,
                                                  content_type="application/json"),
                             mandatory=True)
    finally:
        c.close()


class AmqpStream(threading.Thread):
    """Publishes ids prefix-0 .. prefix-(n-1) (notification = id, message_id
    = id) to submission key with publisher confirms, one at a time; when the
    connection breaks (the broker paused, stopped or cut off), it reconnects
    and sends the unconfirmed one again with the same id, so every id is
    confirmed by the broker in the end. confirmed lists the ids in order."""

    def __init__(self, url, key, prefix, n, pause=0.0):
        super().__init__(daemon=True)
        self.url, self.key, self.prefix, self.n, self.pause = url, key, prefix, n, pause
        self.confirmed = []
        self.reconnects = 0
        self.error = None
        self.stop_flag = threading.Event()

    def _connect(self):
        import pika
        params = pika.URLParameters(self.url + "?heartbeat=2&socket_timeout=3"
                                    "&blocked_connection_timeout=5&connection_attempts=1")
        c = pika.BlockingConnection(params)
        ch = c.channel()
        ch.confirm_delivery()
        return c, ch

    def run(self):
        import pika
        c = ch = None
        try:
            i = 0
            while i < self.n and not self.stop_flag.is_set():
                pid = "%s-%d" % (self.prefix, i)
                try:
                    if ch is None:
                        c, ch = self._connect()
                    ch.basic_publish("statusgate", "submission.%s.notification" % self.key,
                                     json.dumps({"type": "notification", "submission": self.key,
                                                 "notification": pid}),
                                     pika.BasicProperties(delivery_mode=2, message_id=pid,
                                                          content_type="application/json"),
                                     mandatory=True)
                except Exception:   # pika raises many kinds while the broker is away
                    self.reconnects += 1
                    try:
                        if c and c.is_open:
                            c.close()
                    except Exception:
                        pass
                    c = ch = None
                    time.sleep(0.2)
                    continue
                self.confirmed.append(pid)
                i += 1
                if self.pause:
                    time.sleep(self.pause)
        except Exception as e:
            self.error = e
        finally:
            try:
                if c and c.is_open:
                    c.close()
            except Exception:
                pass

    def stop(self):
        self.stop_flag.set()
        self.join(120)
