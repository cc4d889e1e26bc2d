"""How MCP servers register a Python function as a tool, reduced to what a decorator must survive.

FastMCP cannot be installed here (no PyPI), so this mirrors the steps of the MCP SDK's
``mcp.server.fastmcp`` ``Tool.from_function`` / ``func_metadata`` and of FastMCP 2's
``ParsedFunction`` that read the function: its ``__name__`` and ``__doc__``; its parameters through
``inspect.signature`` (which follows ``__wrapped__``) with string annotations evaluated in
``fn.__globals__`` (``_get_typed_signature``); the ``Context`` parameter found by its annotation
and injected by keyword; ``inspect.iscoroutinefunction`` to decide whether to await; the call made
with keyword arguments.
"""
from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, Dict


class Context:
    """Stands for fastmcp.Context / mcp.server.fastmcp.Context."""

    def __init__(self, session_id: str, sub: str) -> None:
        self.session_id = session_id
        self.sub = sub


def typed_signature(fn: Callable[..., Any]) -> inspect.Signature:
    sig = inspect.signature(fn)
    globalns = getattr(fn, "__globals__", {})
    params = []
    for p in sig.parameters.values():
        ann = p.annotation
        if isinstance(ann, str):
            ann = eval(ann, globalns, globalns)  # what ForwardRef evaluation does; NameError if unresolvable
        params.append(p.replace(annotation=ann))
    ret = sig.return_annotation
    if isinstance(ret, str):
        ret = eval(ret, globalns, globalns)
    return sig.replace(parameters=params, return_annotation=ret)


class Tool:
    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.description = inspect.getdoc(fn) or ""
        self.signature = typed_signature(fn)
        self.hints = typing.get_type_hints(fn)
        self.context_kwarg = next((n for n, p in self.signature.parameters.items()
                                   if inspect.isclass(p.annotation) and issubclass(p.annotation, Context)), None)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.parameters = [n for n in self.signature.parameters if n != self.context_kwarg]

    async def run(self, arguments: Dict[str, Any], context: Context) -> Any:
        kwargs = dict(arguments)
        for name, value in kwargs.items():  # argument validation against the annotations
            ann = self.signature.parameters[name].annotation
            if inspect.isclass(ann) and not isinstance(value, ann):
                raise TypeError("%s must be %s" % (name, ann.__name__))
        if self.context_kwarg is not None:
            kwargs[self.context_kwarg] = context
        result = self.fn(**kwargs)
        return await result if self.is_async else result


class Server:
    def __init__(self) -> None:
        self.tools: Dict[str, Tool] = {}

    def tool(self) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            t = Tool(fn)
            self.tools[t.name] = t
            return fn

        return register
