"""The AI Guard and approvals against a real server, on each engine: check() and check_async(),
wait_for_approval() sync and async, and @pano.tool end to end (deny, approve, deny after waiting,
errors, timeouts, user_sub / session_id / scope from the request context)."""
from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Any, Dict, List, Optional

from support import eventually, per_engine, prestart, request, shared

from panopticon import ApprovalRef, Panopticon, PanopticonDenied, PanopticonTimeout, ToolCall

prestart()  # the servers boot while tests that need none run


class _Guard:
    engine = ""

    def setUp(self) -> None:
        self.server, self.op = shared(self.engine)
        self.app = self.op.app()
        self.pano = Panopticon(self.server.url, self.app.pak, self.app.client_id, flush_interval=0.05, flush_at_exit=False)
        self.addCleanup(self.pano.close)

    def stored(self) -> List[Dict[str, Any]]:
        self.assertTrue(self.pano.flush(10))
        return self.op.traces(self.app.client_id)

    def test_allow_by_default_sync_and_async(self) -> None:
        d = self.pano.check("send_email", {"to": "eve@example.org"}, scope="mail:send", user_sub="alice")
        self.assertEqual((d.decision, d.reason, d.source, d.policy_version), ("allow", "default", "server", 0))
        self.assertTrue(d.allowed)
        self.assertRegex(d.check_id or "", r"^chk_[0-9A-Za-z]{16}$")
        a = asyncio.run(self.pano.check_async("send_email", {"to": "eve@example.org"}, scope="mail:send"))
        self.assertEqual((a.decision, a.source), ("allow", "server"))
        self.assertNotEqual(a.check_id, d.check_id)
        checks = self.op.ok("GET", "/api/apps/%s/checks" % self.app.client_id)["checks"]
        self.assertEqual(len(checks), 2)

    def test_denied_call_does_not_run_raises_and_is_traced_denied_with_its_check(self) -> None:
        rule = self.op.rule(self.app.client_id, name="no deletes", effect="deny", reason="notes are kept forever", match={"tools": ["delete_note"]})
        ran: List[str] = []

        @self.pano.tool(scope="notes:write")
        def delete_note(note_id: str) -> str:
            ran.append(note_id)
            return "deleted"

        with self.assertRaises(PanopticonDenied) as caught:
            delete_note("n1")
        self.assertEqual(ran, [])
        err = caught.exception
        self.assertEqual(str(err), "Denied by Panopticon: notes are kept forever")
        self.assertEqual((err.tool, err.reason, err.decision.rule_id, err.approval), ("delete_note", "notes are kept forever", rule["id"], None))
        (trace,) = self.stored()
        self.assertEqual((trace["tool"], trace["status"], trace["scope_used"]), ("delete_note", "denied", "notes:write"))
        self.assertEqual(trace["check_id"], err.decision.check_id)
        self.assertEqual(trace["guard"]["decision"], "deny")
        self.assertEqual(trace["guard"]["rule_id"], rule["id"])
        self.assertIn("notes are kept forever", trace["error_message"])

    def test_kill_switch_denies_async_tools(self) -> None:
        self.op.ok("POST", "/api/apps/%s/kill" % self.app.client_id, {"reason": "incident 42"})

        @self.pano.tool(scope="web")
        async def search(q: str) -> str:
            return "results"

        with self.assertRaises(PanopticonDenied) as caught:
            asyncio.run(search("x"))
        self.assertEqual(caught.exception.reason, "kill_switch")
        self.assertIn("incident 42", str(caught.exception))
        self.assertEqual([t["status"] for t in self.stored()], ["denied"])

    def test_approval_then_run_sync_with_arguments_matched_by_the_rule(self) -> None:
        self.op.rule(self.app.client_id, name="big transfers", effect="require_approval",
                     match={"tools": ["transfer"], "arguments": [{"path": "amount", "op": "gt", "value": 1000}]})
        notified: List[ApprovalRef] = []

        class Unserialisable:  # a framework's context object: left out of the guard's arguments
            pass

        @self.pano.tool(scope="payments:write", on_approval_required=lambda tool, ref, decision: notified.append(ref))
        def transfer(amount: int, currency: str = "EUR", ctx: Any = None) -> str:
            return "sent %d %s" % (amount, currency)

        self.assertEqual(transfer(10, ctx=Unserialisable()), "sent 10 EUR")  # the rule does not match: no approval
        result: Dict[str, Any] = {}
        t = threading.Thread(target=lambda: result.setdefault("value", transfer(5000, ctx=Unserialisable())))
        t.start()
        pending = self.op.wait_pending_approval(self.app.client_id)
        self.assertEqual((pending["tool"], pending["scope"]), ("transfer", "payments:write"))
        self.op.ok("POST", "/api/approvals/%s/approve" % pending["id"], {"comment": "ok"})
        t.join(10)
        self.assertEqual(result["value"], "sent 5000 EUR")
        self.assertEqual([r.id for r in notified], [pending["id"]])
        traces = sorted(self.stored(), key=lambda x: x["started_at"])
        self.assertEqual([x["status"] for x in traces], ["ok", "ok"])
        self.assertIsNone(traces[0]["attributes"])
        self.assertEqual(traces[1]["attributes"], {"panopticon.approval_id": pending["id"]})
        self.assertEqual(traces[1]["guard"]["approval_id"], pending["id"])
        checks = self.op.ok("GET", "/api/apps/%s/checks" % self.app.client_id)["checks"]
        self.assertEqual(sorted(c["decision"] for c in checks), ["allow", "require_approval"])
        self.assertEqual({c["event_id"] for c in checks}, {x["event_id"] for x in traces})  # check and trace linked

    def test_approval_denied_async_raises_with_the_operators_comment(self) -> None:
        self.op.rule(self.app.client_id, name="deploys", effect="require_approval", match={"tools": ["deploy"]})
        ran: List[str] = []

        @self.pano.tool(scope="ops:write")
        async def deploy(service: str) -> str:
            ran.append(service)
            return "deployed"

        async def main() -> PanopticonDenied:
            task = asyncio.ensure_future(deploy("billing"))
            pending = await asyncio.get_running_loop().run_in_executor(None, self.op.wait_pending_approval, self.app.client_id)
            await asyncio.get_running_loop().run_in_executor(None, lambda: self.op.ok("POST", "/api/approvals/%s/deny" % pending["id"], {"comment": "not during the freeze"}))
            try:
                await task
            except PanopticonDenied as err:
                return err
            raise AssertionError("not denied")

        err = asyncio.run(main())
        self.assertEqual(ran, [])
        self.assertEqual(err.approval.status if err.approval else None, "denied")
        self.assertIn("Not approved (denied): not during the freeze", str(err))
        (trace,) = self.stored()
        self.assertEqual((trace["status"], trace["error_message"]), ("denied", "approval denied: not during the freeze"))

    def test_wait_for_approval_pending_at_deadline_then_approved_async(self) -> None:
        self.op.rule(self.app.client_id, name="all", effect="require_approval", match={"tools": ["refund"]})
        d = self.pano.check("refund", {"amount": 120}, scope="payments:write", user_sub="user-42")
        self.assertEqual(d.decision, "require_approval")
        self.assertIsNotNone(d.approval)
        t0 = time.monotonic()
        r = self.pano.wait_for_approval(d, timeout=1.2)
        self.assertEqual((r.status, r.approved), ("pending", False))
        self.assertGreaterEqual(time.monotonic() - t0, 1.1)
        self.assertEqual(r.approval["status"] if r.approval else None, "pending")

        async def main() -> Any:
            waiting = asyncio.ensure_future(self.pano.wait_for_approval_async(d.approval, timeout=20))  # type: ignore[arg-type]
            await asyncio.sleep(0.3)
            self.assertFalse(waiting.done())
            await asyncio.get_running_loop().run_in_executor(None, lambda: self.op.ok("POST", "/api/approvals/%s/approve" % d.approval.id, {}))  # type: ignore[union-attr]
            t1 = time.monotonic()
            result = await waiting
            return result, time.monotonic() - t1

        result, latency = asyncio.run(main())
        self.assertEqual((result.status, result.approved), ("approved", True))
        self.assertLess(latency, 2.0)  # answered by the long poll, not a later poll
        unknown = asyncio.run(self.pano.wait_for_approval_async("apr_0000000000000000", timeout=5))
        self.assertEqual((unknown.status, unknown.approved, unknown.error), ("error", False, "approval_not_found"))

    def test_what_the_guard_is_sent_as_arguments(self) -> None:
        import dataclasses

        self.op.ok("PUT", "/api/apps/%s/guard/settings" % self.app.client_id, {"keep_arguments": True})

        @dataclasses.dataclass
        class Address:
            city: str

        class Ctx:  # no JSON form: left out
            pass

        @self.pano.tool(scope="x", exclude_arguments=("password",))
        def sign_up(email: str, password: str, address: Address, ctx: Ctx, tags: tuple = ("new",), **extra: Any) -> str:
            return "ok"

        @self.pano.tool(scope="x", send_arguments=False)
        def secret(token: str) -> str:
            return "ok"

        sign_up("a@example.com", "hunter2", Address("Paris"), Ctx(), plan="pro")
        secret("s3cr3t")
        by_tool = {c["tool"]: c for c in self.op.ok("GET", "/api/apps/%s/checks" % self.app.client_id)["checks"]}
        self.assertEqual(by_tool["sign_up"]["arguments"], {"email": "a@example.com", "address": {"city": "Paris"}, "tags": ["new"], "plan": "pro"})
        self.assertIsNone(by_tool["secret"]["arguments"])

    def test_an_approval_nobody_answers_in_time_denies(self) -> None:
        self.op.rule(self.app.client_id, name="all", effect="require_approval", match={"tools": ["wipe"]})
        ran: List[str] = []

        @self.pano.tool(scope="ops:write", approval_timeout=0.5)
        def wipe() -> None:
            ran.append("wipe")

        t0 = time.monotonic()
        with self.assertRaises(PanopticonDenied) as caught:
            wipe()
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        self.assertEqual((ran, caught.exception.approval.status if caught.exception.approval else None), ([], "pending"))
        self.assertEqual([t["error_message"] for t in self.stored()], ["approval pending"])

    def test_a_refused_key_denies_even_when_failing_open(self) -> None:
        self.op.ok("POST", "/api/apps/%s/paks/rotate" % self.app.client_id, {"grace_seconds": 0})
        pano = Panopticon(self.server.url, self.app.pak, self.app.client_id, fail_mode="open", flush_at_exit=False)
        d = pano.check("search", scope="web")
        self.assertEqual((d.decision, d.reason, d.source), ("deny", "pak_revoked", "fail_closed"))
        d2 = asyncio.run(pano.check_async("search", scope="web"))
        self.assertEqual((d2.decision, d2.reason), ("deny", "pak_revoked"))
        pano.close(0.1)

    def test_user_sub_session_and_scope_come_from_the_request_context(self) -> None:
        self.op.rule(self.app.client_id, name="alice is suspended", effect="deny", reason="suspended", match={"users": ["alice"]})
        # What an MCP server has at hand during a call: a context variable set by its auth layer
        # (FastMCP's get_access_token()) and a context object passed to the tool.
        current_token: contextvars.ContextVar[Optional[Dict[str, Any]]] = contextvars.ContextVar("token", default=None)

        class Ctx:
            def __init__(self, session: str) -> None:
                self.session_id = session

        def sub(call: ToolCall) -> Optional[str]:
            token = current_token.get()
            return token["claims"]["sub"] if token else None

        @self.pano.tool(user_sub=sub, session_id=lambda call: call.arguments["ctx"].session_id,
                        scope=lambda call: " ".join(current_token.get()["scopes"]))  # type: ignore[index]
        async def read_file(path: str, ctx: Ctx) -> str:
            return "contents of " + path

        async def as_user(who: str, session: str) -> Any:
            current_token.set({"claims": {"sub": who}, "scopes": ["files:read", "files:list"]})
            return await read_file("/etc/motd", Ctx(session))

        self.assertEqual(asyncio.run(as_user("bob", "s-1")), "contents of /etc/motd")
        with self.assertRaises(PanopticonDenied):
            asyncio.run(as_user("alice", "s-2"))
        by_user = {t["user_sub"]: t for t in self.stored()}
        self.assertEqual(by_user["bob"]["status"], "ok")
        self.assertEqual(by_user["bob"]["session_id"], "s-1")
        self.assertEqual(by_user["bob"]["scope_used"], "files:read files:list")
        self.assertEqual(by_user["alice"]["status"], "denied")
        self.assertEqual(by_user["alice"]["session_id"], "s-2")

    def test_errors_and_timeouts_are_traced_and_the_exception_is_the_functions(self) -> None:
        boom = ValueError("bad input")

        @self.pano.tool(scope="x")
        def fails() -> None:
            raise boom

        @self.pano.tool(scope="x")
        def times_out() -> None:
            raise TimeoutError("upstream took too long")

        @self.pano.tool(scope="x", timeout=0.2)
        async def slow() -> str:
            await asyncio.sleep(5)
            return "late"

        with self.assertRaises(ValueError) as caught:
            fails()
        self.assertIs(caught.exception, boom)
        with self.assertRaises(TimeoutError):
            times_out()
        t0 = time.monotonic()
        with self.assertRaises(PanopticonTimeout):
            asyncio.run(slow())
        self.assertLess(time.monotonic() - t0, 2)
        by_tool = {t["tool"]: t for t in self.stored()}
        self.assertEqual((by_tool["fails"]["status"], by_tool["fails"]["error_message"]), ("error", "ValueError: bad input"))
        self.assertEqual((by_tool["times_out"]["status"], by_tool["times_out"]["error_message"]), ("timeout", "TimeoutError: upstream took too long"))
        self.assertEqual(by_tool["slow"]["status"], "timeout")
        self.assertGreaterEqual(by_tool["slow"]["duration_ms"], 190)
        self.assertTrue(all(t["check_id"] for t in by_tool.values()))

    def test_decorated_ok_call_traces_its_duration_and_time(self) -> None:
        @self.pano.tool(scope="agent:read", attributes={"mcp_server": "demo"})
        def nap(seconds: float) -> str:
            time.sleep(seconds)
            return "rested"

        before = time.time()
        self.assertEqual(nap(0.15), "rested")
        (t,) = self.stored()
        self.assertEqual((t["status"], t["user_sub"], t["attributes"]), ("ok", None, {"mcp_server": "demo"}))
        self.assertGreaterEqual(t["duration_ms"], 140)
        self.assertLess(t["duration_ms"], 1000)
        status, approval = request(self.server.url, "GET", "/healthz")
        self.assertEqual(status, 200)


globals().update(per_engine(_Guard))
