"""@pano.tool under an MCP server's @mcp.tool(), against a real server on each engine: the
registration sees the function's own name, docstring, parameters (the Context one recognised by
its annotation, postponed annotations resolved in the user's module), and coroutine-ness; calls
made the way the server makes them are checked, run and traced, with user_sub and session_id
taken from the request context."""
from __future__ import annotations

import asyncio
import inspect
from typing import Any, Dict, List

import fastmcp_like
import tools_module
from support import per_engine, prestart, shared

from panopticon import Panopticon, PanopticonDenied

prestart()  # the servers boot while tests that need none run


class _FastMcp:
    engine = ""

    def setUp(self) -> None:
        self.server, self.op = shared(self.engine)
        self.app = self.op.app()
        self.pano = Panopticon(self.server.url, self.app.pak, self.app.client_id, flush_at_exit=False)
        self.addCleanup(self.pano.close)
        self.mcp = fastmcp_like.Server()
        self.calls: List[Dict[str, Any]] = []
        self.fns = tools_module.build(self.pano, self.mcp, self.calls)

    def test_registration_sees_the_function_not_the_wrapper(self) -> None:
        create, listing = self.mcp.tools["create_invoice"], self.mcp.tools["list_invoices"]
        self.assertEqual((create.description, listing.description), ("Creates an invoice.", "Lists invoices."))
        self.assertEqual(create.context_kwarg, "ctx")
        self.assertEqual(create.parameters, ["customer", "amount", "note"])
        self.assertEqual(listing.parameters, ["customer", "limit"])
        self.assertIs(create.signature.return_annotation, tools_module.Invoice)  # resolved in tools_module
        self.assertIs(create.hints["amount"], int)
        self.assertEqual((create.is_async, listing.is_async), (True, False))
        self.assertTrue(inspect.iscoroutinefunction(self.fns["create_invoice"]))
        self.assertIs(self.fns["create_invoice"].__globals__, vars(tools_module))
        self.assertEqual(self.fns["create_invoice"].__panopticon_tool__, "create_invoice")

    def test_calls_are_governed_with_user_and_session_from_the_context(self) -> None:
        self.op.rule(self.app.client_id, name="big", effect="deny", reason="over the limit",
                     match={"tools": ["create_invoice"], "arguments": [{"path": "amount", "op": "gt", "value": 1000}]})
        self.op.rule(self.app.client_id, name="mallory", effect="deny", reason="blocked user", match={"users": ["mallory"]})
        ctx = fastmcp_like.Context(session_id="mcp-session-1", sub="alice")

        async def scenario() -> None:
            invoice = await self.mcp.tools["create_invoice"].run({"customer": "acme", "amount": 200}, ctx)
            self.assertEqual(invoice, tools_module.Invoice("acme", 200))
            with self.assertRaises(PanopticonDenied) as big:
                await self.mcp.tools["create_invoice"].run({"customer": "acme", "amount": 5000}, ctx)
            self.assertIn("over the limit", str(big.exception))
            with self.assertRaises(PanopticonDenied):
                await self.mcp.tools["create_invoice"].run({"customer": "acme", "amount": 1}, fastmcp_like.Context("s-2", "mallory"))
            self.assertEqual(await self.mcp.tools["list_invoices"].run({"customer": "acme"}, ctx), [tools_module.Invoice("acme", 1)])

        asyncio.run(scenario())
        self.assertEqual([c["customer"] for c in self.calls], ["acme", "acme"])  # the denied calls never ran
        self.assertIs(self.calls[0]["ctx"], ctx)
        self.assertTrue(self.pano.flush(10))
        traces = sorted(self.op.traces(self.app.client_id), key=lambda t: t["received_at"] + t["event_id"])
        summary = sorted((t["tool"], t["status"], t["user_sub"], t["session_id"], t["scope_used"]) for t in traces)
        self.assertEqual(summary, sorted([
            ("create_invoice", "ok", "alice", "mcp-session-1", "billing:write"),
            ("create_invoice", "denied", "alice", "mcp-session-1", "billing:write"),
            ("create_invoice", "denied", "mallory", "s-2", "billing:write"),
            ("list_invoices", "ok", None, None, "billing:read"),
        ]))
        checks = self.op.ok("GET", "/api/apps/%s/checks?limit=10" % self.app.client_id)["checks"]
        self.assertEqual(len(checks), 4)


globals().update(per_engine(_FastMcp))
