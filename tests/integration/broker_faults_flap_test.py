"""The broker flapping for a minute, and cut off by network partitions
(SPEC 3.2: "loss of the broker never stops the WebSocket side ... messages
published meanwhile are delivered after it is back, none lost").

Flapping: the private node's Erlang VM is paused (SIGSTOP: its sockets stay
open and fall silent, as with a hung broker or a dead peer) for a few
seconds, resumed, and paused again as soon as the gateway is ready, for a
minute; once in the middle it is stopped and started for real.
Partition: the node runs in a network namespace of its own, reached over a
veth pair; nftables in there drops every packet on its link (no RST, no
ICMP), and then the link is taken down, a few seconds each time.

Meanwhile an AMQP publisher with publisher confirms (it reconnects and sends
an unconfirmed message again, same message_id), an HTTP publisher and two
/ws subscribers that resume with since keep going. At the end every
confirmed message and every answered HTTP publish is stored exactly once,
the subscribers saw every event once and in order (nobody got stuck), and
/readyz was back to 200 after each return. The time to ready is printed for
each return, never compared with a threshold.
"""
import json
import time

import rabbit
from faultlib import (AmqpStream, HttpStream, NetNS, Resumer, all_events, check_exactly_once,
                      readyz, wait_ready_timed)
from harness import Gateway, Runner, wait_for

t = Runner()
BROKER = None


def not_ready_broker(gw):
    st, body = readyz(gw)
    return st == 503 and "broker" in json.dumps(body)


def run_traffic(gw, url, tag, disturb):
    """Starts the publishers and subscribers, runs disturb(), lets the
    streams finish and checks every publish once everywhere."""
    amqp = AmqpStream(url, tag + "a", tag + "a", 100000, pause=0.005)
    http = HttpStream(gw, tag + "h", tag + "h", 100000, pause=0.005)
    subs = [Resumer(gw, [amqp.key, http.key]) for _ in range(2)]
    try:
        for s in subs:
            s.start()
        wait_for(lambda: all(s.connects for s in subs), "subscribers connected", gw=gw)
        amqp.start()
        http.start()
        wait_for(lambda: len(amqp.confirmed) > 20 and len(http.acked) > 20, "traffic", gw=gw)
        disturb()
        # a little more traffic after the last return, then stop the streams
        n_a, n_h = len(amqp.confirmed), len(http.acked)
        wait_for(lambda: len(amqp.confirmed) > n_a + 20 and len(http.acked) > n_h + 20,
                 "traffic after the last return", timeout=120, gw=gw)
        amqp.stop()
        http.stop()
        assert amqp.error is None and http.error is None, (amqp.error, http.error)
        # everything the broker confirmed gets applied, once
        wait_for(lambda: len(all_events(gw, amqp.key)) >= len(amqp.confirmed),
                 "confirmed messages applied", timeout=120, gw=gw)
        stored = {amqp.key: check_exactly_once(all_events(gw, amqp.key), amqp.confirmed),
                  http.key: check_exactly_once(all_events(gw, http.key), list(http.acked))}
        for s in subs:
            wait_for(lambda: all(len(s.events[k]) == len(stored[k]) for k in stored),
                     "subscriber caught up", timeout=60, gw=gw)
            s.stop()
            assert not s.rollbacks and not any(s.snapshots.values()), (s.rollbacks, s.snapshots)
            for k in stored:
                assert [e[1] for e in s.events[k]] == list(range(1, len(stored[k]) + 1))
        print("   %d AMQP (%d publisher reconnects) and %d HTTP publishes stored once" %
              (len(amqp.confirmed), amqp.reconnects, len(http.acked)))
    finally:
        amqp.stop_flag.set()
        http.stop_flag.set()
        for s in subs:
            s.stop_flag.set()


@t.test
def a_minute_of_flapping_loses_nothing():
    gw = Gateway("--amqp", BROKER.url, "--amqp-heartbeat", "1", "--history", "1000000")
    gw.start()
    gw.wait_ready()
    times = []

    def flap():
        t_end = time.time() + 60
        cycle = 0
        while time.time() < t_end:
            cycle += 1
            if cycle == 5:
                BROKER.stop()
                wait_for(lambda: not_ready_broker(gw), "not ready while stopped", 60, gw)
                time.sleep(2)
                BROKER.start()
                what = "a restart"
            else:
                rabbit.pause(BROKER)
                try:
                    wait_for(lambda: not_ready_broker(gw), "not ready while paused", 60, gw)
                    time.sleep(2)
                finally:
                    rabbit.resume(BROKER)
                what = "a pause"
            took = wait_ready_timed(gw, 120)
            times.append(took)
            print("   cycle %d: ready %.1fs after %s" % (cycle, took, what), flush=True)
            time.sleep(1.5)

    try:
        run_traffic(gw, BROKER.url, "flap", flap)
        print("   ready again after each return: median %.1fs, max %.1fs over %d returns" %
              (sorted(times)[len(times) // 2], max(times), len(times)))
        assert gw.stop() == 0
    finally:
        rabbit.resume(BROKER)
        gw.stop()


@t.test
def network_partitions_lose_nothing():
    ns = NetNS()
    broker = rabbit.Broker(netns=ns.name, host=ns.ns_ip)
    gw = None
    try:
        broker.start()
        gw = Gateway("--amqp", broker.url, "--amqp-heartbeat", "1", "--history", "1000000")
        gw.start()
        gw.wait_ready()

        def partitions():
            for i, how in enumerate(["drop", "drop", "down"]):
                ns.cut(how)
                try:
                    wait_for(lambda: not_ready_broker(gw), "not ready while cut off", 60, gw)
                    st, _ = gw.http("GET", "/healthz")
                    assert st == 200
                    time.sleep(3)
                finally:
                    ns.heal()
                took = wait_ready_timed(gw, 120)
                print("   partition %d (%s): ready %.1fs after it healed" % (i + 1, how, took),
                      flush=True)
                time.sleep(1.5)

        run_traffic(gw, broker.url, "part", partitions)
        assert gw.stop() == 0
        gw = None
    finally:
        if gw:
            gw.stop()
        broker.cleanup()
        ns.cleanup()


if __name__ == "__main__":
    rabbit.run_with_broker(t, globals())
