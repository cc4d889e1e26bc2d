"""Panopticon for Python agents and MCP servers: traces, the AI Guard, human approvals.

    from panopticon import Panopticon

    pano = Panopticon("http://127.0.0.1:8080", pak="pano_pak_...", client_id="logi_...")

    @pano.tool(scope="agent:read")
    def search(query: str) -> str:
        ...

Standard library only. See README.md for the guarantees and every option.
"""
from __future__ import annotations

from ._client import Panopticon, format_started_at
from ._sign import signature_header
from ._tool import governed
from ._types import (
    ApprovalRef,
    ApprovalResult,
    CloseResult,
    GuardDecision,
    PanopticonDenied,
    PanopticonError,
    PanopticonTimeout,
    Stats,
    ToolCall,
)
from ._uuid import uuid7

__version__ = "0.1.0"

__all__ = [
    "ApprovalRef",
    "ApprovalResult",
    "CloseResult",
    "GuardDecision",
    "Panopticon",
    "PanopticonDenied",
    "PanopticonError",
    "PanopticonTimeout",
    "Stats",
    "ToolCall",
    "__version__",
    "format_started_at",
    "governed",
    "signature_header",
    "uuid7",
]
