"""Fan-out: 200 WebSocket clients on one submission all receive every event,
in order, with no gap and no duplicate; watchers of another submission get
none of them. One asyncio process holds every client.
"""
import asyncio
import json
import resource

from harness import CheckedGateway as Gateway
from harness import Runner, expect_silence, records, status

t = Runner()

CLIENTS = 200
EVENTS = 50


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= need, "the open-files limit is %d, need %d" % (soft, need)


async def publish(gw, body):
    loop = asyncio.get_running_loop()
    st, resp = await loop.run_in_executor(None, gw.publish, body)
    assert st == 200 and resp["accepted"] and not resp["duplicate"], (st, resp)
    return resp


async def collect(ws, n, timeout=120):
    out = []
    async def run():
        while len(out) < n:
            out.append(json.loads(await ws.recv()))
    await asyncio.wait_for(run(), timeout)
    return out


@t.test
async def two_hundred_clients_get_every_event_in_order():
    raise_nofile(CLIENTS * 2 + 200)
    with Gateway() as gw:
        clients = []
        try:
            for i in range(CLIENTS):
                path = "/ws/submissions/fan/" if i % 2 else "/ws/submissions/fan"
                clients.append(await gw.ws(path, open_timeout=30, ping_interval=None))
            other = await gw.ws("/ws/submissions/not-fan/", ping_interval=None)
            # an unknown submission: no initial frame for anyone
            await asyncio.gather(expect_silence(other), *(expect_silence(c) for c in clients))
            _, m = gw.http("GET", "/metrics")
            assert "statusgate_connections %d\n" % (CLIENTS + 1) in m, m

            # the notification carries the event number, so order and gaps
            # are visible; every 10th publish adds a record too
            expected = []
            animals = 0
            for i in range(1, EVENTS + 1):
                if i % 10 == 0:
                    animals += 1
                    r = await publish(gw, records("fan", "animal", ["a%d" % i]))
                else:
                    r = await publish(gw, status("fan", "Loaded", "event %d" % i))
                assert r["seq"] == i, r
                expected.append((i, animals))

            results = await asyncio.gather(*(collect(c, EVENTS) for c in clients))
            for frames in results:
                notes, counts = [], []
                last_note = ""
                for f in frames:
                    assert f["message"] == "Loaded", f
                    last_note = f["notification_message"]
                    notes.append(last_note)
                    vm = f["validation_message"]
                    counts.append(vm["animals"] if vm else 0)
                # status publishes name their number; record publishes keep
                # the last notification: together the exact sequence
                want_notes = []
                note = ""
                for i, _ in expected:
                    if i % 10:
                        note = "event %d" % i
                    want_notes.append(note)
                assert notes == want_notes, notes
                assert counts == [a for _, a in expected], counts
            # nothing more for anybody, and the other submission saw nothing
            async def silent(ws):
                try:
                    msg = await asyncio.wait_for(ws.recv(), 0.5)
                except asyncio.TimeoutError:
                    return
                raise AssertionError("unexpected frame %r" % msg)
            await asyncio.gather(silent(other), *(silent(c) for c in clients[:20]))

            _, m = gw.http("GET", "/metrics")
            assert "statusgate_drops_total 0\n" in m, m
            assert "statusgate_lagging_closes_total 0\n" in m, m
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


t.run()
