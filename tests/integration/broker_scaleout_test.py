"""Scale-out (SPEC 7): several gateways on one machine share one RabbitMQ.

Each instance consumes the exchange through its own durable queue
(statusgate.ingest.<instance>) and keeps its own store, so one publish
reaches the browsers of every instance, and any instance can serve any
submission. A browser that moves to another instance presents an epoch that
instance does not know and gets a snapshot instead of a replay.
"""
import json
import time

import pika

import rabbit
from harness import Runner, expect_silence, recv_json, status

t = Runner()
BROKER = None
INSTANCES = ("a", "b", "c")


def publish(body, rk, message_id):
    c = pika.BlockingConnection(pika.URLParameters(BROKER.url))
    try:
        ch = c.channel()
        ch.confirm_delivery()
        ch.basic_publish("statusgate", rk, json.dumps(body), pika.BasicProperties(
            delivery_mode=2, content_type="application/json", message_id=message_id),
            mandatory=True)
    finally:
        c.close()


def wait_seq(gw, key, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, body = gw.http("GET", "/api/v1/submissions/" + key)
        if st == 200 and body["seq"] == n:
            return body
        time.sleep(0.1)
    raise AssertionError("instance on %d never reached seq %d:\n%s" % (gw.port, n, gw.logs()[-2000:]))


@t.test
async def every_instance_serves_every_submission():
    gws = [rabbit.CheckedGateway("--amqp", BROKER.url, "--instance", i) for i in INSTANCES]
    try:
        for gw in gws:
            gw.start()
            gw.wait_ready()
        # one durable queue per instance, bound to the shared exchange
        for i in INSTANCES:
            assert BROKER.queue_depth("statusgate.ingest." + i) == 0
        legacy = [await gw.ws("/ws/submissions/so-1/").__aenter__() for gw in gws]
        try:
            for ws in legacy:
                await expect_silence(ws)   # unknown: no initial frame
            publish(status("so-1", "Loaded", "on every instance"), "submission.so-1.status", "so-m1")
            for ws in legacy:
                frame = await recv_json(ws, timeout=30)
                assert frame["message"] == "Loaded", frame
                assert frame["notification_message"] == "on every instance", frame
        finally:
            for ws in legacy:
                await ws.close()
        # each store applied it once, with its own epoch
        docs = [wait_seq(gw, "so-1", 1) for gw in gws]
        assert all(d["status"] == "Loaded" for d in docs)
        epochs = {d["epoch"] for d in docs}
        assert len(epochs) == len(gws), epochs

        # a /ws client of instance a moves to instance b with a's position:
        # b does not know that epoch, so it answers with a snapshot
        async with gws[0].ws("/ws") as wa:
            await wa.send(json.dumps({"op": "subscribe", "id": 1, "submission": "so-1"}))
            ack = await recv_json(wa)
            snap = await recv_json(wa)
            assert ack["op"] == "ack" and snap["op"] == "snapshot", (ack, snap)
            pos = {"epoch": ack["epoch"], "seq": ack["seq"]}
        publish(status("so-1", "Ready", "while moving"), "submission.so-1.status", "so-m2")
        for gw in gws:
            wait_seq(gw, "so-1", 2)
        async with gws[1].ws("/ws") as wb:
            await wb.send(json.dumps({"op": "subscribe", "id": 2, "submission": "so-1",
                                      "since": pos}))
            ack = await recv_json(wb)
            first = await recv_json(wb)
            assert ack["op"] == "ack" and ack["epoch"] != pos["epoch"], ack
            assert first["op"] == "snapshot" and first["status"] == "Ready", first
            assert first["seq"] == 2, first
        # and back on instance a the same position replays exactly the missed event
        async with gws[0].ws("/ws") as wa:
            await wa.send(json.dumps({"op": "subscribe", "id": 3, "submission": "so-1",
                                      "since": pos}))
            ack = await recv_json(wa)
            ev = await recv_json(wa)
            assert ack["op"] == "ack" and ack["epoch"] == pos["epoch"], ack
            assert ev["op"] == "event" and ev["seq"] == pos["seq"] + 1, ev
            assert ev["status"] == "Ready", ev
    finally:
        for gw in gws:
            gw.__exit__(None, None, None)


@t.test
def an_instance_that_was_down_catches_up_from_its_own_queue():
    a = rabbit.CheckedGateway("--amqp", BROKER.url, "--instance", "late-a")
    b = rabbit.CheckedGateway("--amqp", BROKER.url, "--instance", "late-b")
    with a:
        a.wait_ready()
        b.start()
        b.wait_ready()          # declares statusgate.ingest.late-b
        b.stop()
        for n in range(1, 51):
            publish(status("so-2", "Loaded", "step %d" % n), "submission.so-2.status", "so2-%d" % n)
        wait_seq(a, "so-2", 50)
        assert BROKER.queue_depth("statusgate.ingest.late-b") == 50
        with b:                 # starts again on its own store and queue
            b.wait_ready()
            doc = wait_seq(b, "so-2", 50)
            assert doc["notification"] == "step 50", doc
        assert BROKER.queue_depth("statusgate.ingest.late-b") == 0


if __name__ == "__main__":
    rabbit.run_with_broker(t, globals())
