"""A legacy backend job, as it ran beside a Django Channels server: it opens
ws://<host>/ws/submissions/{pk}/ itself, sends one frame and closes, with no
token and no header of its own. The browser tests run it as a program:

  python3 legacy_backend.py URL FRAME_JSON [--source ADDR]

Exit status 0 once the frame was sent and the gateway's own broadcast of it
came back (the socket is a member of the group, so that is the commit).
"""
import argparse
import asyncio
import json
import sys

import websockets


async def send(url, frame, source):
    async with websockets.connect(url, local_addr=(source, 0) if source else None) as ws:
        await ws.send(json.dumps(frame))
        while True:
            got = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if "error" in got:
                raise SystemExit("refused: %r" % (got,))
            if got.get("message") == frame.get("message") and \
                    got.get("notification_message") == frame.get("notification_message"):
                return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("frame")
    ap.add_argument("--source", help="local address to connect from")
    a = ap.parse_args()
    asyncio.run(send(a.url, json.loads(a.frame), a.source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
