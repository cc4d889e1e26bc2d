"""On-disk spool: traces not yet acknowledged survive the process.

A spool directory may be shared by several processes (the workers of one server, successive runs
of one agent). Each client owns one pair of files there, ``<client_id>.<id>.jsonl`` and
``<client_id>.<id>.lock``, and holds an exclusive lock (``flock``) on the ``.lock`` file for as
long as it runs. The ``.jsonl`` file is append-only JSON lines: ``{"e": trace}`` adds a trace,
``{"d": [event_id, ...]}`` marks traces finished (acknowledged, refused, or dropped from the
bounded buffer).

On start, a client adopts every pair of its ``client_id`` whose lock it can take: their owner is
gone (exited, crashed, ``kill -9``; the operating system releases a dead process's locks). It
reads what they still had pending, writes that into its own file, and only then deletes them, so a
crash in between can duplicate traces (which the server stores once) but never lose them.

Appends are made by a writer thread of their own, so ``trace()`` never waits for the disk; a
record reaches the file within milliseconds (the operating system's cache: it survives the
process, not a power cut). When the file grows past ``max_bytes`` or holds mostly finished
records it is rewritten (temporary file + rename) with just the traces still pending, which the
bounded buffer bounds.
"""
from __future__ import annotations

import glob
import json
import os
import threading
from typing import Callable, Dict, List, Optional, Tuple

from ._json import dumps
from ._uuid import uuid7

try:  # POSIX
    import fcntl

    _POSIX = True

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

except ImportError:  # pragma: no cover - Windows
    import msvcrt

    _POSIX = False

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False


Pending = List[Tuple[str, str]]  # (event_id, trace as JSON text)


def read_spool_file(path: str) -> Tuple[Dict[str, str], int]:
    """The traces a spool file still holds (event_id → JSON text), and its unreadable lines."""
    pending: Dict[str, str] = {}
    corrupt = 0
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return pending, 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except ValueError:
            corrupt += 1  # a torn last line after a crash
            continue
        if isinstance(rec, dict) and isinstance(rec.get("e"), dict) and isinstance(rec["e"].get("event_id"), str):
            pending[rec["e"]["event_id"]] = dumps(rec["e"])
        elif isinstance(rec, dict) and isinstance(rec.get("d"), list):
            for event_id in rec["d"]:
                pending.pop(event_id, None)
        else:
            corrupt += 1
    return pending, corrupt


class Spool:
    def __init__(
        self,
        directory: str,
        client_id: str,
        max_bytes: int,
        client_lock: threading.Lock,
        snapshot: Callable[[], Pending],
        on_error: Callable[[str], None],
    ) -> None:
        self.directory = os.path.abspath(directory)
        self.client_id = client_id
        self.max_bytes = max_bytes
        self._client_lock = client_lock
        self._snapshot = snapshot
        self._on_error = on_error
        self._cond = threading.Condition(threading.Lock())
        self._lines: List[str] = []
        self._writing = False
        self._stopping = False
        self._records = 0
        self._finished = 0
        self._bytes = 0
        self._fd: Optional[int] = None
        self._lock_fd: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        name = "%s.%s" % (client_id, uuid7())
        self.path = os.path.join(self.directory, name + ".jsonl")
        self.lock_path = os.path.join(self.directory, name + ".lock")

    def open(self) -> Tuple[Pending, int, int]:
        """Takes this client's files and adopts orphans: (pending traces, corrupt lines, files adopted)."""
        os.makedirs(self.directory, exist_ok=True)
        # Locked before it gets its name, so no other process ever sees it unlocked and adopts it
        # (Windows cannot rename an open file: there it is created in place).
        first = self.lock_path + ".new" if _POSIX else self.lock_path
        self._lock_fd = os.open(first, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        if not _try_lock(self._lock_fd):
            raise OSError("cannot lock %s" % self.lock_path)
        if first != self.lock_path:
            os.replace(first, self.lock_path)
        adopted: Dict[str, str] = {}
        corrupt = 0
        orphans: List[Tuple[str, str, Optional[int]]] = []
        for lock_path in sorted(glob.glob(os.path.join(glob.escape(self.directory), glob.escape(self.client_id) + ".*.lock"))):
            if lock_path == self.lock_path:
                continue
            try:
                fd = os.open(lock_path, os.O_RDWR)
            except FileNotFoundError:
                continue  # adopted by another process just now
            if not _try_lock(fd):
                os.close(fd)  # its owner is alive
                continue
            data_path = lock_path[: -len(".lock")] + ".jsonl"
            found, bad = read_spool_file(data_path)
            adopted.update(found)
            corrupt += bad
            orphans.append((lock_path, data_path, fd))
        # A data file whose lock file is gone (removed by hand) has no owner either.
        for data_path in glob.glob(os.path.join(glob.escape(self.directory), glob.escape(self.client_id) + ".*.jsonl")):
            if data_path != self.path and not os.path.exists(data_path[: -len(".jsonl")] + ".lock"):
                found, bad = read_spool_file(data_path)
                adopted.update(found)
                corrupt += bad
                orphans.append(("", data_path, None))
        pending = list(adopted.items())
        self._rewrite(pending)
        for lock_path, data_path, fd in orphans:
            for leftover in (data_path, data_path + ".tmp", lock_path):
                if leftover:
                    try:
                        os.unlink(leftover)
                    except FileNotFoundError:
                        pass
            if fd is not None:
                os.close(fd)
        self._thread = threading.Thread(target=self._run, name="panopticon-spool", daemon=True)
        self._thread.start()
        return pending, corrupt, len(orphans)

    # Called with the client's lock held, so the order of records is the order of events.
    def add(self, event_id: str, text: str) -> None:
        self._push('{"e":' + text + "}", 0)

    def done(self, event_ids: List[str]) -> None:
        if event_ids:
            self._push(json.dumps({"d": event_ids}, separators=(",", ":")), len(event_ids))

    def _push(self, line: str, finished: int) -> None:
        with self._cond:
            self._lines.append(line)
            self._records += 1
            self._finished += finished
            self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Waits until every record handed over so far is in the file."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._lines and not self._writing, timeout)

    def close(self, timeout: float, pending_left: int) -> None:
        """Stops the writer. With nothing pending the files go; otherwise they stay for the next process."""
        self.drain(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if pending_left == 0:
            for p in (self.path, self.lock_path):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock: a later process may adopt what is left
            self._lock_fd = None

    def after_fork_in_child(self) -> None:
        """A forked child must not write to its parent's spool: it gets none."""
        self._cond = threading.Condition(threading.Lock())
        self._lines = []
        self._stopping = True
        self._fd = None
        self._lock_fd = None
        self._thread = None

    # --- writer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._lines or self._stopping)
                if not self._lines:
                    return
                lines, self._lines = self._lines, []
                self._writing = True
            try:
                chunk = ("\n".join(lines) + "\n").encode("utf-8")
                self._write_all(chunk)
                self._bytes += len(chunk)
                if self._bytes > self.max_bytes or (self._records > 1000 and self._finished * 2 > self._records):
                    # Snapshot and drop the queued lines at one instant: records queued before it are
                    # in the snapshot, records queued after it follow the rewritten file.
                    with self._client_lock:
                        pending = self._snapshot()
                        with self._cond:
                            self._lines = []
                    self._rewrite(pending)
            except Exception as err:  # noqa: BLE001 - a full disk must not stop delivery
                self._on_error("spool write failed: %s" % (err,))
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()

    def _write_all(self, chunk: bytes) -> None:
        assert self._fd is not None
        view = memoryview(chunk)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def _rewrite(self, pending: Pending) -> None:
        text = "".join('{"e":' + t + "}\n" for _, t in pending).encode("utf-8")
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(text)
        os.replace(tmp, self.path)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        with self._cond:
            self._records = len(pending)
            self._finished = 0
        self._bytes = len(text)
