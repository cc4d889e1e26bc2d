"""``@pano.tool``: governs any function, sync or async, and stays transparent to frameworks.

Each call is checked with the AI Guard, then run, timed and traced:

- ``deny``: the function does not run; ``PanopticonDenied`` is raised; the trace is ``denied``.
- ``require_approval``: the call waits (long poll) until a human decides, up to the approval's
  expiry or ``approval_timeout``; approved, it runs; otherwise ``PanopticonDenied`` is raised.
- run: ``ok``; an exception is traced ``error`` (``timeout`` for a ``TimeoutError``) and re-raised
  unchanged; with ``timeout`` (async functions) a call running longer is cancelled, traced
  ``timeout`` and ``PanopticonTimeout`` is raised.

The wrapper keeps what frameworks read to register a tool: ``__name__``, ``__doc__``,
``__wrapped__`` (so ``inspect.signature`` gives the function's own parameters), ``__annotations__``,
coroutine-ness (``inspect.iscoroutinefunction``), and ``__globals__``: the wrapper is built in the
function's own module namespace, so string annotations (``from __future__ import annotations``)
resolve there, as the MCP SDK's FastMCP does with ``fn.__globals__``.
"""
from __future__ import annotations

import asyncio
import datetime
import functools
import inspect
import time
import types
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Optional, Tuple, Union

from ._json import OMIT, jsonable
from ._types import ApprovalResult, GuardDecision, PanopticonDenied, PanopticonTimeout, ToolCall
from ._uuid import uuid7

if TYPE_CHECKING:
    from ._client import Panopticon

__all__ = ["governed"]

PerCall = Union[str, None, Callable[[ToolCall], Optional[str]]]


def _resolve(option: PerCall, call: ToolCall) -> Optional[str]:
    value = option(call) if callable(option) else option
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError("expected a string or None, got %s" % type(value).__name__)
    return value


class _Governor:
    def __init__(self, client: "Panopticon", fn: Callable[..., Any], name: Optional[str], scope: PerCall, user_sub: PerCall,
                 session_id: PerCall, send_arguments: bool, exclude_arguments: Iterable[str], approval_timeout: Optional[float],
                 timeout: Optional[float], on_approval_required: Optional[Callable[..., Any]], attributes: Optional[Dict[str, Any]],
                 denied_error: Optional[Callable[[PanopticonDenied], BaseException]] = None) -> None:
        self.client = client
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        self.scope = scope
        self.user_sub = user_sub
        self.session_id = session_id
        self.send_arguments = send_arguments
        self.exclude = frozenset(exclude_arguments)
        self.approval_timeout = approval_timeout
        self.timeout = timeout
        self.on_approval_required = on_approval_required
        self.attributes = dict(attributes or {})
        self.denied_error = denied_error
        try:
            self.signature: Optional[inspect.Signature] = inspect.signature(fn)
        except (TypeError, ValueError):
            self.signature = None

    def denied(self, err: PanopticonDenied) -> BaseException:
        """The exception a refusal raises: ``PanopticonDenied``, or what ``denied_error`` makes of it."""
        if self.denied_error is None:
            return err
        try:
            converted = self.denied_error(err)
        except Exception:  # noqa: BLE001 - a broken converter must not let the call through
            return err
        if isinstance(converted, BaseException):
            converted.__cause__ = err
            return converted
        return err

    # --- before the call ------------------------------------------------------------------------

    def prepare(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[ToolCall, Optional[Dict[str, Any]]]:
        if self.signature is not None:
            bound = self.signature.bind(*args, **kwargs)  # a wrong call raises TypeError, as the function would
            bound.apply_defaults()
            arguments: Dict[str, Any] = dict(bound.arguments)
            for pname, param in self.signature.parameters.items():
                if param.kind is inspect.Parameter.VAR_KEYWORD and isinstance(arguments.get(pname), dict):
                    extra = arguments.pop(pname)
                    for k, v in extra.items():
                        arguments.setdefault(k, v)
                elif param.kind is inspect.Parameter.VAR_POSITIONAL and pname in arguments:
                    arguments[pname] = list(arguments[pname])
        else:
            arguments = dict(kwargs)
            if args:
                arguments["args"] = list(args)
        call = ToolCall(tool=self.name, arguments=arguments)
        guard_args: Optional[Dict[str, Any]] = None
        if self.send_arguments:
            guard_args = {}
            for k, v in arguments.items():
                if k in self.exclude:
                    continue
                j = jsonable(v, unknown="omit")
                if j is not OMIT:
                    guard_args[k] = j
        return call, guard_args

    def who(self, call: ToolCall) -> Tuple[str, Optional[str], Optional[str]]:
        scope = _resolve(self.scope, call) or self.client.default_scope
        return scope[:256], _resolve(self.user_sub, call), _resolve(self.session_id, call)

    def record(self, status: str, started: datetime.datetime, t0: float, event_id: str, scope: str, user_sub: Optional[str],
               session_id: Optional[str], error: Optional[str], check_id: Optional[str], extra: Dict[str, Any]) -> None:
        attributes = dict(self.attributes)
        attributes.update(extra)
        self.client.trace(self.name, scope, status, duration_ms=(time.perf_counter() - t0) * 1000, started_at=started, event_id=event_id,
                          user_sub=user_sub[:256] if user_sub else None, session_id=session_id[:256] if session_id else None,
                          error_message=error, attributes=attributes or None, check_id=check_id)

    def approval_deadline(self, decision: GuardDecision) -> float:
        if self.approval_timeout is not None:
            return self.approval_timeout
        expires = decision.approval.expires_at if decision.approval is not None else ""
        try:
            at = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00"))
            return max(0.0, (at - datetime.datetime.now(datetime.timezone.utc)).total_seconds() + 1.0)
        except ValueError:
            return 300.0

    def notify_approval(self, decision: GuardDecision) -> None:
        if self.on_approval_required is not None and decision.approval is not None:
            try:
                self.on_approval_required(self.name, decision.approval, decision)
            except Exception:  # noqa: BLE001 - a notification hook must not change the outcome
                import logging

                logging.getLogger("panopticon").exception("panopticon: on_approval_required raised")

    # --- the call, sync -------------------------------------------------------------------------

    def call_sync(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        call, guard_args = self.prepare(args, kwargs)
        started = datetime.datetime.now(datetime.timezone.utc)
        t0 = time.perf_counter()
        event_id = uuid7()
        extra: Dict[str, Any] = {}
        try:
            scope, user_sub, session_id = self.who(call)
        except Exception as err:  # noqa: BLE001 - fail closed on a broken resolver
            return self._resolver_failed(err, started, t0, event_id)
        decision = self.client.check(self.name, guard_args, scope=scope, user_sub=user_sub, session_id=session_id, event_id=event_id)
        if decision.denied or decision.decision not in ("allow", "require_approval"):
            self.record("denied", started, t0, event_id, scope, user_sub, session_id, "%s: %s" % (decision.reason, decision.message or decision.reason), decision.check_id, extra)
            raise self.denied(PanopticonDenied(self.name, decision))
        if decision.requires_approval:
            if decision.approval is None:
                self.record("denied", started, t0, event_id, scope, user_sub, session_id, "require_approval without an approval request", decision.check_id, extra)
                raise self.denied(PanopticonDenied(self.name, decision, message="Denied by Panopticon: approval required but no approval request was opened"))
            extra["panopticon.approval_id"] = decision.approval.id
            self.notify_approval(decision)
            outcome = self.client.wait_for_approval(decision.approval.id, self.approval_deadline(decision))
            if not outcome.approved:
                self._not_approved(outcome, decision, started, t0, event_id, scope, user_sub, session_id, extra)
        run_started = datetime.datetime.now(datetime.timezone.utc)
        t1 = time.perf_counter()
        try:
            result = self.fn(*args, **kwargs)
        except BaseException as err:
            self.record(_status_of(err), run_started, t1, event_id, scope, user_sub, session_id, _describe(err), decision.check_id, extra)
            raise
        self.record("ok", run_started, t1, event_id, scope, user_sub, session_id, None, decision.check_id, extra)
        return result

    # --- the call, async ------------------------------------------------------------------------

    async def call_async(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        call, guard_args = self.prepare(args, kwargs)
        started = datetime.datetime.now(datetime.timezone.utc)
        t0 = time.perf_counter()
        event_id = uuid7()
        extra: Dict[str, Any] = {}
        try:
            scope, user_sub, session_id = self.who(call)
        except Exception as err:  # noqa: BLE001 - fail closed on a broken resolver
            return self._resolver_failed(err, started, t0, event_id)
        decision = await self.client.check_async(self.name, guard_args, scope=scope, user_sub=user_sub, session_id=session_id, event_id=event_id)
        if decision.denied or decision.decision not in ("allow", "require_approval"):
            self.record("denied", started, t0, event_id, scope, user_sub, session_id, "%s: %s" % (decision.reason, decision.message or decision.reason), decision.check_id, extra)
            raise self.denied(PanopticonDenied(self.name, decision))
        if decision.requires_approval:
            if decision.approval is None:
                self.record("denied", started, t0, event_id, scope, user_sub, session_id, "require_approval without an approval request", decision.check_id, extra)
                raise self.denied(PanopticonDenied(self.name, decision, message="Denied by Panopticon: approval required but no approval request was opened"))
            extra["panopticon.approval_id"] = decision.approval.id
            self.notify_approval(decision)
            outcome = await self.client.wait_for_approval_async(decision.approval.id, self.approval_deadline(decision))
            if not outcome.approved:
                self._not_approved(outcome, decision, started, t0, event_id, scope, user_sub, session_id, extra)
        run_started = datetime.datetime.now(datetime.timezone.utc)
        t1 = time.perf_counter()
        try:
            if self.timeout is None:
                result = await self.fn(*args, **kwargs)
            else:
                try:
                    result = await asyncio.wait_for(self.fn(*args, **kwargs), self.timeout)
                except asyncio.TimeoutError:
                    raise PanopticonTimeout(self.name, self.timeout) from None
        except PanopticonTimeout as err:
            self.record("timeout", run_started, t1, event_id, scope, user_sub, session_id, str(err), decision.check_id, extra)
            raise
        except BaseException as err:
            self.record(_status_of(err), run_started, t1, event_id, scope, user_sub, session_id, _describe(err), decision.check_id, extra)
            raise
        self.record("ok", run_started, t1, event_id, scope, user_sub, session_id, None, decision.check_id, extra)
        return result

    def _not_approved(self, outcome: ApprovalResult, decision: GuardDecision, started: datetime.datetime, t0: float, event_id: str, scope: str,
                      user_sub: Optional[str], session_id: Optional[str], extra: Dict[str, Any]) -> None:
        comment = (outcome.approval or {}).get("comment")
        why = "approval %s%s" % (outcome.status, ": %s" % comment if isinstance(comment, str) and comment else "")
        self.record("denied", started, t0, event_id, scope, user_sub, session_id, why, decision.check_id, extra)
        raise self.denied(PanopticonDenied(self.name, decision, outcome))

    def _resolver_failed(self, err: Exception, started: datetime.datetime, t0: float, event_id: str) -> Any:
        message = "scope/user_sub/session_id could not be determined: %s" % _describe(err)
        decision = GuardDecision(decision="deny", reason="resolver_error", message=message, source="fail_closed")
        scope = self.scope if isinstance(self.scope, str) and self.scope else self.client.default_scope
        self.record("denied", started, t0, event_id, scope, None, None, "resolver_error: " + message, None, {})
        raise self.denied(PanopticonDenied(self.name, decision)) from err


def _status_of(err: BaseException) -> str:
    return "timeout" if isinstance(err, (TimeoutError, asyncio.TimeoutError)) else "error"


def _describe(err: BaseException) -> str:
    text = str(err)
    return ("%s: %s" % (type(err).__name__, text) if text else type(err).__name__)[:4096]


def _is_async(fn: Callable[..., Any]) -> bool:
    target = fn
    while isinstance(target, functools.partial):
        target = target.func
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None))


# The wrapper bodies refer to nothing but their closure, so they can be rebuilt with the governed
# function's globals (see the module docstring).
def _sync_wrapper(call: Callable[[Tuple[Any, ...], Dict[str, Any]], Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return call(args, kwargs)

    return wrapper


def _async_wrapper(call: Callable[[Tuple[Any, ...], Dict[str, Any]], Any]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await call(args, kwargs)

    return wrapper


def governed(
    client: "Panopticon",
    fn: Callable[..., Any],
    *,
    name: Optional[str] = None,
    scope: PerCall = None,
    user_sub: PerCall = None,
    session_id: PerCall = None,
    send_arguments: bool = True,
    exclude_arguments: Iterable[str] = (),
    approval_timeout: Optional[float] = None,
    timeout: Optional[float] = None,
    on_approval_required: Optional[Callable[..., Any]] = None,
    attributes: Optional[Dict[str, Any]] = None,
    denied_error: Optional[Callable[[PanopticonDenied], BaseException]] = None,
) -> Callable[..., Any]:
    """Returns ``fn`` governed by ``client`` (what ``@client.tool(...)`` does).

    - ``name``: the tool name checked and traced [``fn.__name__``]; give the same name as your
      framework when you rename the tool there (``@mcp.tool(name=...)``).
    - ``scope``, ``user_sub``, ``session_id``: a string for every call, or a callable receiving a
      ``ToolCall`` (``.tool``, ``.arguments``) and returning a string or None, evaluated at each
      call (e.g. from the request context). ``scope`` falls back to the client's
      ``default_scope``. A callable that raises denies the call (fail closed).
    - ``send_arguments``: send the call's arguments to the guard so policies can match on them
      [True]. Arguments with no JSON form (a framework's context object) are left out, and so are
      the parameters named in ``exclude_arguments``.
    - ``approval_timeout``: seconds to wait for a human [until the approval request expires].
    - ``timeout``: seconds an async function may run before it is cancelled [no limit].
    - ``on_approval_required(tool, approval_ref, decision)``: called when a call starts waiting.
    - ``attributes``: added to every trace of this tool.
    - ``denied_error``: makes the exception raised for a refusal from the ``PanopticonDenied``
      (kept as its ``__cause__``), e.g. ``lambda e: ToolError(str(e))`` so FastMCP shows the
      reason to the client even with ``mask_error_details=True``.
    """
    if not callable(fn):
        raise TypeError("@tool needs a function, got %r" % (fn,))
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError("@tool cannot govern generator functions (%s): return a value instead" % getattr(fn, "__name__", fn))
    for label, value in (("scope", scope), ("user_sub", user_sub), ("session_id", session_id)):
        if value is not None and not callable(value) and not (isinstance(value, str) and value != ""):
            raise TypeError("%s must be a non-empty string, a callable or None, got %r" % (label, value))
    if name is not None and not (isinstance(name, str) and 1 <= len(name) <= 256):
        raise TypeError("name must be a string of 1-256 characters")
    for label, value in (("approval_timeout", approval_timeout), ("timeout", timeout)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise TypeError("%s must be a positive number of seconds or None, got %r" % (label, value))
    is_async = _is_async(fn)
    if timeout is not None and not is_async:
        raise TypeError("timeout applies to async functions only: a running thread cannot be stopped")
    if isinstance(exclude_arguments, str):
        exclude_arguments = (exclude_arguments,)
    if attributes is not None and not isinstance(attributes, dict):
        raise TypeError("attributes must be a dict")
    if on_approval_required is not None and not callable(on_approval_required):
        raise TypeError("on_approval_required must be callable")
    if denied_error is not None and not callable(denied_error):
        raise TypeError("denied_error must be callable")

    governor = _Governor(client, fn, name, scope, user_sub, session_id, bool(send_arguments), exclude_arguments, approval_timeout,
                         timeout, on_approval_required, attributes, denied_error)
    wrapper = (_async_wrapper if is_async else _sync_wrapper)(governor.call_async if is_async else governor.call_sync)
    fn_globals = getattr(fn, "__globals__", None)
    if isinstance(fn_globals, dict):
        wrapper = types.FunctionType(wrapper.__code__, fn_globals, wrapper.__name__, None, wrapper.__closure__)
    try:
        functools.update_wrapper(wrapper, fn)
    except AttributeError:  # pragma: no cover - an object without a writable __dict__
        pass
    wrapper.__panopticon_tool__ = governor.name  # type: ignore[attr-defined]
    return wrapper
