"""kill -9, ten times, during a stream of 10,000 publishes with ids (5,000
over HTTP, 5,000 over AMQP with publisher confirms), on one store and one
private RabbitMQ node.

The HTTP publishers send each id until it is answered 200 (a publish whose
answer was lost in a kill is sent again, with the same id); the AMQP
publishers get a confirm for every id. After the last kill and restart:

- every id is in the store exactly once, each submission's events have seq
  1..n without a gap, and nothing else is there;
- the broker's queue is empty (everything was acknowledged, after its
  commit);
- each of two /ws subscribers, which reconnect after every kill and resume
  each submission with since = the last (epoch, seq) they saw, has seen
  every event exactly once and in order, never a snapshot instead of a
  replay, and never a seq lower than one it had seen (a lost commit).
"""
import time

import rabbit
from faultlib import AmqpStream, HttpStream, Resumer, all_events, check_exactly_once
from harness import Gateway, Runner, wait_for

t = Runner()
BROKER = None
N = 10000
KILLS = 10
HTTP_KEYS = ["ch%d" % i for i in range(4)]
AMQP_KEYS = ["ca%d" % i for i in range(4)]


@t.test
def ten_kills_during_ten_thousand_publishes():
    gw = Gateway("--amqp", BROKER.url, "--history", "100000", "--amqp-heartbeat", "2")
    gw.start()
    gw.wait_ready()
    per = N // 2 // len(HTTP_KEYS)
    https = [HttpStream(gw, k, k, per) for k in HTTP_KEYS]
    amqps = [AmqpStream(BROKER.url, k, k, per) for k in AMQP_KEYS]
    subs = [Resumer(gw, HTTP_KEYS + AMQP_KEYS) for _ in range(2)]
    streams = https + amqps
    try:
        for s in subs:
            s.start()
        wait_for(lambda: all(s.connects for s in subs), "subscribers connected", gw=gw)
        for s in streams:
            s.start()

        def progress():
            return sum(len(h.acked) for h in https) + sum(len(a.confirmed) for a in amqps)

        t0 = time.time()
        for k in range(1, KILLS + 1):
            target = k * N // (KILLS + 1)
            wait_for(lambda: progress() >= target or not any(s.is_alive() for s in streams),
                     "%d publishes" % target, timeout=300, gw=gw)
            for s in streams:
                assert s.error is None, s.error
            gw.kill()
            gw.start()
            print("   kill %d at %d of %d publishes" % (k, progress(), N), flush=True)
        for s in streams:
            s.join(300)
            assert not s.is_alive() and s.error is None, s.error
        assert progress() == N, progress()
        wait_for(lambda: BROKER.queue_depth("statusgate.ingest") == 0, "queue drained", gw=gw)
        stored = {}
        for h in https:
            stored[h.key] = check_exactly_once(all_events(gw, h.key), list(h.acked))
        for a in amqps:
            wait_for(lambda: len(all_events(gw, a.key)) >= per, "%s applied" % a.key, gw=gw)
            stored[a.key] = check_exactly_once(all_events(gw, a.key), a.confirmed)
        print("   all %d publishes stored once in %.0fs; HTTP retries %d" %
              (N, time.time() - t0, sum(h.retries for h in https)))

        # the subscribers catch up on the last events, then each saw each once
        for s in subs:
            wait_for(lambda: all(len(s.events[k]) == len(stored[k]) for k in stored),
                     "subscriber caught up", timeout=60, gw=gw)
        for s in subs:
            s.stop()
            assert not s.rollbacks, "seen events went missing: %s" % s.rollbacks[:3]
            assert not any(s.snapshots.values()), "snapshots instead of replays: %s" % s.snapshots
            for k, evs in s.events.items():
                seqs = [e[1] for e in evs]
                assert seqs == list(range(1, len(stored[k]) + 1)), \
                    "subscriber of %s: gaps or duplicates in %s" % (k, seqs[:20])
                assert {e[2]: e[1] for e in evs} == stored[k]
            assert s.connects >= KILLS + 1, s.connects
        assert gw.stop() == 0
    finally:
        for s in streams:
            s.stop_flag.set()
        for s in subs:
            s.stop_flag.set()
        gw.stop()


if __name__ == "__main__":
    rabbit.run_with_broker(t, globals())
