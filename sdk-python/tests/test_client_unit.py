"""Parts that need no server: ids, signatures (checked against the TypeScript SDK), times,
Retry-After, JSON conversion, trace() refusing bad input without raising, the fail modes when the
guard cannot be reached, decorator options, and the build backend's TOML reading."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import uuid
from email.utils import format_datetime
from typing import Any, List

from support import NODE, REPO_ROOT, SDK_ROOT, closed_port_url

from panopticon import Panopticon, PanopticonDenied, PanopticonError, format_started_at, signature_header, uuid7
from panopticon._client import retry_after_seconds
from panopticon._json import OMIT, dumps, jsonable

CID = "logi_f31b6962aef3"
PAK = "pano_pak_AJBudVd5U4cp6Hbe6glfeRxKR94jem754SDSkj"


def offline(**options: Any) -> Panopticon:
    options.setdefault("flush_interval", 30)
    options.setdefault("retry_initial_delay", 0.02)
    options.setdefault("retry_max_delay", 0.05)
    options.setdefault("flush_at_exit", False)
    return Panopticon(closed_port_url(), PAK, CID, **options)


class TestUuid7(unittest.TestCase):
    def test_format_version_variant_and_time(self) -> None:
        before = int(time.time() * 1000)
        u = uuid.UUID(uuid7())
        self.assertEqual((u.version, u.variant), (7, uuid.RFC_4122))
        self.assertLessEqual(abs((u.int >> 80) - before), 1000)

    def test_monotonic_across_threads_and_within_a_millisecond(self) -> None:
        ids: List[str] = []
        lock = threading.Lock()

        def make() -> None:
            local = [uuid7() for _ in range(3000)]
            self.assertEqual(local, sorted(local))
            with lock:
                ids.extend(local)

        threads = [threading.Thread(target=make) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(set(ids)), 12000)
        same_ms = [uuid7(now_ms=1_700_000_000_000) for _ in range(5000)]  # counter overflows: time moves on
        self.assertEqual(same_ms, sorted(same_ms))
        self.assertEqual(len(set(same_ms)), 5000)


class TestSignature(unittest.TestCase):
    def test_same_header_as_the_typescript_sdk(self) -> None:
        sign_js = os.path.join(REPO_ROOT, "sdk", "dist", "sign.js")
        if not os.path.exists(sign_js):
            self.fail("sdk/dist/sign.js is missing: run `npm run build` at the repository root")
        cases = [
            ("POST", "/panopticon/traces", '{"traces":[{"tool":"café ☕"}]}'),
            ("GET", "/panopticon/approvals/apr_x?wait=30", ""),
            ("post", "/panopticon/guard/check", "{}"),
        ]
        script = (
            "import { signatureHeader } from %s;"
            "const cases = JSON.parse(process.argv[1]);"
            "console.log(JSON.stringify(cases.map(([m, p, b]) => signatureHeader('pano_sec_test', m, p, b, 1778321472123))));"
        ) % json.dumps("file://" + sign_js)
        out = subprocess.run([NODE, "--input-type=module", "-e", script, json.dumps(cases)], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        expected = json.loads(out.stdout)
        got = [signature_header("pano_sec_test", m, p, b.encode("utf-8"), now=1778321472.123) for m, p, b in cases]
        self.assertEqual(got, expected)
        self.assertTrue(got[0].startswith("t=1778321472,v1="))

    def test_signs_the_exact_bytes(self) -> None:
        a = signature_header("s", "POST", "/panopticon/traces", b'{"a":1}', now=1)
        b = signature_header("s", "POST", "/panopticon/traces", b'{"a": 1}', now=1)
        self.assertNotEqual(a, b)


class TestTimes(unittest.TestCase):
    def test_started_at_formats(self) -> None:
        now = format_started_at(None)
        self.assertRegex(now, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
        cet = datetime.timezone(datetime.timedelta(hours=1))
        self.assertEqual(format_started_at(datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=cet)), "2026-01-02T02:04:05.000006+00:00")
        naive = datetime.datetime(2026, 1, 2, 3, 4, 5)
        self.assertEqual(format_started_at(naive), naive.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds"))
        self.assertEqual(format_started_at(0), "1970-01-01T00:00:00.000000+00:00")
        self.assertEqual(format_started_at("2026-05-09T10:11:12Z"), "2026-05-09T10:11:12Z")
        with self.assertRaises(TypeError):
            format_started_at(True)  # type: ignore[arg-type]

    def test_retry_after(self) -> None:
        self.assertEqual(retry_after_seconds({"retry-after": "3"}), 3.0)
        later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=10)
        secs = retry_after_seconds({"retry-after": format_datetime(later, usegmt=True)})
        self.assertIsNotNone(secs)
        self.assertTrue(8 <= secs <= 10.5, secs)  # type: ignore[operator]
        self.assertIsNone(retry_after_seconds({"retry-after": "soon"}))
        self.assertIsNone(retry_after_seconds({}))


class TestJson(unittest.TestCase):
    def test_jsonable(self) -> None:
        class Colour(enum.Enum):
            RED = "red"

        @dataclasses.dataclass
        class Point:
            x: int
            y: int

        class Model:  # duck-typed pydantic v2
            def model_dump(self, mode: str = "python") -> Any:
                return {"mode": mode}

        class Opaque:
            def __str__(self) -> str:
                return "opaque!"

        value = {"when": datetime.date(2026, 5, 9), "c": Colour.RED, "p": Point(1, 2), "m": Model(), "t": (1, 2),
                 "nan": float("nan"), "o": Opaque(), 3: "int key"}
        self.assertEqual(jsonable(value), {"when": "2026-05-09", "c": "red", "p": {"x": 1, "y": 2}, "m": {"mode": "json"},
                                           "t": [1, 2], "nan": "nan", "o": "opaque!", "3": "int key"})
        self.assertEqual(jsonable({"keep": 1, "ctx": Opaque(), "nested": [Opaque(), 2]}, unknown="omit"), {"keep": 1, "nested": [2]})
        self.assertIs(jsonable(Opaque(), unknown="omit"), OMIT)

    def test_dumps_escapes_only_when_utf8_cannot_hold_the_text(self) -> None:
        self.assertEqual(dumps({"t": "café"}), '{"t":"café"}')
        self.assertEqual(dumps({"t": "bad \udcff"}), '{"t":"bad \\udcff"}')
        dumps({"t": "bad \udcff"}).encode("utf-8")


class TestTraceNeverRaises(unittest.TestCase):
    def test_bad_input_is_refused_counted_and_reported(self) -> None:
        errors: List[PanopticonError] = []

        def on_error(err: PanopticonError) -> None:
            errors.append(err)
            raise RuntimeError("a broken callback must not reach the caller")

        pano = offline(on_error=on_error)
        bad = [
            dict(tool="", scope="s", status="ok"),
            dict(tool="t", scope="s", status="fine"),
            dict(tool="t" * 257, scope="s", status="ok"),
            dict(tool="t", scope=None, status="ok"),
            dict(tool="t", scope="s", status="ok", event_id="urn:uuid:550e8400-e29b-41d4-a716-446655440000"),
            dict(tool="t", scope="s", status="ok", user_sub=42),
            dict(tool="t", scope="s", status="ok", session_id="a\x00b"),
            dict(tool="t", scope="s", status="ok", duration_ms="12"),
            dict(tool="t", scope="s", status="ok", started_at=object()),
            dict(tool="t", scope="s", status="ok", attributes=["not", "a", "mapping"]),
        ]
        for kwargs in bad:
            self.assertIsNone(pano.trace(**kwargs), kwargs)  # type: ignore[arg-type]
        self.assertEqual(pano.stats().dropped_rejected, len(bad))
        self.assertEqual([e.code for e in errors], ["invalid_trace"] * len(bad))
        ok = pano.trace("t", "s", "ok", event_id="550E8400-E29B-41D4-A716-446655440000", duration_ms=datetime.timedelta(seconds=1.5),
                        error_message="x" * 5000 + "\x00", attributes={"when": datetime.date(2026, 1, 1)})
        self.assertEqual(ok, "550e8400-e29b-41d4-a716-446655440000")
        (_, text), = list(pano._queue)
        wire = json.loads(text)
        self.assertEqual((wire["duration_ms"], len(wire["error_message"]), wire["attributes"]), (1500, 4096, {"when": "2026-01-01"}))
        pano.close(0.05)

    def test_options_are_checked_when_the_client_is_made(self) -> None:
        for bad in (dict(url="ftp://x"), dict(pak=""), dict(client_id=""), dict(fail_mode="sometimes"), dict(batch_size=0),
                    dict(flush_interval=-1), dict(request_timeout=float("inf")), dict(max_buffer_size=True)):
            args = dict(url="http://127.0.0.1:1", pak=PAK, client_id=CID)
            args.update(bad)  # type: ignore[arg-type]
            with self.assertRaises(ValueError, msg=str(bad)):
                Panopticon(args.pop("url"), args.pop("pak"), args.pop("client_id"), flush_at_exit=False, **args)  # type: ignore[arg-type]


class TestUnreachableGuard(unittest.TestCase):
    def test_fail_closed_by_default_fail_open_on_request(self) -> None:
        closed = offline()
        d = closed.check("send_email", {"to": "x"}, scope="mail:send")
        self.assertEqual((d.decision, d.reason, d.source), ("deny", "unreachable", "fail_closed"))
        a = asyncio.run(closed.check_async("send_email", {"to": "x"}, scope="mail:send"))
        self.assertEqual((a.decision, a.source), ("deny", "fail_closed"))
        opened = offline(fail_mode="open")
        self.assertEqual(opened.check("send_email", scope="mail:send").source, "fail_open")
        self.assertEqual(asyncio.run(opened.check_async("send_email", scope="mail:send")).decision, "allow")
        closed.close(0.05)
        opened.close(0.05)

    def test_a_check_timeout_applies_the_fail_mode(self) -> None:
        import socket

        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, never answers
        self.addCleanup(silent.close)
        pano = Panopticon("http://127.0.0.1:%d" % silent.getsockname()[1], PAK, CID, check_timeout=0.3, flush_at_exit=False)
        t0 = time.monotonic()
        d = pano.check("x", scope="y")
        self.assertEqual((d.decision, d.reason), ("deny", "unreachable"))
        self.assertIn("timeout", d.message)
        d = asyncio.run(pano.check_async("x", scope="y"))
        self.assertIn("timeout", d.message)
        self.assertLess(time.monotonic() - t0, 2.5)
        pano.close(0.05)

    def test_waiting_for_approval_fails_closed(self) -> None:
        pano = offline()
        t0 = time.monotonic()
        r = pano.wait_for_approval("apr_0000000000000000", timeout=0.5)
        self.assertEqual((r.status, r.approved, r.error), ("unreachable", False, "network"))
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        r = asyncio.run(pano.wait_for_approval_async("apr_0000000000000000", timeout=0.3))
        self.assertEqual((r.status, r.approved), ("unreachable", False))
        pano.close(0.05)

    def test_a_governed_function_does_not_run_when_the_guard_cannot_be_asked(self) -> None:
        pano = offline()
        ran: List[int] = []

        @pano.tool(scope="x")
        def work(n: int) -> int:
            ran.append(n)
            return n

        with self.assertRaises(PanopticonDenied) as caught:
            work(1)
        self.assertEqual((caught.exception.reason, ran), ("unreachable", []))
        self.assertEqual(pano.stats().buffered, 1)  # its denied trace waits for the server
        open_pano = offline(fail_mode="open")
        self.assertEqual(open_pano.tool(scope="x")(work.__wrapped__)(2), 2)  # type: ignore[attr-defined]
        self.assertEqual(ran, [2])
        pano.close(0.05)
        open_pano.close(0.05)

    def test_denied_error_chooses_the_exception_a_refusal_raises(self) -> None:
        class ToolError(Exception):  # stands for fastmcp.exceptions.ToolError
            pass

        pano = offline()

        @pano.tool(scope="x", denied_error=lambda err: ToolError(str(err)))
        async def work() -> str:
            return "ran"

        @pano.tool(scope="x", denied_error=lambda err: 1 / 0)  # a broken converter still refuses
        def other() -> str:
            return "ran"

        with self.assertRaises(ToolError) as caught:
            asyncio.run(work())
        self.assertTrue(str(caught.exception).startswith("Denied by Panopticon: Panopticon guard unreachable"))
        self.assertIsInstance(caught.exception.__cause__, PanopticonDenied)
        with self.assertRaises(PanopticonDenied):
            other()
        pano.close(0.05)

    def test_a_raising_user_sub_resolver_denies_the_call(self) -> None:
        pano = offline(fail_mode="open")

        @pano.tool(user_sub=lambda call: call.arguments["ctx"].missing)
        def work(ctx: Any) -> str:
            return "ran"

        with self.assertRaises(PanopticonDenied) as caught:
            work(object())
        self.assertEqual(caught.exception.reason, "resolver_error")
        self.assertIsInstance(caught.exception.__cause__, AttributeError)
        pano.close(0.05)


class TestConnections(unittest.TestCase):
    """Keep-alive connections are reused, and one the server closed while idle is replaced without
    failing the request."""

    def serve(self, close_after_answer: bool) -> Any:
        import http.server

        ports: List[int] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                ports.append(self.client_address[1])
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({"check_id": "chk_0000000000000000", "decision": "allow", "reason": "default", "message": "",
                                   "rule_id": None, "policy_version": 0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                # As a server whose keep-alive timeout ran out: closed, without saying so.
                self.close_connection = close_after_answer

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        pano = Panopticon("http://127.0.0.1:%d" % srv.server_address[1], PAK, CID, flush_at_exit=False)
        self.addCleanup(pano.close, 0.05)
        return pano, ports

    def test_one_connection_serves_many_requests_sync_and_async(self) -> None:
        pano, ports = self.serve(close_after_answer=False)
        for _ in range(10):
            self.assertEqual(pano.check("t", scope="s").source, "server")
        self.assertEqual((len(ports), len(set(ports))), (10, 1))

        async def many() -> None:
            for _ in range(10):
                self.assertEqual((await pano.check_async("t", scope="s")).source, "server")

        del ports[:]
        asyncio.run(many())
        self.assertEqual((len(ports), len(set(ports))), (10, 1))

    def test_a_connection_the_server_closed_is_replaced_not_failed(self) -> None:
        pano, ports = self.serve(close_after_answer=True)
        for _ in range(5):
            time.sleep(0.05)  # the close has arrived before the next request
            self.assertEqual(pano.check("t", scope="s").source, "server")

        async def many() -> None:
            for _ in range(5):
                await asyncio.sleep(0.05)
                self.assertEqual((await pano.check_async("t", scope="s")).source, "server")

        asyncio.run(many())
        self.assertEqual(len(set(ports)), 10)


class TestDecoratorOptions(unittest.TestCase):
    def test_wrong_options_fail_at_decoration_time(self) -> None:
        pano = offline()

        def f() -> None:
            pass

        async def g() -> None:
            pass

        def gen() -> Any:
            yield 1

        with self.assertRaises(TypeError):
            pano.tool(timeout=1)(f)  # a thread cannot be stopped
        with self.assertRaises(TypeError):
            pano.tool(gen)
        with self.assertRaises(TypeError):
            pano.tool(scope=42)(f)
        with self.assertRaises(TypeError):
            pano.tool(scopes="x")(f)  # type: ignore[call-arg]
        with self.assertRaises(TypeError):
            pano.tool(approval_timeout=0)(g)
        self.assertEqual(pano.tool(f).__name__, "f")  # bare decorator
        self.assertEqual(pano.tool(name="renamed")(g).__panopticon_tool__, "renamed")
        with self.assertRaises(TypeError):
            pano.tool(f)(1, 2)  # a call that does not fit the signature fails as the function would
        pano.close(0.05)


class TestBuildBackend(unittest.TestCase):
    def test_the_toml_subset_reader_agrees_with_tomllib(self) -> None:
        sys.path.insert(0, os.path.join(SDK_ROOT, "_build"))
        try:
            import panopticon_build
        finally:
            sys.path.pop(0)
        with open(os.path.join(SDK_ROOT, "pyproject.toml"), encoding="utf-8") as f:
            text = f.read()
        subset = panopticon_build._parse_toml_subset(text)
        try:
            import tomllib
        except ImportError:
            self.skipTest("tomllib needs Python 3.11")
        self.assertEqual(subset, tomllib.loads(text))
        self.assertEqual(subset["project"]["name"], "panopticon-sdk")
        self.assertEqual(subset["project"]["dependencies"], [])


if __name__ == "__main__":
    unittest.main()
