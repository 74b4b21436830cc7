"""Acknowledgement bookkeeping under stress (bridge.c, ackq.c, writer.c).

A poison message, one the store refuses every time (here a trigger in the
store refuses one notification text: it stands for any deterministic
per-publish store error), used to fail its whole batch each time it came
back: the AMQP messages batched with it were requeued with it and the HTTP
publishes batched with it got 503, forever. Now it fails alone, is requeued
and counted, and goes to the dead-letter queue at its --amqp-max-attempts-th
failure, while everything around it commits. Over HTTP the same publish is
answered 500 (sending it again will not help), and the HTTP publishes
committed beside it are answered 200.

A redelivered message without a message_id is counted in /metrics: if its
first delivery had been committed before its ack was lost, it is applied
again (docs/RABBITMQ.md).
"""
import json
import sqlite3
import tempfile
import threading

import pika

import rabbit
from faultlib import all_events, note_publish
from harness import Gateway, Runner, metric, wait_for

t = Runner()
BROKER = None

POISON = """
CREATE TRIGGER poison_ins BEFORE INSERT ON submissions WHEN NEW.notification = 'poison'
BEGIN SELECT RAISE(ABORT, 'poison refused by the store'); END;
CREATE TRIGGER poison_upd BEFORE UPDATE ON submissions WHEN NEW.notification = 'poison'
BEGIN SELECT RAISE(ABORT, 'poison refused by the store'); END;
"""


def poisoned_gateway(*args):
    """A gateway whose store refuses every publish with notification 'poison'."""
    d = tempfile.mkdtemp(prefix="sg-poison-")
    gw = Gateway("--amqp", BROKER.url, *args, workdir=d)
    gw.start()
    gw.wait_ready()
    assert gw.stop() == 0
    db = sqlite3.connect(gw.db)
    db.executescript(POISON)
    db.close()
    gw.start()
    gw.wait_ready()
    return gw


class HttpLoad(threading.Thread):
    """HTTP publishes to key while the poison cycles: each must be 200."""

    def __init__(self, gw, key, n):
        super().__init__(daemon=True)
        self.gw, self.key, self.n = gw, key, n
        self.answers = []

    def run(self):
        for i in range(self.n):
            self.answers.append(self.gw.publish(note_publish(self.key, "h-%d" % i)))


@t.test
def a_poison_message_is_dead_lettered_and_its_neighbours_commit():
    gw = poisoned_gateway("--amqp-max-attempts", "3")
    try:
        # the poison in the middle of a stream, so it shares batches
        ids = ["a-%d" % i for i in range(300)]
        c = pika.BlockingConnection(pika.URLParameters(BROKER.url))
        ch = c.channel()
        ch.confirm_delivery()
        http = HttpLoad(gw, "ph", 300)
        http.start()
        for i, pid in enumerate(ids):
            if i == 150:
                ch.basic_publish("statusgate", "submission.pa.notification",
                                 json.dumps({"type": "notification", "submission": "pa",
                                             "notification": "poison"}),
                                 pika.BasicProperties(delivery_mode=2, message_id="the-poison"))
            ch.basic_publish("statusgate", "submission.pa.notification",
                             json.dumps({"type": "notification", "submission": "pa",
                                         "notification": pid}),
                             pika.BasicProperties(delivery_mode=2, message_id=pid))
        c.close()
        http.join(120)
        assert not http.is_alive()

        wait_for(lambda: BROKER.queue_depth("statusgate.dead") == 1, "the poison dead-lettered",
                 timeout=60, gw=gw)
        wait_for(lambda: BROKER.queue_depth("statusgate.ingest") == 0, "the rest acked", gw=gw)
        bad = [a for a in http.answers if a[0] != 200]
        assert not bad, "HTTP publishes failed beside the poison: %s" % bad[:3]
        notes = [e["notification"] for e in all_events(gw, "pa")]
        assert notes == ids, "AMQP neighbours of the poison: %d applied" % len(notes)
        assert len(all_events(gw, "ph")) == 300
        # failed 3 times: requeued twice, then dead-lettered
        assert metric(gw, "statusgate_amqp_retries_total") == 2
        assert metric(gw, "statusgate_dead_lettered_total") == 1
        assert metric(gw, 'statusgate_publishes_total{source="amqp",outcome="failed"}') == 3
        assert metric(gw, "statusgate_store_up") == 1
        logs = gw.logs()
        assert "failed in the store 3 times; dead-lettered" in logs, logs[-3000:]
        # the dead letter is the poison itself
        c = pika.BlockingConnection(pika.URLParameters(BROKER.url))
        m = c.channel().basic_get("statusgate.dead", auto_ack=True)
        c.close()
        assert m[1].message_id == "the-poison", m
        assert gw.stop() == 0
    finally:
        gw.stop()


@t.test
def a_poison_publish_over_http_fails_alone():
    gw = poisoned_gateway()
    try:
        results = {}

        def one(i):
            note = "poison" if i == 10 else "n-%d" % i
            results[i] = gw.publish({"type": "notification", "submission": "hp",
                                     "notification": note})

        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        st, body = results.pop(10)
        assert st == 500 and body["error"] == "internal", (st, body)
        assert "poison refused by the store" in body["detail"], body
        assert all(st == 200 for st, _ in results.values()), results
        seqs = sorted(b["seq"] for _, b in results.values())
        assert seqs == list(range(1, 20)), seqs
        st, _ = gw.http("GET", "/readyz")
        assert st == 200
        assert gw.stop() == 0
    finally:
        gw.stop()


@t.test
def redeliveries_without_an_id_are_counted():
    gw = Gateway("--amqp", BROKER.url)
    gw.start()
    try:
        gw.wait_ready()
        assert gw.stop() == 0
        # a consumer takes two messages (one with an id, one without) and
        # goes away without acking: the broker redelivers both, marked so
        c = pika.BlockingConnection(pika.URLParameters(BROKER.url))
        ch = c.channel()
        ch.confirm_delivery()
        ch.basic_publish("statusgate", "submission.rd.notification",
                         json.dumps({"type": "notification", "submission": "rd",
                                     "notification": "no id"}))
        ch.basic_publish("statusgate", "submission.rd.notification",
                         json.dumps({"type": "notification", "submission": "rd",
                                     "notification": "with id"}),
                         pika.BasicProperties(message_id="rd-1"))
        for _ in range(2):
            m = None
            while not m or not m[0]:
                m = ch.basic_get("statusgate.ingest", auto_ack=False)
        c.close()
        wait_for(lambda: BROKER.queue_depth("statusgate.ingest") == 2, "requeued")
        gw.start()
        wait_for(lambda: len(all_events(gw, "rd")) == 2, "both applied", gw=gw)
        assert metric(gw, "statusgate_amqp_redelivered_without_id_total") == 1
        assert gw.stop() == 0
    finally:
        gw.stop()


if __name__ == "__main__":
    rabbit.run_with_broker(t, globals())
