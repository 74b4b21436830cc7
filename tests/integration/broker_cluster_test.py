"""Quorum queues on a clustered RabbitMQ (issue 12, SPEC 7).

Three private RabbitMQ nodes on this machine form one cluster. Two gateways
(--instance qa and qb) consume it through quorum queues (--amqp-queue-type
quorum), each given every node's URL (--amqp URL,URL,URL) in another order.
Publishers send a stream of 2,000 messages with message ids and publisher
confirms; when a node is lost they send what was not confirmed again through
another node. In the middle of the stream the node that leads qa's queue,
which is also the node gateway qa is connected to, is stopped.

Shown: qa reconnects to a surviving node and both gateways end with exactly
the published set for the key (every notification once, seq 1..2000 with no
gap), although the broker redelivered what was unacknowledged and the
publishers sent some messages twice; the dead-letter queue is a quorum queue
too, and a message a gateway rejects lands there. Then the same with a
crash (SIGKILL) of the node that leads qb's queue and holds qb's connection.
"""
import json
import threading
import time

import pika

import rabbit
from harness import Gateway, Runner, all_events, free_port, metric, submission_state, wait_for

t = Runner()
CLUSTER = None
N = 2000
KEY = "qc-1"


class Publisher(threading.Thread):
    """Publishes the notifications numbered ids to key, each confirmed; a
    failure (lost connection, nack) sends the same message again through the
    next node, so a message may arrive twice but is never lost. Every
    dup_every-th message is sent twice on purpose, as a publisher that
    retried after a lost confirm would."""

    def __init__(self, key, nodes, ids, dup_every=100):
        super().__init__(daemon=True)
        self.key = key
        self.nodes = nodes          # rabbit.Broker, tried in this order
        self.ids = list(ids)
        self.dup_every = dup_every
        self.at = 0                 # index into nodes of the current connection
        self.confirmed = 0
        self.resent = 0
        self.error = None
        self.conn = None

    def connect(self):
        deadline = time.time() + 60
        while True:
            node = self.nodes[self.at % len(self.nodes)]
            try:
                self.conn = pika.BlockingConnection(pika.ConnectionParameters(
                    host="127.0.0.1", port=node.port,
                    credentials=pika.PlainCredentials("guest", "guest"),
                    connection_attempts=1, socket_timeout=5, heartbeat=10))
                ch = self.conn.channel()
                ch.confirm_delivery()
                return ch
            except (pika.exceptions.AMQPError, OSError):
                self.at += 1
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def send(self, ch, n):
        body = json.dumps({"type": "notification", "submission": self.key,
                           "notification": "n-%d" % n})
        props = pika.BasicProperties(delivery_mode=2, content_type="application/json",
                                     message_id="%s-%d" % (self.key, n))
        while True:
            try:
                ch.basic_publish("statusgate", "submission.%s.notification" % self.key,
                                 body, props, mandatory=True)
                return ch
            except (pika.exceptions.AMQPError, OSError):
                # unconfirmed: it may or may not be queued; send it again
                self.resent += 1
                try:
                    self.conn.close()
                except Exception:
                    pass
                self.at += 1
                ch = self.connect()

    def run(self):
        try:
            ch = self.connect()
            for n in self.ids:
                ch = self.send(ch, n)
                if n % self.dup_every == 0:
                    ch = self.send(ch, n)
                self.confirmed += 1
            self.conn.close()
        except Exception as e:   # the test reports it
            self.error = e


def quorum_gateway(instance, first):
    return rabbit.CheckedGateway("--amqp", CLUSTER.urls(first), "--instance", instance,
                                 "--amqp-queue-type", "quorum", "--history", str(N + 100),
                                 "--amqp-heartbeat", "5")


def events_of(gw, key):
    return all_events(gw, key)


def amqp_channel(node):
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=node.port, credentials=pika.PlainCredentials("guest", "guest")))
    ch = conn.channel()
    ch.confirm_delivery()
    return conn, ch


def stream_through_a_lost_leader(key, a, b, watched, lose):
    """Publishes N messages for key through the cluster; once a third are
    confirmed, lose(node) takes down the node that leads the queue of the
    gateway watched (a or b). Then checks both gateways hold exactly the
    published set."""
    t0 = time.time()
    q = CLUSTER.queues()
    for name in ("statusgate.ingest.qa", "statusgate.ingest.qb", "statusgate.dead"):
        assert q.get(name, {}).get("type") == "quorum", q
    assert q["statusgate.rpc"]["type"] == "classic", q
    queue = "statusgate.ingest." + ("qa" if watched is a else "qb")
    victim = CLUSTER.node(q[queue]["leader"])
    others = [n for n in CLUSTER.nodes if n is not victim and n.running()]
    reconnects0 = metric(watched, "statusgate_broker_reconnects_total")
    dead0 = q["statusgate.dead"]["messages"]

    pubs = [Publisher(key, [victim] + others, range(0, N, 2)),
            Publisher(key, others + [victim], range(1, N, 2))]
    for p in pubs:
        p.start()
    wait_for(lambda: sum(p.confirmed for p in pubs) >= N // 3 or
             any(p.error for p in pubs), "a third of the stream", timeout=120)
    t_stop = time.time()
    lose(victim)
    print("%s: lost %s (leader of %s) after %d confirmed, in %.1fs" %
          (key, victim.node, queue, sum(p.confirmed for p in pubs), time.time() - t_stop))
    for p in pubs:
        p.join(240)
        assert not p.is_alive(), "a publisher is stuck"
        assert p.error is None, "publisher failed: %r" % (p.error,)
    assert sum(p.confirmed for p in pubs) == N

    # the watched gateway was connected to the lost node: it found another
    wait_for(lambda: metric(watched, "statusgate_broker_reconnects_total") > reconnects0,
             "the gateway to reconnect", timeout=60, gw=watched)
    for gw in (a, b):
        gw.wait_ready(60)
    # a message the gateways reject goes to the (quorum) dead-letter queue
    conn, ch = amqp_channel(others[0])
    ch.basic_publish("statusgate", "submission.%s.status" % key, "not json",
                     pika.BasicProperties(delivery_mode=2, message_id=key + "-bad"),
                     mandatory=True)
    conn.close()

    for gw in (a, b):
        wait_for(lambda: (submission_state(gw, key) or {}).get("seq", 0) >= N,
                 "%d events on the gateway on %d" % (N, gw.port), timeout=180, gw=gw)
    # everything delivered and acknowledged: nothing more can come
    wait_for(lambda: (lambda qs: all(qs.get(n, {}).get("messages") == 0 for n in
                                     ("statusgate.ingest.qa", "statusgate.ingest.qb"))
                      and qs.get("statusgate.dead", {}).get("messages") == dead0 + 2)(
                          CLUSTER.queues()),
             "the ingest queues to drain and 2 more dead letters", timeout=120)
    want = {"n-%d" % n for n in range(N)}
    for gw in (a, b):
        doc = submission_state(gw, key)
        assert doc["seq"] == N, doc
        ev = events_of(gw, key)
        assert [e["seq"] for e in ev] == list(range(1, N + 1)), "seq not contiguous"
        notes = [e["notification"] for e in ev]
        assert len(notes) == len(set(notes)) == N, "a notification applied twice"
        assert set(notes) == want, "lost: %r" % sorted(want - set(notes))[:10]
        dup = metric(gw, 'statusgate_publishes_total{source="amqp",outcome="duplicate"}')
        # at least the ones sent twice on purpose were recognised
        assert dup >= N // 100, dup
        print("%s: gateway %d: %d events, %d duplicates recognised" % (key, gw.port, len(ev), dup))
    print("%s: publishers resent %d messages after failures; %.1fs" %
          (key, sum(p.resent for p in pubs), time.time() - t0))


@t.test
def a_list_of_urls_is_tried_in_turn():
    dead = "amqp://guest:guest@127.0.0.1:%d/" % free_port()   # nobody listens
    with rabbit.CheckedGateway("--amqp", " %s , %s" % (dead, CLUSTER.nodes[1].url),
                               "--instance", "ql", "--amqp-queue-type", "quorum") as gw:
        gw.wait_ready(60)
        assert "trying the next broker, 127.0.0.1:%d" % CLUSTER.nodes[1].port in gw.logs()
        assert CLUSTER.queues()["statusgate.ingest.ql"]["type"] == "quorum"
    # an unusable entry is refused at start, without echoing the password
    r = Gateway("--amqp", CLUSTER.nodes[1].url + ",http://secret@x/")
    r.start(wait=False)
    assert r.proc.wait(10) != 0
    assert "cannot parse URL number 2" in r.logs() and "secret" not in r.logs(), r.logs()
    # a gateway on classic queues cannot share the broker with quorum ones:
    # the dead-letter queue exists as quorum, the broker refuses the classic
    # declaration, and /readyz says why (the gateway keeps retrying)
    with rabbit.CheckedGateway("--amqp", CLUSTER.nodes[1].url, "--instance", "ql") as gw:
        reason = wait_for(lambda: (lambda r: r[1] if r[0] == 503 and "x-queue-type" in
                                   json.dumps(r[1]) else None)(gw.http("GET", "/readyz")),
                          "the type conflict on /readyz", timeout=60, gw=gw)
        print("classic over quorum:", reason)


@t.test
def nothing_lost_or_applied_twice_when_a_queue_leader_stops():
    a = quorum_gateway("qa", 0)   # connects to node 0 first: its queue leads there
    b = quorum_gateway("qb", 1)   # node 1
    with a, b:
        a.wait_ready(60)
        b.wait_ready(60)
        # the leader of a quorum queue is on the node that declared it
        q = CLUSTER.queues()
        assert q["statusgate.ingest.qa"]["leader"] == CLUSTER.nodes[0].node, q
        assert q["statusgate.ingest.qb"]["leader"] == CLUSTER.nodes[1].node, q
        stream_through_a_lost_leader("qc-stop", a, b, a, lambda node: node.stop())


@t.test
def nothing_lost_or_applied_twice_when_a_queue_leader_crashes():
    # the node stopped above comes back and rejoins; qb's leader then crashes
    CLUSTER.nodes[0].start()
    wait_for(lambda: len(CLUSTER.running_nodes()) == 3, "three running nodes", timeout=120)
    a = quorum_gateway("qa", 2)
    b = quorum_gateway("qb", 1)
    with a, b:
        a.wait_ready(60)
        b.wait_ready(60)
        stream_through_a_lost_leader("qc-crash", a, b, b, lambda node: node.kill())


if __name__ == "__main__":
    rabbit.run_with_broker(t, globals(), cluster=3)
