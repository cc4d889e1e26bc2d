"""UUIDv7 (RFC 9562): 48-bit Unix milliseconds, 4-bit version, 12-bit counter, 2-bit variant, 62
random bits.

Ids made one after another sort in the order they were made, so the server's unique index on
(client_id, event_id) grows at its end instead of at a random leaf per trace (see the TypeScript
SDK's uuid.ts and docs/benchmarks.md: random v4 ids halve batch-ingest throughput on SQLite).

Monotonic within this process, across threads: several ids in one millisecond count up in the
12-bit field (starting at a random value in its lower half), and past 4,096 the timestamp field
moves on a millisecond early rather than repeat or go backwards (RFC 9562 section 6.2).
"""
from __future__ import annotations

import os
import re
import threading
import time

__all__ = ["uuid7", "is_uuid"]

_lock = threading.Lock()
_last_ms = -1
_counter = 0

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _reset_after_fork() -> None:
    global _lock
    # A lock held by another thread at fork time would stay held for ever in the child.
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def uuid7(now_ms: int | None = None) -> str:
    """A new UUIDv7 as a lower-case 8-4-4-4-12 string."""
    global _last_ms, _counter
    rand = os.urandom(10)
    with _lock:
        ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
        if ms > _last_ms:
            _last_ms = ms
            _counter = ((rand[0] & 0x07) << 8) | rand[1]
        else:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
        ms = _last_ms
        counter = _counter
    tail = int.from_bytes(rand[2:10], "big") & ((1 << 62) - 1)
    value = ((ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | tail
    h = "%032x" % value
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def is_uuid(value: object) -> bool:
    """True for the one spelling the server accepts: 8-4-4-4-12 hex digits, any case."""
    return isinstance(value, str) and _UUID.match(value) is not None
