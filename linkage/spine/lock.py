"""One writer at a time: a `linkage link` holds an exclusive lock beside the spine.

The lock is an OS file lock (flock) on SPINE.lock, so it is released however the holder ends,
a crash or a kill included: there is no stale lock to clear by hand.
"""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


class SpineBusy(Exception):
    """Another run holds the spine; the message says which and what to do."""


def lock_path(spine: Path) -> Path:
    return spine.with_name(spine.name + ".lock")


@contextmanager
def spine_lock(spine: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold the spine's lock, waiting up to ``wait`` seconds for another run to finish."""
    path = lock_path(spine)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(handle, 200, 0).decode(errors="replace").strip()
                    raise SpineBusy(
                        f"{spine}: another linkage run is updating this spine "
                        f"({holder or 'starting'}); wait for it to finish, or give --wait "
                        "SECONDS") from None
                time.sleep(0.2)
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"process {os.getpid()} since "
                          f"{datetime.now(UTC).isoformat(timespec='seconds')}".encode(), 0)
        yield
    finally:
        os.close(handle)  # closing releases the lock
