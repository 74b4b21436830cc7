"""Nothing the broker accepted is lost, nothing is applied twice.

Against one private RabbitMQ node: 10,000 messages published while the
gateway is down are all applied when it starts; a gateway killed with
SIGKILL in the middle of a stream of 10,000 (each with a message_id) and
restarted applies every message exactly once; and when the broker itself
stops and comes back, WebSocket clients stay connected and served, /readyz
says 503 with the reason meanwhile, the bridge reconnects and /metrics
counts it.
"""
import asyncio
import json
import threading
import time

import pika

import rabbit
from harness import Gateway, Runner, expect_silence, metric, recv_json, status, wait_for
from harness import submission_state as state

t = Runner()
BROKER = None
N = 10000


def conn():
    return pika.BlockingConnection(pika.URLParameters(BROKER.url))


def record_msg(key, i):
    return json.dumps({"type": "records", "submission": key,
                       "records": [{"kind": "animal", "name": "a%d" % i}]})


def publish_stream(key, n, prefix):
    c = conn()
    ch = c.channel()
    props = [pika.BasicProperties(delivery_mode=2, content_type="application/json",
                                  message_id="%s-%d" % (prefix, i)) for i in range(n)]
    for i in range(n):
        ch.basic_publish("statusgate", "submission.%s.records" % key, record_msg(key, i),
                         props[i])
    c.close()


def publish_one(msg):
    c = conn()
    c.channel().basic_publish("statusgate", "submission.%s.%s" % (msg["submission"], msg["type"]),
                              json.dumps(msg))
    c.close()


def assert_exactly(gw, key, n):
    s = state(gw, key)
    assert s and s["seq"] == n, s
    assert s["summary"]["animal"]["all"] == n, s["summary"]
    assert s["summary"]["animal"]["unknown"] == n, s["summary"]


@t.test
def ten_thousand_published_while_the_gateway_is_down():
    gw = Gateway("--amqp", BROKER.url)
    gw.start()
    gw.wait_ready()          # declares the exchange, queue and bindings
    assert gw.stop() == 0
    publish_stream("bulk", N, "bulk")
    wait_for(lambda: BROKER.queue_depth("statusgate.ingest") == N, "%d queued" % N)
    try:
        gw.start()
        wait_for(lambda: (state(gw, "bulk") or {}).get("seq") == N, "seq %d" % N, gw=gw)
        wait_for(lambda: BROKER.queue_depth("statusgate.ingest") == 0, "all acked")
        time.sleep(1)
        assert_exactly(gw, "bulk", N)
        assert metric(gw, 'statusgate_publishes_total{source="amqp",outcome="accepted"}') == N
        assert gw.stop() == 0
    finally:
        gw.stop()


@t.test
def kill_9_in_the_middle_of_a_stream_applies_each_message_once():
    gw = Gateway("--amqp", BROKER.url)
    gw.start()
    gw.wait_ready()
    pub = threading.Thread(target=publish_stream, args=("crash", N, "crash"))
    pub.start()
    try:
        wait_for(lambda: ((state(gw, "crash") or {}).get("seq") or 0) >= N // 5,
                 "some progress", gw=gw)
        gw.kill()
        seen = None
        # what the dead gateway committed is in its store; the broker holds the rest
        gw.start()
        seen = (state(gw, "crash") or {}).get("seq")
        assert seen is None or seen < N, seen
        pub.join(120)
        assert not pub.is_alive()
        wait_for(lambda: (state(gw, "crash") or {}).get("seq") == N, "seq %d" % N, gw=gw)
        wait_for(lambda: BROKER.queue_depth("statusgate.ingest") == 0, "all acked")
        time.sleep(1)
        assert_exactly(gw, "crash", N)
        assert gw.stop() == 0
    finally:
        pub.join(120)
        gw.stop()


@t.test
def a_silent_broker_is_noticed_by_heartbeats():
    gw = Gateway("--amqp", BROKER.url, "--amqp-heartbeat", "1")
    gw.start()
    try:
        gw.wait_ready()
        t0 = time.time()
        rabbit.pause(BROKER)          # the socket stays open; nothing comes back
        try:
            body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
                gw.http("GET", "/readyz")), "readyz 503 from a silent broker", timeout=60,
                gw=gw)[1]
            assert "broker" in json.dumps(body), body
            noticed = time.time() - t0
        finally:
            rabbit.resume(BROKER)
        wait_for(lambda: gw.http("GET", "/readyz")[0] == 200, "readyz 200", timeout=90, gw=gw)
        c = conn()
        c.channel().basic_publish("statusgate", "submission.hb.status",
                                  json.dumps(status("hb", "Ready", "after the pause")))
        c.close()
        wait_for(lambda: (state(gw, "hb") or {}).get("seq") == 1, "the publish after", gw=gw)
        print("   silent broker noticed after %.1fs" % noticed)
        assert gw.stop() == 0
    finally:
        gw.stop()


@t.test
async def broker_loss_keeps_browsers_served_and_reconnects():
    gw = Gateway("--amqp", BROKER.url, "--amqp-heartbeat", "2")
    gw.start()
    try:
        gw.wait_ready()
        async with gw.ws("/ws/submissions/br/") as legacy, gw.ws("/ws") as mux:
            await expect_silence(legacy)   # unknown: no initial frame
            await mux.send(json.dumps({"op": "subscribe", "id": 1, "submission": "br"}))
            assert (await recv_json(mux))["op"] == "ack"
            assert (await recv_json(mux))["op"] == "snapshot"

            await asyncio.to_thread(publish_one, status("br", "Loaded", "before"))
            assert (await recv_json(legacy, 15))["notification_message"] == "before"
            assert (await recv_json(mux, 15))["notification"] == "before"

            # blocking steps run in a thread so the event loop keeps serving
            # the WebSockets (keepalive pings) meanwhile
            await asyncio.to_thread(BROKER.stop)
            body = (await asyncio.to_thread(wait_for, lambda: (lambda r: r if r[0] == 503 else None)(
                gw.http("GET", "/readyz")), "readyz 503", 60, gw))[1]
            assert "broker" in json.dumps(body), body
            assert metric(gw, "statusgate_broker_connected") == 0

            # the WebSocket side keeps serving: commands, and HTTP publishes
            await mux.send(json.dumps({"op": "ping", "id": 2}))
            assert await recv_json(mux) == {"op": "pong", "id": 2}
            st, r = gw.publish(status("br", "Submitted", "while the broker is down"))
            assert st == 200, (st, r)
            assert (await recv_json(legacy, 15))["message"] == "Submitted"
            assert (await recv_json(mux, 15))["status"] == "Submitted"

            await asyncio.to_thread(BROKER.start)
            await asyncio.to_thread(wait_for, lambda: gw.http("GET", "/readyz")[0] == 200,
                                    "readyz 200", 90, gw)
            await asyncio.to_thread(publish_one, status("br", "Ready", "after"))
            assert await recv_json(legacy, 15) == {"message": "Ready",
                                                   "notification_message": "after",
                                                   "validation_message": ""}
            ev = await recv_json(mux, 15)
            assert (ev["op"], ev["status"], ev["seq"]) == ("event", "Ready", 3), ev
            assert metric(gw, "statusgate_broker_reconnects_total") >= 1
            assert metric(gw, "statusgate_broker_connected") == 1
        assert "reconnecting to the broker" in gw.logs()
        assert gw.stop() == 0
    finally:
        gw.stop()


if __name__ == "__main__":
    rabbit.run_with_broker(t, globals())
