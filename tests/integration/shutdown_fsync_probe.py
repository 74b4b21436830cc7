"""Not a test of statusgate: a probe of the fault method that
faults_powerloss_test.py relies on. It shows that EXT4_IOC_SHUTDOWN with
EXT4_GOING_FLAGS_NOLOGFLUSH is not atomic with an fdatasync in flight: one
thread appends 4 KiB records to a file on the loop-device ext4 and
fdatasyncs each; the main thread shuts the file system down at a random
moment. After journal recovery the file can lack the record whose
fdatasync returned 0, a return that came after the ioctl had begun. So the
power-loss test freezes the gateway before it cuts.

    /usr/bin/python3 tests/integration/shutdown_fsync_probe.py [trials]
(as root)"""
import fcntl
import os
import random
import struct
import sys
import threading
import time

from faultlib import EXT4_GOING_FLAGS_NOLOGFLUSH, EXT4_IOC_SHUTDOWN, Ext4Disk


def trial(rng):
    disk = Ext4Disk(size_mb=64)
    try:
        mnt = disk.mount()
        fd = os.open(os.path.join(mnt, "f"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        synced = {"n": 0, "t": 0.0}

        def append():
            n = 0
            try:
                while True:
                    n += 1
                    os.write(fd, (b"%08d" % n) * 512)
                    os.fdatasync(fd)
                    synced["n"], synced["t"] = n, time.monotonic()
            except OSError:
                pass        # EIO once the file system is down

        th = threading.Thread(target=append)
        th.start()
        time.sleep(rng.uniform(0.05, 0.2))
        t0 = time.monotonic()
        dfd = os.open(mnt, os.O_RDONLY)
        try:
            fcntl.ioctl(dfd, EXT4_IOC_SHUTDOWN, struct.pack("I", EXT4_GOING_FLAGS_NOLOGFLUSH))
        finally:
            os.close(dfd)
        th.join()
        os.close(fd)
        disk.unmount()
        mnt = disk.mount()
        with open(os.path.join(mnt, "f"), "rb") as f:
            have = len(f.read()) // 4096
        return synced["n"], have, synced["t"] - t0
    finally:
        disk.cleanup()


def main():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rng = random.Random()
    lost = 0
    for _ in range(trials):
        n, have, dt = trial(rng)
        if have < n:
            lost += 1
            print("fdatasync of record %d returned 0 %.2f ms after the ioctl began; "
                  "the disk has %d records" % (n, dt * 1e3, have))
    print("%d of %d trials lost a record whose fdatasync had returned 0" % (lost, trials))


if __name__ == "__main__":
    main()
