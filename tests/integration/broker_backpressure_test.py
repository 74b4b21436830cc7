"""The writer's input queue is bounded in bytes (--writer-queue), and the
excess is answered the documented way: HTTP 503, AMQP consuming paused
(deliveries held unacknowledged until the writer takes them, none lost), a
legacy-socket publisher told too_many and closed with 1013.

The store is made slow on purpose: a trigger that counts a 600 x 600 cross
join on every stored event (milliseconds of CPU per publish), so that
publishes of 30 kB arrive much faster than they commit and the 64 kB queue
fills. No timing is asserted: only what is refused, what is held and that
everything taken is committed exactly once.
"""
import asyncio
import json
import sqlite3
import tempfile
import threading

import pika
import websockets

import rabbit
from faultlib import all_events
from harness import Gateway, Runner, metric, wait_for

t = Runner()
BROKER = None
PAD = "x" * 30000
BOUND = 65536

SLOW = """
CREATE TABLE burn (n INTEGER);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 600)
INSERT INTO burn SELECT x FROM c;
CREATE TRIGGER slow BEFORE INSERT ON events
BEGIN SELECT (SELECT count(*) FROM burn a, burn b); END;
"""


def slow_gateway():
    gw = Gateway("--amqp", BROKER.url, "--writer-queue", str(BOUND),
                 workdir=tempfile.mkdtemp(prefix="sg-bp-"))
    gw.start()
    gw.wait_ready()
    assert gw.stop() == 0
    db = sqlite3.connect(gw.db)
    db.executescript(SLOW)
    db.close()
    gw.start()
    gw.wait_ready()
    return gw


def big(key, note):
    return {"type": "notification", "submission": key, "notification": note, "pad": PAD}


@t.test
def http_publishes_beyond_the_bound_get_503():
    gw = slow_gateway()
    try:
        answers = {}

        def one(i):
            answers[i] = gw.publish(big("bph", "h-%d" % i))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        refused = [i for i, (st, _) in answers.items() if st == 503]
        taken = [i for i, (st, _) in answers.items() if st == 200]
        assert len(refused) + len(taken) == 40, answers
        assert refused, "the queue never filled"
        for i in refused:
            assert "write queue is full" in answers[i][1]["detail"], answers[i]
        notes = [e["notification"] for e in all_events(gw, "bph")]
        assert sorted(notes) == sorted("h-%d" % i for i in taken)
        assert metric(gw, "statusgate_writer_queue_full_total") == len(refused)
        assert metric(gw, "statusgate_writer_queue_bytes") == 0
        print("   %d of 40 refused with 503" % len(refused))
        assert gw.stop() == 0
    finally:
        gw.stop()


@t.test
def amqp_consuming_pauses_and_nothing_is_lost():
    gw = slow_gateway()
    try:
        n = 60
        c = pika.BlockingConnection(pika.URLParameters(BROKER.url))
        ch = c.channel()
        ch.confirm_delivery()
        for i in range(n):
            ch.basic_publish("statusgate", "submission.bpa.notification",
                             json.dumps(big("bpa", "a-%d" % i)),
                             pika.BasicProperties(delivery_mode=2, message_id="a-%d" % i))
        c.close()
        held_seen, queued_max = 0, 0
        while len(all_events(gw, "bpa")) < n:
            held_seen = max(held_seen, metric(gw, "statusgate_amqp_held"))
            queued_max = max(queued_max, metric(gw, "statusgate_writer_queue_bytes"))
            assert gw.proc.poll() is None
        wait_for(lambda: BROKER.queue_depth("statusgate.ingest") == 0, "all acked", gw=gw)
        notes = [e["notification"] for e in all_events(gw, "bpa")]
        assert notes == ["a-%d" % i for i in range(n)], notes[:5]
        assert held_seen >= 1, "no delivery was ever held"
        assert metric(gw, "statusgate_writer_queue_full_total") >= 1
        assert metric(gw, "statusgate_amqp_held") == 0
        # the queue never holds more than the bound (plus one publish, which
        # always fits an empty queue)
        assert queued_max <= BOUND + len(PAD) + 1000, queued_max
        print("   held up to %d deliveries, queue up to %d bytes" % (held_seen, queued_max))
        assert gw.stop() == 0
    finally:
        gw.stop()


@t.test
async def a_legacy_publisher_beyond_the_bound_is_closed_with_1013():
    gw = slow_gateway()
    try:
        async with gw.ws("/ws/submissions/bpl/") as ws:
            # the text is at most 4 kB; the unknown key makes the frame 30 kB
            frame = {"message": "Loaded", "notification_message": "legacy",
                     "validation_message": "", "pad": PAD}
            refused = None
            # one burst, then read: a peer that goes on sending after the
            # server closed gets a TCP reset, which discards what was sent
            for _ in range(6):
                await ws.send(json.dumps(frame))
            try:
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if m.get("error"):
                        refused = m
            except websockets.exceptions.ConnectionClosed:
                pass
            assert refused and refused["error"] == "too_many", refused
            await asyncio.wait_for(ws.wait_closed(), 30)
            assert ws.close_code == 1013, ws.close_code
        assert metric(gw, "statusgate_writer_queue_full_total") >= 1
        assert gw.stop() == 0
    finally:
        gw.stop()


if __name__ == "__main__":
    rabbit.run_with_broker(t, globals())
