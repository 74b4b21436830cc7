"""Stopping and starting again: state survives a restart on the same store
(same epoch, seq continues), SIGTERM closes WebSockets with 1001 and exits 0,
and every publish that was answered 200 before the stop is still there.
"""
import asyncio
import os
import signal
import tempfile
import threading
import time

import websockets

from harness import CheckedGateway as Gateway
from harness import (Runner, assert_clean_exit, expect_silence, recv_json, records,
                     status, validation)

t = Runner()


def ok(gw, body):
    st, resp = gw.publish(body)
    assert st == 200 and resp["accepted"], (st, resp)
    return resp


@t.test
async def state_survives_a_restart():
    d = tempfile.mkdtemp(prefix="sg-restart-")
    db = os.path.join(d, "store.db")
    gw = Gateway(db=db, workdir=d).start()
    try:
        epoch = ok(gw, status("keep", "Loaded", "Data loaded"))["epoch"]
        ok(gw, records("keep", "animal", ["a1", "a2", "a3"]))
        ok(gw, records("keep", "sample", ["s1"]))
        ok(gw, validation("keep", [("animal", "a1", "Error", [("bad breed", "breed")]),
                                   ("sample", "s1", "Pass", [])]))
        ok(gw, status("other", "Waiting", "queued"))
        st, state = gw.http("GET", "/api/v1/submissions/keep")
        assert st == 200 and state["seq"] == 4 and state["epoch"] == epoch, state
        _, events = gw.http("GET", "/api/v1/submissions/keep/events?since=0")
        async with gw.ws("/ws/submissions/keep/") as ws:
            frame = await recv_json(ws)
        assert frame == {"message": "Loaded", "notification_message": "Data loaded",
                         "validation_message": {"animals": 3, "samples": 1, "animal_unkn": 2,
                                                "sample_unkn": 0, "animal_issues": 1,
                                                "sample_issues": 0}}, frame
    finally:
        rc = gw.stop()
    assert_clean_exit(gw, rc)

    gw2 = Gateway(db=db, workdir=d).start()
    try:
        assert gw2.http("GET", "/api/v1/submissions/keep") == (200, state)
        assert gw2.http("GET", "/api/v1/submissions/keep/events?since=0") == (200, events)
        async with gw2.ws("/ws/submissions/keep") as ws:
            assert await recv_json(ws) == frame
            await expect_silence(ws)
            r = ok(gw2, status("keep", "Ready", "after the restart"))
            assert r["epoch"] == epoch and r["seq"] == 5, r
            f = await recv_json(ws)
            assert f["message"] == "Ready" and f["notification_message"] == "after the restart", f
            assert f["validation_message"] == frame["validation_message"], f
        _, other = gw2.http("GET", "/api/v1/submissions/other")
        assert other["status"] == "Waiting" and other["seq"] == 1, other
        # a publish id seen before the restart is still a duplicate after it
    finally:
        assert_clean_exit(gw2, gw2.stop())


@t.test
def publish_ids_are_remembered_across_a_restart():
    d = tempfile.mkdtemp(prefix="sg-restart-")
    db = os.path.join(d, "store.db")
    gw = Gateway(db=db, workdir=d).start()
    try:
        r = ok(gw, status("dup", "Loaded", "once", id="job-1"))
        assert r["seq"] == 1 and r["duplicate"] is False, r
    finally:
        assert_clean_exit(gw, gw.stop())
    gw2 = Gateway(db=db, workdir=d).start()
    try:
        r = ok(gw2, status("dup", "Loaded", "once", id="job-1"))
        assert r["duplicate"] is True, r
        _, s = gw2.http("GET", "/api/v1/submissions/dup")
        assert s["seq"] == 1, s
    finally:
        assert_clean_exit(gw2, gw2.stop())


@t.test
async def sigterm_closes_websockets_with_1001_and_exits_0():
    gw = Gateway().start()
    clients = []
    try:
        for i in range(20):
            clients.append(await gw.ws("/ws/submissions/bye-%d/" % (i % 3)))
        mux = await gw.ws("/ws")
        clients.append(mux)
        for c in clients[:-1]:
            await expect_silence(c, 0.05)   # unknown submissions: no initial frame
        await mux.send('{"op":"subscribe","id":1,"submission":"bye-0"}')
        assert (await recv_json(mux))["op"] == "ack"
        assert (await recv_json(mux))["op"] == "snapshot"

        loop = asyncio.get_running_loop()
        rc_fut = loop.run_in_executor(None, gw.stop, signal.SIGTERM, 10)
        codes = []
        for c in clients:
            try:
                while True:
                    await asyncio.wait_for(c.recv(), 10)
            except websockets.exceptions.ConnectionClosed as e:
                codes.append(e.code)
        assert codes == [1001] * len(clients), codes
        rc = await rc_fut
        assert_clean_exit(gw, rc)
        assert "stopped" in gw.logs(), gw.logs()
    finally:
        for c in clients:
            await c.close()
        if gw.proc.poll() is None:
            gw.kill()


@t.test
def sigint_exits_0_too():
    gw = Gateway().start()
    ok(gw, status("int", "Loaded"))
    assert_clean_exit(gw, gw.stop(signal.SIGINT))


@t.test
def every_answered_publish_is_committed_when_stopped_under_load():
    d = tempfile.mkdtemp(prefix="sg-restart-")
    db = os.path.join(d, "store.db")
    gw = Gateway(db=db, workdir=d).start()
    accepted = {}
    lock = threading.Lock()
    stop = threading.Event()

    errors = []

    def worker(n):
        try:
            work(n)
        except Exception as e:   # reported by the main thread
            errors.append(e)

    def work(n):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                st, r = gw.publish(status("load-%d" % n, "Loaded", "n %d" % i))
            except OSError:
                return          # the gateway went away
            if st == 200:
                with lock:
                    accepted[n] = max(accepted.get(n, 0), r["seq"])
                    assert r["seq"] == i, r
            elif st != 503:
                raise AssertionError((st, r))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    deadline = time.time() + 60
    while sum(accepted.values()) < 100 and time.time() < deadline:
        time.sleep(0.01)
    rc = gw.stop()
    stop.set()
    for th in threads:
        th.join(30)
    assert_clean_exit(gw, rc)
    assert not errors, errors
    assert len(accepted) == 4, accepted

    gw2 = Gateway(db=db, workdir=d).start()
    try:
        for n, seq in accepted.items():
            _, s = gw2.http("GET", "/api/v1/submissions/load-%d" % n)
            # everything answered is there; something committed but not yet
            # answered when the socket closed may be there too
            assert s["seq"] >= seq, (n, seq, s)
            assert s["notification"] == "n %d" % s["seq"], s
    finally:
        assert_clean_exit(gw2, gw2.stop())


t.run()
