"""HMAC signing against a real server that enforces it, on each engine: every request the SDK makes
(trace batches, checks, approval long polls with their query, sync and async) is accepted with
the right pak_secret and refused without it or with another."""
from __future__ import annotations

import asyncio
from typing import List

from support import per_engine, prestart, shared

from panopticon import Panopticon, PanopticonError

prestart()  # the servers boot while tests that need none run


class _Hmac:
    engine = ""

    def setUp(self) -> None:
        self.server, self.op = shared(self.engine)
        self.app = self.op.app()
        self.secret = self.op.ok("POST", "/api/apps/%s/hmac/enable" % self.app.client_id)["pak_secret"]

    def client(self, secret: object, **options: object) -> Panopticon:
        pano = Panopticon(self.server.url, self.app.pak, self.app.client_id, pak_secret=secret, flush_interval=0.02,  # type: ignore[arg-type]
                          retry_initial_delay=0.02, retry_max_delay=0.1, flush_at_exit=False, **options)  # type: ignore[arg-type]
        self.addCleanup(pano.close, 0.1)
        return pano

    def test_signed_batches_checks_and_approval_polls_are_accepted(self) -> None:
        pano = self.client(self.secret)
        ids = [pano.trace("café ☕", "agent:read", "ok", user_sub="zoë", error_message="lone surrogate \udcff kept as U+FFFD")
               for _ in range(3)]
        self.assertTrue(pano.flush(10))
        self.assertEqual((pano.stats().sent, pano.stats().failed_requests), (3, 0))
        stored = self.op.traces(self.app.client_id)
        self.assertEqual(sorted(t["event_id"] for t in stored), sorted(ids))
        self.assertEqual({t["tool"] for t in stored}, {"café ☕"})
        self.assertEqual({t["error_message"] for t in stored}, {"lone surrogate \ufffd kept as U+FFFD"})

        self.assertEqual(pano.check("send_email", {"to": "ünïcode@example.org"}, scope="mail:send").source, "server")
        self.assertEqual(asyncio.run(pano.check_async("send_email", {"to": "x"}, scope="mail:send")).source, "server")
        # GET with a query string: the signature covers "/panopticon/approvals/<id>?wait=N" and an
        # empty body; an unknown approval is judged only after the signature was accepted.
        self.assertEqual(pano.wait_for_approval("apr_0000000000000000", timeout=2).error, "approval_not_found")
        self.assertEqual(asyncio.run(pano.wait_for_approval_async("apr_0000000000000000", timeout=2)).error, "approval_not_found")

    def test_the_decorator_signs_too(self) -> None:
        pano = self.client(self.secret)

        @pano.tool(scope="agent:read")
        async def hello(name: str) -> str:
            return "hello " + name

        self.assertEqual(asyncio.run(hello("world")), "hello world")
        self.assertTrue(pano.flush(10))
        (t,) = self.op.traces(self.app.client_id)
        self.assertEqual((t["tool"], t["status"]), ("hello", "ok"))
        self.assertIsNotNone(t["guard"])

    def test_unsigned_or_wrongly_signed_requests_are_refused_and_nothing_is_lost(self) -> None:
        for secret, code in ((None, "signature_missing"), ("pano_sec_not_the_right_one", "signature_mismatch")):
            errors: List[PanopticonError] = []
            pano = self.client(secret, on_error=errors.append)
            pano.trace("hello", "agent:read", "ok")
            self.assertFalse(pano.flush(0.3))
            s = pano.stats()
            self.assertEqual((s.sent, s.dropped, s.buffered), (0, 0, 1))  # kept: an operator can fix the key
            self.assertIn((code, 401), [(e.code, e.status) for e in errors])
            d = pano.check("send_email", scope="mail:send")
            self.assertEqual((d.decision, d.reason, d.source), ("deny", code, "fail_closed"))
            self.assertEqual(pano.wait_for_approval("apr_0000000000000000", timeout=2).error, code)
        self.assertEqual(self.op.traces(self.app.client_id), [])

    def test_traces_buffered_while_unsigned_are_delivered_once_signing_is_turned_off(self) -> None:
        pano = self.client(None)
        eid = pano.trace("hello", "agent:read", "ok")
        self.assertFalse(pano.flush(0.3))
        self.op.ok("POST", "/api/apps/%s/hmac/disable" % self.app.client_id)
        self.assertTrue(pano.flush(10))
        self.assertEqual([t["event_id"] for t in self.op.traces(self.app.client_id)], [eid])


globals().update(per_engine(_Hmac))
