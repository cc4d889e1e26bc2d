"""An MCP server module as users write them: postponed annotations and a type of its own."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List

from fastmcp_like import Context


@dataclasses.dataclass
class Invoice:
    customer: str
    amount: int


def build(pano: Any, mcp: Any, calls: List[Dict[str, Any]]) -> Dict[str, Callable[..., Any]]:
    @mcp.tool()
    @pano.tool(scope="billing:write", user_sub=lambda call: call.arguments["ctx"].sub,
               session_id=lambda call: call.arguments["ctx"].session_id)
    async def create_invoice(customer: str, amount: int, ctx: Context, note: str = "") -> Invoice:
        """Creates an invoice."""
        calls.append({"customer": customer, "amount": amount, "ctx": ctx, "note": note})
        return Invoice(customer, amount)

    @mcp.tool()
    @pano.tool(scope="billing:read")
    def list_invoices(customer: str, limit: int = 10) -> List[Invoice]:
        """Lists invoices."""
        calls.append({"customer": customer, "limit": limit})
        return [Invoice(customer, 1)]

    return {"create_invoice": create_invoice, "list_invoices": list_invoices}
