"""The store's disk full, its files unwritable, its file system read-only
(SPEC 5, 6): publishes are refused with 503 and nothing is acknowledged to
the broker (the messages stay in its queue), /readyz says 503 and why, the
WebSocket side keeps serving, and the gateway recovers by itself once the
disk can be written again: the held messages are applied exactly once.

- Disk full: the store on a 8 MiB tmpfs of its own, filled up by a filler
  file, then the filler removed.
- Files that cannot be written: chattr +i on the database and its WAL on an
  ext4 file system (write() fails with EPERM), then chattr -i.
- A read-only file system: the store on ext4 (errors=remount-ro) on a loop
  device, then an ext4 error (/sys/fs/ext4/*/trigger_fs_error) turns it
  read-only under the running gateway, as a failing disk would. That one
  does not come back without the operator (unmount, e2fsck, mount), so the
  test stops the gateway (SIGTERM: it must still exit 0), repairs, restarts,
  and checks that nothing acknowledged is missing and everything the broker
  held is applied exactly once.
Runs as root (mount, chattr, losetup).
"""
import json
import os
import subprocess
import tempfile
import time

import rabbit
from faultlib import (Ext4Disk, Tmpfs, all_events, amqp_publish, note_publish, readyz,
                      wait_ready_timed)
from harness import Gateway, Runner, metric, wait_for

t = Runner()
BROKER = None


def publish_until_refused(gw, key, prefix, limit=200):
    """HTTP publishes (each about 2 kB, so that every commit needs new space)
    until one is refused; returns (ids answered 200, the refusal's body)."""
    ok = []
    for i in range(limit):
        pid = "%s-%d" % (prefix, i)
        body = note_publish(key, pid)
        body["pad"] = "x" * 2000
        st, r = gw.publish(body)
        if st == 200:
            ok.append(pid)
            continue
        assert st == 503, (st, r)
        return ok, r
    raise AssertionError("%d publishes were all taken" % limit)


def assert_refusing(gw, key, reason_words):
    """While the store cannot be written: 503s with the reason, /readyz 503
    with it, store_up 0, reads and WebSockets still served."""
    st, r = gw.publish(note_publish(key, "refused-%f" % time.time()))
    assert st == 503 and r["error"] == "unavailable", (st, r)
    st, body = wait_for(lambda: (lambda x: x if x[0] == 503 else None)(readyz(gw)),
                        "/readyz 503", timeout=30, gw=gw)
    detail = json.dumps(body).lower()
    assert "store" in detail and any(w in detail for w in reason_words), body
    assert metric(gw, "statusgate_store_up") == 0
    assert metric(gw, "statusgate_store_commit_failures_total") >= 1
    st, _ = gw.http("GET", "/api/v1/submissions/%s" % key)
    assert st in (200, 404), st
    assert gw.http("GET", "/healthz")[0] == 200
    return body


def assert_held(gw, ids, key):
    """AMQP messages published now are neither applied nor acknowledged: the
    broker still counts them all, the gateway holds what it took."""
    amqp_publish(BROKER.url, key, ids)
    wait_for(lambda: metric(gw, "statusgate_amqp_held") >= 1, "a held delivery", gw=gw)
    time.sleep(1)   # a second for anything wrong (an ack) to happen
    assert BROKER.queue_depth("statusgate.ingest") == len(ids), \
        BROKER.queue_depth("statusgate.ingest")
    assert not [e for e in all_events(gw, key) if e["notification"] in ids]


def assert_recovered(gw, key, acked_http, amqp_ids, t_what):
    took = wait_ready_timed(gw, 60)
    print("   ready again %.1fs after %s" % (took, t_what))
    wait_for(lambda: BROKER.queue_depth("statusgate.ingest") == 0, "queue drained", gw=gw)
    wait_for(lambda: metric(gw, "statusgate_amqp_held") == 0, "nothing held", gw=gw)
    st, r = gw.publish(note_publish(key, "after-" + t_what))
    assert st == 200, (st, r)
    evs = all_events(gw, key)
    seqs = [e["seq"] for e in evs]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    notes = [e["notification"] for e in evs]
    assert len(notes) == len(set(notes)), "applied twice"
    for pid in acked_http + amqp_ids:
        assert pid in notes, pid
    assert metric(gw, "statusgate_store_up") == 1


@t.test
def a_full_disk_refuses_publishes_and_recovers_by_itself():
    fs = Tmpfs("8m")
    gw = Gateway("--amqp", BROKER.url, db=os.path.join(fs.dir, "statusgate.db"),
                 workdir=tempfile.mkdtemp(prefix="sg-full-"))
    try:
        gw.start()
        gw.wait_ready()
        fs.fill()
        acked, refusal = publish_until_refused(gw, "full", "h")
        assert "full" in refusal["detail"] or "space" in refusal["detail"], refusal
        body = assert_refusing(gw, "full", ("full", "no space"))
        print("   /readyz while full: %s" % body["detail"])
        amqp_ids = ["q-%d" % i for i in range(20)]
        assert_held(gw, amqp_ids, "full")
        fs.free()
        assert_recovered(gw, "full", acked, amqp_ids, "space returned")
        assert gw.stop() == 0
    finally:
        gw.stop()
        fs.cleanup()


@t.test
def unwritable_store_files_refuse_publishes_and_recover_by_itself():
    disk = Ext4Disk(size_mb=64)       # tmpfs ignores +i for files already open
    db = os.path.join(disk.mount(), "statusgate.db")
    gw = Gateway("--amqp", BROKER.url, db=db, workdir=tempfile.mkdtemp(prefix="sg-immut-"))
    locked = []
    try:
        gw.start()
        gw.wait_ready()
        st, _ = gw.publish(note_publish("immut", "before"))
        assert st == 200
        for f in (db, db + "-wal"):
            subprocess.run(["chattr", "+i", f], check=True)
            locked.append(f)
        st, r = gw.publish(note_publish("immut", "while-locked"))
        assert st == 503, (st, r)
        body = assert_refusing(gw, "immut", ("not permitted", "i/o"))
        print("   /readyz while unwritable: %s" % body["detail"])
        amqp_ids = ["i-%d" % i for i in range(20)]
        assert_held(gw, amqp_ids, "immut")
        for f in locked:
            subprocess.run(["chattr", "-i", f], check=True)
        locked = []
        assert_recovered(gw, "immut", ["before"], amqp_ids, "chattr -i")
        assert "while-locked" not in [e["notification"] for e in all_events(gw, "immut")]
        assert gw.stop() == 0
    finally:
        for f in locked:
            subprocess.run(["chattr", "-i", f])
        gw.stop()
        disk.cleanup()


@t.test
def a_read_only_file_system_loses_nothing():
    disk = Ext4Disk(size_mb=64, opts="errors=remount-ro")
    logdir = tempfile.mkdtemp(prefix="sg-rofs-")
    gw = None
    try:
        mnt = disk.mount()
        db = os.path.join(mnt, "statusgate.db")
        gw = Gateway("--amqp", BROKER.url, db=db, workdir=logdir)
        gw.start()
        gw.wait_ready()
        acked = []
        for i in range(20):
            st, r = gw.publish(note_publish("rofs", "h-%d" % i))
            assert st == 200, (st, r)
            acked.append("h-%d" % i)
        disk.fs_error()               # ext4 remounts itself read-only
        body = assert_refusing(gw, "rofs", ("read-only", "readonly", "i/o"))
        print("   /readyz on a read-only file system: %s" % body["detail"])
        amqp_ids = ["r-%d" % i for i in range(20)]
        assert_held(gw, amqp_ids, "rofs")
        # what an operator does: stop, repair, mount, start
        assert gw.stop() == 0, gw.logs()[-3000:]
        assert BROKER.queue_depth("statusgate.ingest") == len(amqp_ids)
        disk.unmount()
        disk.fsck()
        mnt = disk.mount()
        gw = Gateway("--amqp", BROKER.url, db=db, workdir=logdir)
        gw.start()
        assert_recovered(gw, "rofs", acked, amqp_ids, "the repair")
        assert gw.stop() == 0
        gw = None
    finally:
        if gw:
            gw.stop()
        disk.cleanup()


if __name__ == "__main__":
    rabbit.run_with_broker(t, globals())
