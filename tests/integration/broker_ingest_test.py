"""The RabbitMQ bridge against a real broker: ingest, dead letters, RPC,
exchange types and `statusgate publish`.

One private RabbitMQ node (rabbit.Broker) serves the whole file; each test
starts its own gateway with --amqp and, where it matters, its own exchange
and queue names. Messages are published with pika (and once with amqp-tools'
amqp-publish) and observed where a user would: on a WebSocket, through the
REST API, in the dead-letter queue, on an RPC reply queue.
"""
import json
import subprocess
import time
import uuid

import pika

import rabbit
from harness import BIN, Runner, expect_silence, metric, recv_json, records, status, wait_for
from harness import submission_state as state

t = Runner()
BROKER = None


def conn():
    return pika.BlockingConnection(pika.URLParameters(BROKER.url))


def pub(ch, body, rk, exchange="statusgate", message_id=None):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    ch.basic_publish(exchange, rk, body, pika.BasicProperties(
        delivery_mode=2, content_type="application/json", message_id=message_id))


def gateway(*args, **kw):
    return rabbit.CheckedGateway("--amqp", kw.pop("url", BROKER.url), *args, **kw)


def seq_is(gw, key, n):
    return lambda: (state(gw, key) or {}).get("seq") == n




@t.test
async def pika_publish_reaches_a_legacy_websocket():
    # trailing slash in the URL: still the default vhost "/"
    with gateway(url=BROKER.url + "/") as gw:
        gw.wait_ready()
        async with gw.ws("/ws/submissions/42/") as ws:
            await expect_silence(ws)   # unknown: no initial frame
            c = conn()
            pub(c.channel(), status("42", "loaded", "Data loaded"), "submission.42.status")
            assert await recv_json(ws, 15) == {"message": "Loaded",
                                               "notification_message": "Data loaded",
                                               "validation_message": ""}
            # the key may come from the routing key alone
            pub(c.channel(), {"type": "records", "records": [{"kind": "animal", "name": "a1"},
                                                             {"kind": "sample", "name": "s1"}]},
                "submission.42.records")
            assert await recv_json(ws, 15) == {
                "message": "Loaded", "notification_message": "Data loaded",
                "validation_message": {"animals": 1, "samples": 1, "animal_unkn": 1,
                                       "sample_unkn": 1, "animal_issues": 0,
                                       "sample_issues": 0}}
            c.close()
            await expect_silence(ws)
        wait_for(lambda: BROKER.queue_depth("statusgate.ingest") == 0, "acks")
        assert metric(gw, 'statusgate_publishes_total{source="amqp",outcome="accepted"}') == 2


@t.test
async def amqp_tools_publish_reaches_a_websocket():
    with gateway() as gw:
        gw.wait_ready()
        async with gw.ws("/ws/submissions/tools-1") as ws:
            await expect_silence(ws)   # unknown: no initial frame
            body = json.dumps(status("tools-1", "submitted", "sent by amqp-publish"))
            subprocess.run(["amqp-publish", "--url", BROKER.url, "-e", "statusgate",
                            "-r", "submission.tools-1.status", "-p", "-C",
                            "application/json", "-b", body], check=True, timeout=30)
            assert await recv_json(ws, 15) == {"message": "Submitted",
                                               "notification_message": "sent by amqp-publish",
                                               "validation_message": ""}


@t.test
def every_invalid_kind_is_dead_lettered_with_its_reason():
    c = conn()
    ch = c.channel()
    with gateway("--max-publish", "1024") as gw:
        gw.wait_ready()
        ch.queue_purge("statusgate.dead")
        bad = [
            ("not-json", b"this is not json {", "submission.dl.status"),
            ("unknown-type", {"type": "explode", "submission": "dl"}, "submission.dl.status"),
            ("unknown-status", status("dl", "Finished"), "submission.dl.status"),
            ("bad-key", status("no spaces allowed", "Loaded"), "submission.x.status"),
            ("too-large", status("dl", "Loaded", "x" * 2000), "submission.dl.status"),
            ("key-mismatch", status("dl", "Loaded"), "submission.other.status"),
        ]
        for mid, body, rk in bad:
            pub(ch, body, rk, message_id=mid)
        # the gateway keeps going: a valid one after them is applied
        pub(ch, status("dl", "Ready", "fine"), "submission.dl.status", message_id="good")
        wait_for(seq_is(gw, "dl", 1), "the valid publish", gw=gw)
        got = {}
        deadline = time.time() + 30
        while len(got) < len(bad) and time.time() < deadline:
            m, props, body = ch.basic_get("statusgate.dead", auto_ack=True)
            if m is None:
                time.sleep(0.1)
                continue
            got[props.message_id] = (body, props.headers["x-death"][0]["reason"])
        assert sorted(got) == sorted(b[0] for b in bad), got
        for mid, body, rk in bad:
            want = body if isinstance(body, bytes) else json.dumps(body).encode()
            assert got[mid] == (want, "rejected"), (mid, got[mid])
        assert state(gw, "dl")["status"] == "Ready"
        assert metric(gw, "statusgate_dead_lettered_total") == len(bad)
        assert metric(gw, 'statusgate_publishes_total{source="amqp",outcome="invalid"}') == len(bad)
        logs = gw.logs()
        assert logs.count("dead-lettered") == len(bad), logs
        for reason in ("bad_json", "too_large", "invalid"):
            assert reason in logs, (reason, logs)
    c.close()


@t.test
def the_same_message_id_twice_has_one_effect():
    c = conn()
    ch = c.channel()
    with gateway() as gw:
        gw.wait_ready()
        pub(ch, status("dup", "Loaded", "first"), "submission.dup.status", message_id="m-1")
        pub(ch, status("dup", "Error", "second"), "submission.dup.status", message_id="m-1")
        # an id in the body works the same way
        pub(ch, status("dup", "Ready", "third", id="b-1"), "submission.dup.status")
        pub(ch, status("dup", "Error", "fourth", id="b-1"), "submission.dup.status")
        pub(ch, status("dup", "Completed", "last"), "submission.dup.status", message_id="m-2")
        wait_for(seq_is(gw, "dup", 3), "three events", gw=gw)
        wait_for(lambda: BROKER.queue_depth("statusgate.ingest") == 0, "acks")
        s = state(gw, "dup")
        assert (s["seq"], s["status"], s["notification"]) == (3, "Completed", "last"), s
        assert metric(gw, 'statusgate_publishes_total{source="amqp",outcome="duplicate"}') == 2
    c.close()


def rpc(ch, reply_q, request, corr=None):
    corr = corr or uuid.uuid4().hex
    ch.basic_publish("", "statusgate.rpc", json.dumps(request) if not isinstance(request, bytes)
                     else request,
                     pika.BasicProperties(reply_to=reply_q, correlation_id=corr))
    deadline = time.time() + 15
    while time.time() < deadline:
        m, props, body = ch.basic_get(reply_q, auto_ack=True)
        if m is not None:
            assert props.correlation_id == corr, (props.correlation_id, corr)
            assert props.content_type == "application/json"
            return json.loads(body)
        time.sleep(0.05)
    raise AssertionError("no RPC reply to %r" % (request,))


@t.test
async def rpc_get_submission_and_presence():
    c = conn()
    ch = c.channel()
    reply_q = ch.queue_declare("", exclusive=True).method.queue
    with gateway() as gw:
        gw.wait_ready()
        pub(ch, status("rpc1", "Ready", "all good"), "submission.rpc1.status")
        wait_for(seq_is(gw, "rpc1", 1), "the publish", gw=gw)
        r = rpc(ch, reply_q, {"method": "get_submission", "submission": "rpc1"})
        assert (r["submission"], r["status"], r["notification"], r["seq"], r["exists"]) == \
            ("rpc1", "Ready", "all good", 1, True), r
        assert r["epoch"] == state(gw, "rpc1")["epoch"]
        r = rpc(ch, reply_q, {"method": "get_submission", "submission": "never"})
        assert r["exists"] is False, r

        assert rpc(ch, reply_q, {"method": "presence", "submission": "rpc1"}) == \
            {"submission": "rpc1", "presence": 0}
        async with gw.ws("/ws/submissions/rpc1/") as a, gw.ws("/ws/submissions/rpc1") as b:
            await recv_json(a)
            await recv_json(b)
            r = rpc(ch, reply_q, {"method": "presence", "submission": "rpc1"})
            assert r == {"submission": "rpc1", "presence": 2}, r
        wait_for(lambda: rpc(ch, reply_q, {"method": "presence", "submission": "rpc1"})
                 ["presence"] == 0, "browsers gone")

        for bad in (b"nope", {"method": "drop_tables", "submission": "rpc1"},
                    {"method": "presence"}, {"method": "presence", "submission": "a b"}):
            r = rpc(ch, reply_q, bad)
            assert r["error"] == "bad_request" and r["detail"], r
        # still serving
        assert rpc(ch, reply_q, {"method": "presence", "submission": "x"})["presence"] == 0
    c.close()


@t.test
def direct_and_fanout_exchanges():
    c = conn()
    ch = c.channel()
    common = ("--amqp-rpc-queue", "rpc.other", "--amqp-dead-letter", "dead.other")
    with gateway("--amqp-exchange", "sg.direct", "--amqp-exchange-type", "direct",
                 "--amqp-queue", "q.direct", "--amqp-binding-keys", "jobs.a, jobs.b",
                 *common) as gd, \
            gateway("--amqp-exchange", "sg.fanout", "--amqp-exchange-type", "fanout",
                    "--amqp-queue", "q.fanout", *common) as gf:
        gd.wait_ready()
        gf.wait_ready()
        pub(ch, status("d1", "Loaded"), "jobs.a", exchange="sg.direct")
        pub(ch, status("d1", "Ready"), "jobs.b", exchange="sg.direct")
        pub(ch, status("d1", "Error"), "jobs.c", exchange="sg.direct")   # no binding
        pub(ch, status("f1", "Submitted"), "anything.at.all", exchange="sg.fanout")
        pub(ch, status("f1", "Completed"), "", exchange="sg.fanout")
        wait_for(seq_is(gd, "d1", 2), "direct deliveries", gw=gd)
        wait_for(seq_is(gf, "f1", 2), "fanout deliveries", gw=gf)
        time.sleep(0.5)
        assert state(gd, "d1")["status"] == "Ready" and state(gd, "d1")["seq"] == 2
        assert state(gf, "f1")["status"] == "Completed"
        assert state(gd, "f1") is None and state(gf, "d1") is None
    c.close()


def cli(*args, stdin=None):
    r = subprocess.run([BIN, "publish"] + list(args), input=stdin, capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


@t.test
def statusgate_publish_over_amqp_and_http():
    with gateway() as gw:
        gw.wait_ready()
        rc, out, err = cli("--amqp", BROKER.url, "--submission", "cli1", "--status", "Loaded",
                           "--notification", "via amqp", "--id", "cli-1")
        assert rc == 0, (rc, out, err)
        wait_for(seq_is(gw, "cli1", 1), "the AMQP publish", gw=gw)
        # same id again: confirmed by the broker, no second effect
        rc, out, err = cli("--amqp", BROKER.url, "--submission", "cli1", "--status", "Error",
                           "--id", "cli-1")
        assert rc == 0, (rc, out, err)
        wait_for(lambda: metric(gw, 'statusgate_publishes_total{source="amqp",outcome="duplicate"}')
                 == 1, "the duplicate")
        assert state(gw, "cli1")["status"] == "Loaded"

        # a document on stdin
        rc, out, err = cli("--amqp", BROKER.url,
                           stdin=json.dumps(records("cli1", "animal", ["a1", "a2"])))
        assert rc == 0, (rc, out, err)
        wait_for(seq_is(gw, "cli1", 2), "the stdin publish", gw=gw)

        # the broker did not take it: missing exchange, unroutable key
        rc, out, err = cli("--amqp", BROKER.url, "--exchange", "no.such.exchange",
                           "--submission", "cli1", "--status", "Ready")
        assert rc == 1 and "404" in err, (rc, out, err)
        rc, out, err = cli("--amqp", BROKER.url, "--routing-key", "nowhere.at.all",
                           "--submission", "cli1", "--status", "Ready")
        assert rc == 1 and "unroutable" in err, (rc, out, err)
        # nothing reached the broker: connection refused
        rc, out, err = cli("--amqp", "amqp://guest:guest@127.0.0.1:1", "--submission", "x",
                           "--status", "Ready", "--timeout", "5")
        assert rc == 1, (rc, out, err)

        # HTTP
        rc, out, err = cli("--http", gw.base, "--submission", "cli2", "--status", "Ready",
                           "--notification", "via http")
        assert rc == 0, (rc, out, err)
        assert json.loads(out)["accepted"] is True, out
        assert state(gw, "cli2")["notification"] == "via http"
        rc, out, err = cli("--http", gw.base, "--json",
                           json.dumps(status("cli2", "not-a-status")))
        assert rc == 1 and json.loads(out)["error"], (rc, out, err)
        rc, out, err = cli("--http", "https://127.0.0.1:1", "--submission", "x", "--status", "Ready")
        assert rc == 2 and "https" in err, (rc, out, err)
        rc, out, err = cli("--json", "{not json")
        assert rc == 2, (rc, out, err)
        rc, out, err = cli("--no-such-flag")
        assert rc == 2, (rc, out, err)
        assert state(gw, "cli2")["seq"] == 1


if __name__ == "__main__":
    rabbit.run_with_broker(t, globals())
