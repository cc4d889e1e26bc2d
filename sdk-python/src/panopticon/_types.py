"""What the SDK returns and raises. Wire names are those of docs/api.md."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional

__all__ = [
    "ApprovalRef",
    "ApprovalResult",
    "CloseResult",
    "GuardDecision",
    "PanopticonDenied",
    "PanopticonError",
    "PanopticonTimeout",
    "Stats",
    "ToolCall",
    "TRACE_STATUSES",
]

TRACE_STATUSES = ("ok", "error", "denied", "timeout")
DECISIONS = ("allow", "deny", "require_approval")


class PanopticonError(Exception):
    """A failure the caller never sees raised: it is handed to ``on_error`` (and logged).

    ``code`` is the server's error code, or ``network``, ``timeout``, ``overflow``, ``spool``,
    ``invalid_trace``, ``closed``; ``status`` the HTTP status when there was one.
    """

    def __init__(self, message: str, code: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def __repr__(self) -> str:
        return "PanopticonError(%r, code=%r, status=%r)" % (self.message, self.code, self.status)


@dataclasses.dataclass(frozen=True)
class ApprovalRef:
    """The approval request a ``require_approval`` decision opened."""

    id: str
    poll_url: str
    expires_at: str


@dataclasses.dataclass(frozen=True)
class GuardDecision:
    """The answer of ``check()``.

    ``source`` is ``server`` when the guard answered, ``fail_open`` / ``fail_closed`` when the SDK
    decided because the guard could not be asked (``reason`` is then ``unreachable``) or refused
    the request (``reason`` is the error code, e.g. ``pak_revoked``; always a deny).
    """

    decision: str
    reason: str
    message: str
    source: str
    check_id: Optional[str] = None
    rule_id: Optional[str] = None
    policy_version: Optional[int] = None
    approval: Optional[ApprovalRef] = None
    grant_id: Optional[str] = None
    retry_after_seconds: Optional[int] = None

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @property
    def denied(self) -> bool:
        return self.decision == "deny"

    @property
    def requires_approval(self) -> bool:
        return self.decision == "require_approval"


@dataclasses.dataclass(frozen=True)
class ApprovalResult:
    """The outcome of ``wait_for_approval()``. Only ``approved`` means: run the call.

    ``status``: ``approved``, ``denied``, ``expired``; ``pending`` (still undecided at the
    deadline); ``unreachable`` (the server could not be asked before the deadline); ``error`` (the
    server refused the poll, e.g. ``approval_not_found``: see ``error``).
    """

    status: str
    approved: bool
    approval: Optional[Dict[str, Any]] = None
    error: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Stats:
    """Delivery counters (``Panopticon.stats()``)."""

    #: Traces waiting in memory, including the batch in flight.
    buffered: int
    #: Traces the server acknowledged (``accepted`` or ``duplicate``).
    sent: int
    #: Of ``sent``, those the server already had (a resend after a lost acknowledgement, a spool).
    duplicate: int
    #: Traces sent again after a transient failure (one per trace per retry).
    retried: int
    #: Traces given up: the sum of the three below.
    dropped: int
    #: Oldest traces pushed out of the full buffer.
    dropped_overflow: int
    #: Traces refused as invalid, locally or by the server: resending cannot help.
    dropped_rejected: int
    #: Traces still unsent when ``close()``'s deadline passed without a spool to keep them.
    dropped_shutdown: int
    #: Requests that failed transiently (network, timeout, 429, 5xx, 401/403...).
    failed_requests: int


@dataclasses.dataclass(frozen=True)
class CloseResult:
    """``close()``: whether everything was delivered, and how many traces were left (in the spool
    when there is one, else dropped and counted as ``dropped_shutdown``)."""

    delivered: bool
    pending: int


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """A call of a governed function, as the ``scope`` / ``user_sub`` / ``session_id`` callables
    of ``Panopticon.tool()`` see it. ``arguments`` are the bound arguments by parameter name,
    defaults applied, as passed (including objects such as a FastMCP ``Context``)."""

    tool: str
    arguments: Mapping[str, Any]


class PanopticonDenied(Exception):
    """Raised by a governed function (``@pano.tool``) instead of running it.

    ``decision`` is the guard's answer; for a call that needed approval, ``approval`` is the
    outcome of waiting (``denied``, ``expired``, ``pending``, ``unreachable``, ``error``).
    """

    def __init__(self, tool: str, decision: GuardDecision, approval: Optional[ApprovalResult] = None, message: Optional[str] = None) -> None:
        self.tool = tool
        self.decision = decision
        self.approval = approval
        self.reason = decision.reason
        if message is None:
            if approval is None:
                message = "Denied by Panopticon: %s" % (decision.message or decision.reason)
            else:
                comment = (approval.approval or {}).get("comment") if approval.approval else None
                ref = decision.approval.id if decision.approval is not None else "?"
                message = "Not approved (%s)%s. Approval %s: %s" % (
                    approval.status,
                    ": %s" % comment if isinstance(comment, str) and comment else "",
                    ref,
                    decision.message or decision.reason,
                )
        super().__init__(message)
        self.message = message


class PanopticonTimeout(TimeoutError):
    """Raised by a governed async function that ran longer than its ``timeout``."""

    def __init__(self, tool: str, timeout: float) -> None:
        super().__init__("Tool %s timed out after %g s" % (tool, timeout))
        self.tool = tool
        self.timeout = timeout
