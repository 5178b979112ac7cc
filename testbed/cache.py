"""Where the test infrastructure keeps state between runs, and a cross-process lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "OMEROWEB_DEPLOY_CACHE"


def cache_dir() -> Path:
    """Return (and create) ``$OMEROWEB_DEPLOY_CACHE`` or ``~/.cache/omeroweb-deploy``."""
    configured = os.environ.get(CACHE_ENV)
    path = Path(configured) if configured else Path.home() / ".cache" / "omeroweb-deploy"
    path.mkdir(parents=True, exist_ok=True)
    return path


#: One lock per name for the threads of this process: they queue here, and only the one holding
#: it takes the file lock, which then keeps other processes out (two threads flocking one file
#: deadlocked a cold run: a thread waited forever on a lock its own process held).
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``$CACHE/locks/<name>.lock`` (blocks until free)."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(exist_ok=True)
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(name, threading.Lock())
    with thread_lock, open(lock_dir / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
