"""The Panopticon client: trace delivery that never gets in the caller's way, and the AI Guard.

Delivery guarantees (README.md states them for users; they are those of the TypeScript SDK):

- ``trace()`` returns at once and never raises; the trace joins a bounded in-memory buffer.
- A background thread sends batches (``POST /panopticon/traces``) when ``batch_size`` traces are
  waiting, when the oldest waiting trace is ``flush_interval`` old, or on ``flush()``. One batch is
  in flight at a time, so traces are first delivered in the order they were recorded.
- A transient failure (network, timeout, 408, 425, 429, 5xx, and 401/403/404, which an operator can
  fix) puts the batch back at the head of the buffer and waits: exponential backoff with jitter,
  never less than the server's Retry-After. The same event_ids are resent, so a batch whose
  acknowledgement was lost is stored once.
- Only three things drop a trace, each counted: the buffer overflowing (oldest first), the trace
  being invalid (refused locally or by the server), and ``close()``'s deadline passing without a
  spool.
- With ``spool_dir``, every buffered trace is also on disk until acknowledged, and the next client
  of the same application on that directory resends what a previous process left.
"""
from __future__ import annotations

import asyncio
import atexit
import collections
import datetime
import logging
import math
import os
import random
import ssl
import threading
import time
import weakref
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote

from ._http import HttpAnswer, Transport, TransportError
from ._json import dumps, jsonable
from ._spool import Spool
from ._types import (
    DECISIONS,
    TRACE_STATUSES,
    ApprovalRef,
    ApprovalResult,
    CloseResult,
    GuardDecision,
    PanopticonError,
    Stats,
)
from ._uuid import is_uuid, uuid7

__all__ = ["Panopticon"]

log = logging.getLogger("panopticon")

#: The largest batch body built; the server refuses more than 2 MiB.
MAX_BATCH_BYTES = 2 * 1024 * 1024 - 64 * 1024
#: Statuses after which the same batch is sent again later.
TRANSIENT_STATUSES = frozenset({401, 403, 404, 408, 425, 429, 500, 502, 503, 504})
#: Statuses that refuse the batch itself: sending it again cannot help.
REFUSED_STATUSES = frozenset({400, 413, 415, 422})
MAX_DURATION_MS = 2_147_483_647
SENDER_SLOT = 1

StartedAt = Union[datetime.datetime, str, int, float, None]
Duration = Union[int, float, datetime.timedelta, None]

_clients: "weakref.WeakSet[Panopticon]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def retry_after_seconds(headers: Mapping[str, str]) -> Optional[float]:
    """Retry-After as seconds (a number of seconds or an HTTP date); None when absent or unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (at - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def format_started_at(value: StartedAt) -> str:
    """RFC 3339 with an offset, as the server takes it.

    ``None`` is now. An aware ``datetime`` is converted to UTC; a naive one is local time (Python's
    convention, as in ``datetime.astimezone()``). ``int``/``float`` are Unix seconds. A ``str`` is
    sent as is (the server judges it). UTC is written ``+00:00`` with microseconds, as
    ``datetime.now(timezone.utc).isoformat()`` does.
    """
    if value is None:
        return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).isoformat(timespec="microseconds")
    raise TypeError("started_at must be a datetime, an RFC 3339 string or Unix seconds, got %s" % type(value).__name__)


def _duration_ms(value: Duration) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds() * 1000
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError("duration_ms must be a finite number of milliseconds, got %r" % (value,))
    return min(MAX_DURATION_MS, max(0, int(round(value))))


def _text_problem(name: str, value: Any, required: bool) -> Optional[str]:
    if value is None:
        return "%s is required" % name if required else None
    if not isinstance(value, str):
        return "%s must be a string, got %s" % (name, type(value).__name__)
    if required and value == "":
        return "%s must not be empty" % name
    if len(value) > 256:
        return "%s must be at most 256 characters (got %d)" % (name, len(value))
    if "\x00" in value:
        return "%s must not contain U+0000" % name
    return None


class Panopticon:
    """One application's connection to a Panopticon server.

    Create one per process (it starts a daemon thread) and share it. Every request carries the PAK
    and, with ``pak_secret``, an HMAC signature. Durations and delays are in seconds, except the
    trace's own ``duration_ms``.

    Options (defaults in brackets): ``batch_size`` traces per batch, 1-1000 [100];
    ``flush_interval`` a partial batch leaves once its oldest trace is this old [1.0];
    ``max_buffer_size`` traces waiting in memory besides the batch in flight, beyond which the
    oldest are dropped and counted [10000]; ``retry_initial_delay`` / ``retry_max_delay`` backoff
    bounds, Retry-After can be longer [0.25 / 30.0]; ``request_timeout`` one trace request or
    approval poll, beyond its long-poll wait [10.0]; ``spool_dir`` keep unacknowledged traces on
    disk there [None]; ``max_spool_bytes`` compaction threshold [16 MiB]; ``fail_mode``
    ``"closed"`` or ``"open"``: what ``check()`` answers when the guard cannot be asked
    ["closed"]; ``check_timeout`` one guard check [5.0]; ``on_error`` callable receiving each
    ``PanopticonError`` the caller never sees raised [None: logged on the ``panopticon`` logger];
    ``flush_at_exit`` close at interpreter exit, waiting up to ``exit_timeout`` [True / 5.0];
    ``ssl_context`` for ``https://`` URLs [the system's default]; ``default_scope`` of governed
    functions that name none ["mcp:tools"].
    """

    def __init__(
        self,
        url: str,
        pak: str,
        client_id: str,
        pak_secret: Optional[str] = None,
        *,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_buffer_size: int = 10_000,
        retry_initial_delay: float = 0.25,
        retry_max_delay: float = 30.0,
        request_timeout: float = 10.0,
        spool_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        max_spool_bytes: int = 16 * 1024 * 1024,
        fail_mode: str = "closed",
        check_timeout: float = 5.0,
        on_error: Optional[Callable[[PanopticonError], None]] = None,
        flush_at_exit: bool = True,
        exit_timeout: float = 5.0,
        ssl_context: Optional[ssl.SSLContext] = None,
        default_scope: str = "mcp:tools",
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url must be an http:// or https:// URL, got %r" % (url,))
        if not isinstance(pak, str) or pak == "":
            raise ValueError("pak is required (the application's pano_pak_... key)")
        if not isinstance(client_id, str) or client_id == "":
            raise ValueError("client_id is required (the application's logi_... id)")
        if pak_secret is not None and (not isinstance(pak_secret, str) or pak_secret == ""):
            raise ValueError("pak_secret must be a non-empty string or None")
        if fail_mode not in ("open", "closed"):
            raise ValueError('fail_mode must be "open" or "closed", got %r' % (fail_mode,))
        for name, value in (("flush_interval", flush_interval), ("retry_initial_delay", retry_initial_delay), ("retry_max_delay", retry_max_delay),
                            ("request_timeout", request_timeout), ("check_timeout", check_timeout), ("exit_timeout", exit_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
                raise ValueError("%s must be a positive number of seconds, got %r" % (name, value))
        for name, value in (("batch_size", batch_size), ("max_buffer_size", max_buffer_size), ("max_spool_bytes", max_spool_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError("%s must be a positive integer, got %r" % (name, value))
        if not isinstance(default_scope, str) or not 1 <= len(default_scope) <= 256:
            raise ValueError("default_scope must be a string of 1-256 characters")
        if on_error is not None and not callable(on_error):
            raise ValueError("on_error must be callable")

        self.url = url.rstrip("/")
        self.client_id = client_id
        self.fail_mode = fail_mode
        self.default_scope = default_scope
        self.batch_size = min(1000, batch_size)
        self.flush_interval = float(flush_interval)
        self.max_buffer_size = max_buffer_size
        self.retry_initial_delay = float(retry_initial_delay)
        self.retry_max_delay = float(retry_max_delay)
        self.request_timeout = float(request_timeout)
        self.check_timeout = float(check_timeout)
        self.exit_timeout = float(exit_timeout)
        self._on_error = on_error
        self._transport = Transport(self.url, pak, pak_secret, ssl_context)

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: Deque[Tuple[str, str]] = collections.deque()
        self._in_flight: List[Tuple[str, str]] = []
        self._failed: set = set()
        self._counters = dict(sent=0, duplicate=0, retried=0, dropped_overflow=0, dropped_rejected=0, dropped_shutdown=0, failed_requests=0)
        self._batch_limit = self.batch_size
        self._retry_at = 0.0
        self._consecutive_failures = 0
        self._due: Optional[float] = None
        self._draining = False
        self._flush_waiters = 0
        self._closed = False
        self._stopping = False
        self._outage_logged = False
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()

        self._spool: Optional[Spool] = None
        if spool_dir is not None:
            self._spool = Spool(os.fspath(spool_dir), client_id, max_spool_bytes, self._lock, self._snapshot_locked,
                                lambda message: self._report(PanopticonError(message, "spool")))
            pending, corrupt, adopted = self._spool.open()
            if corrupt:
                self._report(PanopticonError("%d unreadable spool line(s) skipped" % corrupt, "spool"))
            if pending:
                log.info("panopticon: resending %d trace(s) left in %d spool file(s) by earlier processes", len(pending), adopted)
            with self._lock:
                # Already in this client's spool file (written by open()): not added again.
                self._queue.extend(pending)
                self._enforce_bound_locked()
        _clients.add(self)
        self._start_thread()
        self._atexit_registered = flush_at_exit
        if flush_at_exit:
            atexit.register(self._at_exit)

    # --- tracing --------------------------------------------------------------------------------

    def trace(
        self,
        tool: str,
        scope: str,
        status: str,
        *,
        duration_ms: Duration = None,
        started_at: StartedAt = None,
        event_id: Optional[str] = None,
        user_sub: Optional[str] = None,
        session_id: Optional[str] = None,
        error_message: Optional[str] = None,
        attributes: Optional[Mapping[str, Any]] = None,
        check_id: Optional[str] = None,
    ) -> Optional[str]:
        """Records a tool call. Returns its event_id at once; never raises, never waits.

        ``status`` is ``ok``, ``error``, ``denied`` or ``timeout``. ``event_id`` defaults to a new
        UUIDv7 (bring your own UUID to link a trace to something else); ``started_at`` to now;
        ``duration_ms`` to 0. ``check_id`` names the guard decision that let the call run. An
        unusable trace returns None: it is counted as ``dropped_rejected`` and reported.
        """
        errors: List[PanopticonError] = []
        result: Optional[str] = None
        try:
            problem = (_text_problem("tool", tool, True) or _text_problem("scope", scope, True)
                       or (None if status in TRACE_STATUSES else "status must be one of %s, got %r" % (", ".join(TRACE_STATUSES), status))
                       or (None if event_id is None or is_uuid(event_id) else "event_id must be a UUID (8-4-4-4-12 hex digits), got %r" % (event_id,))
                       or _text_problem("user_sub", user_sub, False) or _text_problem("session_id", session_id, False)
                       or (None if check_id is None or isinstance(check_id, str) else "check_id must be a string")
                       or (None if attributes is None or isinstance(attributes, Mapping) else "attributes must be a mapping"))
            if problem is not None:
                raise TypeError(problem)
            eid = event_id.lower() if event_id is not None else uuid7()
            wire: Dict[str, Any] = {
                "event_id": eid,
                "client_id": self.client_id,
                "tool": tool,
                "scope_used": scope,
                "status": status,
                "started_at": format_started_at(started_at),
                "duration_ms": _duration_ms(duration_ms),
            }
            if user_sub is not None:
                wire["user_sub"] = user_sub
            if session_id is not None:
                wire["session_id"] = session_id
            if check_id is not None:
                wire["check_id"] = check_id
            if error_message is not None:
                wire["error_message"] = str(error_message)[:4096].replace("\x00", "\ufffd")
            if attributes is not None:
                wire["attributes"] = jsonable(attributes)
            text = dumps(wire)
            with self._cond:
                if self._closed:
                    self._counters["dropped_shutdown"] += 1
                    errors.append(PanopticonError("trace() after close(): dropped", "closed"))
                else:
                    self._ensure_thread_locked()
                    self._queue.append((eid, text))
                    if self._spool is not None:
                        self._spool.add(eid, text)
                    errors.extend(self._enforce_bound_locked())
                    if len(self._queue) == 1 or len(self._queue) >= self.batch_size:
                        self._cond.notify_all()
                    result = eid
        except Exception as err:  # noqa: BLE001 - trace() never raises into the caller
            with self._lock:
                self._counters["dropped_rejected"] += 1
            errors.append(PanopticonError("trace dropped: %s" % (err,), "invalid_trace"))
        for e in errors:
            self._report(e)
        return result

    def stats(self) -> Stats:
        with self._lock:
            c = dict(self._counters)
            buffered = len(self._queue) + len(self._in_flight)
        return Stats(
            buffered=buffered,
            sent=c["sent"],
            duplicate=c["duplicate"],
            retried=c["retried"],
            dropped=c["dropped_overflow"] + c["dropped_rejected"] + c["dropped_shutdown"],
            dropped_overflow=c["dropped_overflow"],
            dropped_rejected=c["dropped_rejected"],
            dropped_shutdown=c["dropped_shutdown"],
            failed_requests=c["failed_requests"],
        )

    def flush(self, timeout: Optional[float] = 10.0) -> bool:
        """Sends everything buffered now (still honouring a backoff in progress).

        True once the buffer is empty, False if ``timeout`` seconds passed first (None: no limit).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._buffered_locked() > 0 and not self._stopping:
                self._ensure_thread_locked()
                self._flush_waiters += 1
                self._cond.notify_all()
                try:
                    self._cond.wait_for(lambda: self._buffered_locked() == 0 or self._stopping, timeout)
                finally:
                    self._flush_waiters -= 1
            done = self._buffered_locked() == 0
        if self._spool is not None:
            self._spool.drain(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return done

    def close(self, timeout: float = 5.0) -> CloseResult:
        """Flushes for at most ``timeout`` seconds, then stops the delivery thread.

        Traces still unsent then stay in the spool for the next process when there is one, and are
        counted as ``dropped_shutdown`` otherwise. Later ``trace()`` calls are dropped (and
        counted). Calling it again is harmless. ``check()`` and approvals keep working.
        """
        with self._lock:
            if self._closed:
                pending = self._buffered_locked()
                return CloseResult(delivered=pending == 0, pending=pending)
        delivered = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        # A batch still in flight is cut short: it goes back to the buffer (and the spool keeps it).
        self._transport.abort(SENDER_SLOT)
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(1.0, self.request_timeout))
        with self._lock:
            pending = self._buffered_locked()
            if pending > 0 and self._spool is None:
                self._counters["dropped_shutdown"] += pending
                self._queue.clear()
                self._in_flight = []
        if pending > 0 and self._spool is None:
            self._report(PanopticonError("close(): %d trace(s) not delivered and no spool: dropped" % pending, "closed"))
        if self._spool is not None:
            self._spool.close(max(1.0, timeout), pending)
        self._transport.close()
        if self._atexit_registered:
            self._atexit_registered = False
            atexit.unregister(self._at_exit)
        return CloseResult(delivered=delivered and pending == 0, pending=pending)

    async def flush_async(self, timeout: Optional[float] = 10.0) -> bool:
        """``flush()`` for asyncio code: waits in a worker thread, not in the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, self.flush, timeout)

    async def close_async(self, timeout: float = 5.0) -> CloseResult:
        """``close()`` for asyncio code."""
        return await asyncio.get_running_loop().run_in_executor(None, self.close, timeout)

    def __enter__(self) -> "Panopticon":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> "Panopticon":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_async()

    def __repr__(self) -> str:
        return "Panopticon(url=%r, client_id=%r)" % (self.url, self.client_id)

    # --- AI Guard -------------------------------------------------------------------------------

    def _check_body(self, tool: str, arguments: Any, scope: str, user_sub: Optional[str], session_id: Optional[str], event_id: Optional[str]) -> Union[bytes, GuardDecision]:
        problem = (_text_problem("tool", tool, True) or _text_problem("scope", scope, True)
                   or _text_problem("user_sub", user_sub, False) or _text_problem("session_id", session_id, False)
                   or (None if arguments is None or isinstance(arguments, Mapping) else "arguments must be a mapping (a dict of the call's arguments) or None")
                   or (None if event_id is None or is_uuid(event_id) else "event_id must be a UUID"))
        if problem is not None:
            return GuardDecision(decision="deny", reason="invalid_check", message="check() not sent: %s" % problem, source="fail_closed")
        body: Dict[str, Any] = {"client_id": self.client_id, "tool": tool, "scope": scope}
        if user_sub is not None:
            body["user_sub"] = user_sub
        if session_id is not None:
            body["session_id"] = session_id
        if arguments is not None:
            body["arguments"] = jsonable(arguments)
        if event_id is not None:
            body["event_id"] = event_id
        return dumps(body).encode("utf-8")

    def _decision(self, answer: HttpAnswer) -> GuardDecision:
        b = answer.body
        if answer.status == 200 and isinstance(b, dict) and b.get("decision") in DECISIONS:
            approval = b.get("approval")
            ref = None
            if isinstance(approval, dict) and isinstance(approval.get("id"), str):
                ref = ApprovalRef(id=approval["id"], poll_url=str(approval.get("poll_url", "")), expires_at=str(approval.get("expires_at", "")))
            return GuardDecision(
                decision=b["decision"],
                reason=str(b.get("reason", "")),
                message=str(b.get("message", "")),
                source="server",
                check_id=b.get("check_id"),
                rule_id=b.get("rule_id"),
                policy_version=b.get("policy_version"),
                approval=ref,
                grant_id=b.get("grant_id"),
                retry_after_seconds=b.get("retry_after_seconds"),
            )
        code = answer.error_code()
        if answer.status == 429 or answer.status >= 500:
            return self._unreachable(code, "guard answered %d" % answer.status)
        if answer.status == 200:
            return GuardDecision(decision="deny", reason="unexpected_answer", message="guard answer not understood: %s" % answer.text[:200], source="fail_closed")
        # A refused key or a malformed check is a configuration problem, not an outage: deny
        # whatever the fail mode, so a revoked key cannot switch the guard off.
        return GuardDecision(decision="deny", reason=code, message=answer.error_message() or "guard check refused (%d)" % answer.status, source="fail_closed")

    def _unreachable(self, code: str, message: str) -> GuardDecision:
        is_open = self.fail_mode == "open"
        return GuardDecision(
            decision="allow" if is_open else "deny",
            reason="unreachable",
            message="Panopticon guard unreachable (%s): %s; failing %s" % (code, message, "open" if is_open else "closed"),
            source="fail_open" if is_open else "fail_closed",
        )

    def check(
        self,
        tool: str,
        arguments: Optional[Mapping[str, Any]] = None,
        *,
        scope: str,
        user_sub: Optional[str] = None,
        session_id: Optional[str] = None,
        event_id: Optional[str] = None,
    ) -> GuardDecision:
        """Asks the guard whether a call may run: ``allow``, ``deny`` or ``require_approval``.

        Never raises. When the guard cannot be asked (network error, timeout, 429, 5xx) it answers
        by ``fail_mode`` (deny by default); a refused request (revoked key, 400...) is a deny.
        ``arguments`` (the call's arguments, policies can match on them) are converted to plain
        JSON; ``event_id`` is the trace this call will be recorded as, linking the two.
        """
        body = self._check_body(tool, arguments, scope, user_sub, session_id, event_id)
        if isinstance(body, GuardDecision):
            return body
        try:
            answer = self._transport.request("POST", "/panopticon/guard/check", body, self.check_timeout)
        except TransportError as err:
            return self._unreachable(err.code, str(err))
        except Exception as err:  # noqa: BLE001 - check() never raises
            return self._unreachable("network", repr(err))
        return self._decision(answer)

    async def check_async(
        self,
        tool: str,
        arguments: Optional[Mapping[str, Any]] = None,
        *,
        scope: str,
        user_sub: Optional[str] = None,
        session_id: Optional[str] = None,
        event_id: Optional[str] = None,
    ) -> GuardDecision:
        """``check()`` for asyncio code (no thread is held while waiting)."""
        body = self._check_body(tool, arguments, scope, user_sub, session_id, event_id)
        if isinstance(body, GuardDecision):
            return body
        try:
            answer = await self._transport.arequest("POST", "/panopticon/guard/check", body, self.check_timeout)
        except TransportError as err:
            return self._unreachable(err.code, str(err))
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - check_async() never raises
            return self._unreachable("network", repr(err))
        return self._decision(answer)

    # --- approvals ------------------------------------------------------------------------------

    @staticmethod
    def _approval_id(approval: Union[str, ApprovalRef, GuardDecision]) -> Optional[str]:
        if isinstance(approval, str):
            return approval
        if isinstance(approval, ApprovalRef):
            return approval.id
        if isinstance(approval, GuardDecision) and approval.approval is not None:
            return approval.approval.id
        return None

    def wait_for_approval(self, approval: Union[str, ApprovalRef, GuardDecision], timeout: float = 300.0) -> ApprovalResult:
        """Long-polls an approval request until a human decides, it expires, or ``timeout`` passes.

        Never raises. Network failures and 429/5xx are retried until the deadline; only
        ``approved`` (``result.approved``) means run the call: approvals always fail closed.
        """
        poller = _ApprovalPoll(self, self._approval_id(approval), timeout)
        while True:
            step = poller.next_request()
            if isinstance(step, ApprovalResult):
                return step
            path, wait = step
            try:
                answer = self._transport.request("GET", path, b"", wait + self.request_timeout)
                outcome = poller.on_answer(answer)
            except TransportError as err:
                outcome = poller.on_failure(err.code)
            except Exception as err:  # noqa: BLE001 - never raises
                outcome = poller.on_failure("network: %r" % (err,))
            if isinstance(outcome, ApprovalResult):
                return outcome
            if outcome > 0:
                time.sleep(outcome)

    async def wait_for_approval_async(self, approval: Union[str, ApprovalRef, GuardDecision], timeout: float = 300.0) -> ApprovalResult:
        """``wait_for_approval()`` for asyncio code (no thread is held; cancelling ends the poll)."""
        poller = _ApprovalPoll(self, self._approval_id(approval), timeout)
        while True:
            step = poller.next_request()
            if isinstance(step, ApprovalResult):
                return step
            path, wait = step
            try:
                answer = await self._transport.arequest("GET", path, b"", wait + self.request_timeout)
                outcome = poller.on_answer(answer)
            except TransportError as err:
                outcome = poller.on_failure(err.code)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - never raises
                outcome = poller.on_failure("network: %r" % (err,))
            if isinstance(outcome, ApprovalResult):
                return outcome
            if outcome > 0:
                await asyncio.sleep(outcome)

    # --- the tool decorator ---------------------------------------------------------------------

    def tool(self, fn: Optional[Callable[..., Any]] = None, **options: Any) -> Any:
        """Governs a function: ``@pano.tool`` or ``@pano.tool(scope="agent:read", ...)``.

        Each call is checked with the guard (denied → ``PanopticonDenied`` is raised and the
        function does not run; approval required → it waits for a human), then run, timed and
        traced as ``ok``, ``error``, ``denied`` or ``timeout``. See ``panopticon.governed`` for the
        options.
        """
        from ._tool import governed

        if fn is not None:
            return governed(self, fn, **options)
        return lambda f: governed(self, f, **options)

    # --- delivery internals ---------------------------------------------------------------------

    def _report(self, err: PanopticonError) -> None:
        if self._on_error is not None:
            try:
                self._on_error(err)
            except Exception:  # noqa: BLE001 - a throwing callback must not break delivery
                log.exception("panopticon: on_error callback raised")
        elif err.code in ("network", "timeout") or (err.status is not None and err.status in TRANSIENT_STATUSES):
            log.debug("panopticon: %s", err.message)
        else:
            log.warning("panopticon: %s", err.message)

    def _buffered_locked(self) -> int:
        return len(self._queue) + len(self._in_flight)

    def _snapshot_locked(self) -> List[Tuple[str, str]]:
        return list(self._in_flight) + list(self._queue)

    def _enforce_bound_locked(self) -> List[PanopticonError]:
        """Oldest first; the batch in flight is not counted (its outcome is about to be known)."""
        over = len(self._queue) - self.max_buffer_size
        if over <= 0:
            return []
        dropped = [self._queue.popleft() for _ in range(over)]
        self._counters["dropped_overflow"] += over
        ids = [eid for eid, _ in dropped]
        for eid in ids:
            self._failed.discard(eid)
        if self._spool is not None:
            self._spool.done(ids)
        return [PanopticonError("buffer full (%d): dropped %d oldest trace(s)" % (self.max_buffer_size, over), "overflow")]

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="panopticon-delivery", daemon=True)
        self._thread.start()

    def _ensure_thread_locked(self) -> None:
        if (self._thread is None or not self._thread.is_alive()) and not self._stopping:
            self._start_thread()

    def _after_fork_in_child(self) -> None:
        # The parent still holds and delivers what was buffered; the child starts empty, without
        # the parent's spool (one process per spool file) and without its connections.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue = collections.deque()
        self._in_flight = []
        self._failed = set()
        self._thread = None
        self._due = None
        self._draining = False
        self._flush_waiters = 0
        if self._spool is not None:
            self._spool.after_fork_in_child()
            self._spool = None
        self._transport = Transport(self.url, self._transport.pak, self._transport.pak_secret, self._transport.ssl_context)
        self._pid = os.getpid()

    def _at_exit(self) -> None:
        try:
            self.close(self.exit_timeout)
        except Exception:  # noqa: BLE001 - nothing may raise at interpreter exit
            log.exception("panopticon: close at exit failed")

    def _backoff(self, failures: int) -> float:
        """Exponential, capped, with "equal jitter": half fixed, half random, so clients spread out."""
        ceiling = min(self.retry_max_delay, self.retry_initial_delay * (2 ** min(failures - 1, 30)))
        return ceiling / 2 + random.random() * ceiling / 2

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    if not self._queue:
                        self._due = None
                        self._draining = False
                        self._cond.wait()
                        continue
                    if self._due is None:
                        self._due = now + self.flush_interval
                    ready = self._draining or self._flush_waiters > 0 or len(self._queue) >= self.batch_size or now >= self._due
                    if ready and now >= self._retry_at:
                        break
                    wake = max(self._retry_at, now if ready else self._due)
                    self._cond.wait(max(0.0, wake - now))
                batch = self._take_batch_locked()
                self._draining = True
            errors = self._send(batch)
            for e in errors:
                self._report(e)

    def _take_batch_locked(self) -> List[Tuple[str, str]]:
        size = 16
        n = 0
        while n < len(self._queue) and n < self._batch_limit:
            item = len(self._queue[n][1].encode("utf-8")) + 1
            if n > 0 and size + item > MAX_BATCH_BYTES:
                break
            size += item
            n += 1
        self._in_flight = [self._queue.popleft() for _ in range(n)]
        for eid, _ in self._in_flight:
            if eid in self._failed:
                self._counters["retried"] += 1
        return self._in_flight

    def _send(self, batch: List[Tuple[str, str]]) -> List[PanopticonError]:
        body = ('{"traces":[' + ",".join(text for _, text in batch) + "]}").encode("utf-8")
        try:
            answer = self._transport.request("POST", "/panopticon/traces", body, self.request_timeout, slot=SENDER_SLOT)
        except TransportError as err:
            return self._transient(batch, None, PanopticonError("trace batch not sent: %s" % err, err.code))
        except Exception as err:  # noqa: BLE001 - the delivery thread must survive anything
            return self._transient(batch, None, PanopticonError("trace batch not sent: %r" % (err,), "network"))
        results = answer.body.get("results") if isinstance(answer.body, dict) else None
        if answer.status in (200, 207) and isinstance(results, list) and len(results) == len(batch):
            return self._acknowledged(batch, results, answer.status)
        if answer.status == 413 and len(batch) > 1:
            # Too big for the server: put it back and send it in halves.
            with self._cond:
                self._batch_limit = max(1, len(batch) // 2)
                self._queue.extendleft(reversed(batch))
                self._in_flight = []
            return []
        if answer.status in REFUSED_STATUSES:
            # The batch itself is refused (400 / 413 / 415): sending it again cannot change that.
            ids = [eid for eid, _ in batch]
            with self._cond:
                self._counters["dropped_rejected"] += len(batch)
                for eid in ids:
                    self._failed.discard(eid)
                self._settle_locked(ids)
            return [PanopticonError("trace batch of %d refused: %d %s" % (len(batch), answer.status, answer.error_code()), answer.error_code(), answer.status)]
        # 401/403/404/429/5xx, and anything unexpected (a proxy's HTML page): keep and retry.
        return self._transient(batch, retry_after_seconds(answer.headers),
                               PanopticonError("trace batch failed: %d %s" % (answer.status, answer.error_code()), answer.error_code(), answer.status))

    def _acknowledged(self, batch: List[Tuple[str, str]], results: List[Any], status: int) -> List[PanopticonError]:
        errors: List[PanopticonError] = []
        ids = []
        with self._cond:
            for (eid, _), r in zip(batch, results):
                ids.append(eid)
                self._failed.discard(eid)
                outcome = r.get("status") if isinstance(r, dict) else None
                if outcome == "accepted":
                    self._counters["sent"] += 1
                elif outcome == "duplicate":
                    self._counters["sent"] += 1
                    self._counters["duplicate"] += 1
                else:
                    self._counters["dropped_rejected"] += 1
                    err = r.get("error") if isinstance(r, dict) else None
                    code = err.get("code") if isinstance(err, dict) and isinstance(err.get("code"), str) else "rejected"
                    detail = dumps(err.get("fields")) if isinstance(err, dict) and err.get("fields") is not None else ""
                    errors.append(PanopticonError("trace %s rejected: %s %s" % (eid, code, detail), code, status))
            self._settle_locked(ids)
            self._batch_limit = self.batch_size
            if self._outage_logged:
                self._outage_logged = False
                log.info("panopticon: delivery recovered")
        return errors

    def _settle_locked(self, ids: List[str]) -> None:
        self._in_flight = []
        self._consecutive_failures = 0
        if self._spool is not None:
            self._spool.done(ids)
        if self._buffered_locked() == 0:
            self._cond.notify_all()

    def _transient(self, batch: List[Tuple[str, str]], retry_after: Optional[float], err: PanopticonError) -> List[PanopticonError]:
        with self._cond:
            self._counters["failed_requests"] += 1
            for eid, _ in batch:
                self._failed.add(eid)
            # Back at the head, in their original order: the order is kept, and if the buffer
            # filled up meanwhile, these oldest traces are the first to go.
            self._queue.extendleft(reversed(batch))
            self._in_flight = []
            errors = self._enforce_bound_locked()
            if self._stopping:
                return errors
            self._consecutive_failures += 1
            delay = max(retry_after or 0.0, self._backoff(self._consecutive_failures))
            self._retry_at = time.monotonic() + delay
            first = not self._outage_logged
            self._outage_logged = True
        if first and self._on_error is None:
            log.warning("panopticon: trace delivery failing, will retry (%s)", err.message)
        return [err] + errors


class _ApprovalPoll:
    """The state of one wait for approval, shared by the sync and async loops."""

    def __init__(self, client: Panopticon, approval_id: Optional[str], timeout: float) -> None:
        self.client = client
        self.approval_id = approval_id
        self.deadline = time.monotonic() + max(0.0, float(timeout))
        self.last: Optional[Dict[str, Any]] = None
        self.failures = 0
        self.last_error = ""

    def next_request(self) -> Union[ApprovalResult, Tuple[str, int]]:
        if not isinstance(self.approval_id, str) or self.approval_id == "":
            return ApprovalResult(status="error", approved=False, error="no_approval_id")
        remaining = self.deadline - time.monotonic()
        wait = max(0, min(30, int(remaining)))
        return "/panopticon/approvals/%s?wait=%d" % (quote(self.approval_id, safe=""), wait), wait

    def on_answer(self, answer: HttpAnswer) -> Union[ApprovalResult, float]:
        if answer.status == 200 and isinstance(answer.body, dict):
            self.failures = 0
            self.last = answer.body
            status = answer.body.get("status")
            if status in ("approved", "denied", "expired"):
                return ApprovalResult(status=status, approved=status == "approved", approval=answer.body)
            return self._after(0.0 if self.deadline - time.monotonic() >= 1 else min(0.25, max(0.0, self.deadline - time.monotonic())))
        if answer.status == 429 or answer.status >= 500:
            self.failures += 1
            self.last_error = answer.error_code()
            return self._after(max(retry_after_seconds(answer.headers) or 0.0, self.client._backoff(self.failures)))
        return ApprovalResult(status="error", approved=False, approval=self.last, error=answer.error_code())

    def on_failure(self, code: str) -> Union[ApprovalResult, float]:
        self.failures += 1
        self.last_error = code
        return self._after(self.client._backoff(self.failures))

    def _after(self, delay: float) -> Union[ApprovalResult, float]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            if self.failures > 0:
                return ApprovalResult(status="unreachable", approved=False, approval=self.last, error=self.last_error)
            return ApprovalResult(status="pending", approved=False, approval=self.last)
        return min(delay, remaining)
