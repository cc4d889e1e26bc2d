"""Trace delivery against a real server, on each engine: batching, order, retries with backoff and
Retry-After, idempotent resends, bounded buffer, refused traces, a server killed mid-stream, the
on-disk spool across processes, exit and fork."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from typing import Any, List

from support import Fault, Proxy, SDK_ROOT, closed_port_url, eventually, per_engine, prestart, shared

from panopticon import Panopticon, PanopticonError

prestart()  # the servers boot while tests that need none run


def fast(url: str, app: Any, **options: Any) -> Panopticon:
    """A client with test-sized delays."""
    options.setdefault("flush_interval", 0.05)
    options.setdefault("retry_initial_delay", 0.02)
    options.setdefault("retry_max_delay", 0.2)
    options.setdefault("request_timeout", 5.0)
    options.setdefault("flush_at_exit", False)
    return Panopticon(url, app.pak, app.client_id, **options)


class _Delivery:
    engine = ""

    def setUp(self) -> None:
        self.server, self.op = shared(self.engine)
        self.app = self.op.app()
        self.proxy = Proxy(self.server.url)
        self.addCleanup(self.proxy.close)

    def stored_ids(self) -> List[str]:
        return [t["event_id"] for t in self.op.traces(self.app.client_id)]

    def test_batches_of_batch_size_in_trace_order_each_stored_once(self) -> None:
        pano = fast(self.proxy.url, self.app, batch_size=100, flush_interval=30)
        ids = [pano.trace("search_docs", "docs:read", "ok", duration_ms=i) for i in range(250)]
        self.assertTrue(pano.flush(10))
        sent = self.proxy.batches()
        # The first batch leaves when 100 are waiting; what accumulates while one is in flight follows
        # as soon as it returns, so how the other 150 split depends on how fast trace() ran meanwhile
        # (on a busy machine the split was 95 + 55 once). None is larger than batch_size.
        sizes = [len(b) for _, b in sent]
        self.assertEqual(sizes[0], 100, sizes)
        self.assertTrue(len(sizes) >= 3 and max(sizes) <= 100 and sum(sizes) == 250, sizes)
        self.assertEqual([eid for _, b in sent for eid in b], ids)  # first delivery in trace() order
        self.assertEqual(sorted(self.stored_ids()), sorted(ids))
        s = pano.stats()
        self.assertEqual((s.sent, s.duplicate, s.dropped, s.buffered, s.failed_requests), (250, 0, 0, 0, 0))
        pano.close()

    def test_a_partial_batch_leaves_after_flush_interval_without_flush(self) -> None:
        pano = fast(self.proxy.url, self.app, flush_interval=0.3)
        t0 = time.monotonic()
        eid = pano.trace("hello", "agent:read", "ok")
        eventually(lambda: pano.stats().sent == 1, timeout=5)
        elapsed = self.proxy.batches()[0][0] - t0
        self.assertGreaterEqual(elapsed, 0.25)
        self.assertLess(elapsed, 2.0)
        self.assertEqual(self.stored_ids(), [eid])
        pano.close()

    def test_a_lost_acknowledgement_is_resent_and_stored_once(self) -> None:
        # The proxy relays the first batch (the server commits it) and drops the answer.
        self.proxy.faults = [Fault(drop_response=True)]
        pano = fast(self.proxy.url, self.app, flush_interval=30)
        ids = [pano.trace("transfer", "payments:write", "ok") for _ in range(7)]
        self.assertTrue(pano.flush(10))
        sent = self.proxy.batches()
        self.assertEqual(len(sent), 2)
        self.assertEqual(sent[0][1], ids)
        self.assertEqual(sent[1][1], ids)  # the same event_ids, resent
        s = pano.stats()
        self.assertEqual((s.sent, s.duplicate, s.dropped), (7, 7, 0))
        self.assertEqual(sorted(self.stored_ids()), sorted(ids))
        self.assertEqual(self.op.usage_total(self.app.client_id), 7)
        pano.close()

    def test_retry_after_is_honoured_over_a_shorter_backoff(self) -> None:
        self.proxy.faults = [Fault(503, {"Retry-After": "1"}, {"error": {"code": "store_unavailable", "message": "x"}})]
        errors: List[PanopticonError] = []
        pano = fast(self.proxy.url, self.app, flush_interval=30, retry_initial_delay=0.01, on_error=errors.append)
        eid = pano.trace("hello", "agent:read", "ok")
        self.assertTrue(pano.flush(10))
        (t1, first), (t2, second) = self.proxy.batches()
        self.assertEqual(first, [eid])
        self.assertEqual(second, [eid])
        self.assertGreaterEqual(t2 - t1, 0.95)
        self.assertLess(t2 - t1, 3.0)
        self.assertEqual([(e.code, e.status) for e in errors], [("store_unavailable", 503)])
        s = pano.stats()
        self.assertEqual((s.sent, s.retried, s.failed_requests), (1, 1, 1))
        self.assertEqual(self.stored_ids(), [eid])
        pano.close()

    def test_backoff_doubles_with_jitter_between_half_and_all_of_each_step(self) -> None:
        self.proxy.faults = [Fault(502, {}, {"error": {"code": "bad_gateway", "message": "x"}}) for _ in range(4)]
        pano = fast(self.proxy.url, self.app, flush_interval=30, retry_initial_delay=0.1, retry_max_delay=0.4)
        pano.trace("hello", "agent:read", "ok")
        self.assertTrue(pano.flush(10))
        times = [t for t, _ in self.proxy.batches()]
        self.assertEqual(len(times), 5)
        gaps = [b - a for a, b in zip(times, times[1:])]
        for gap, ceiling in zip(gaps, [0.1, 0.2, 0.4, 0.4]):
            self.assertGreaterEqual(gap, ceiling / 2 - 0.01, gaps)  # never less than half the step
            self.assertLess(gap, ceiling + 0.4, gaps)  # the step plus scheduling slack on a loaded machine
        self.assertGreaterEqual(sum(gaps), (0.1 + 0.2 + 0.4 + 0.4) / 2)
        self.assertEqual(pano.stats().failed_requests, 4)
        pano.close()

    def test_401_and_403_are_retried_until_fixed_not_dropped(self) -> None:
        self.proxy.faults = [Fault(401, {}, {"error": {"code": "pak_revoked", "message": "x"}}),
                             Fault(403, {}, {"error": {"code": "panopticon_disabled", "message": "x"}})]
        pano = fast(self.proxy.url, self.app, flush_interval=30)
        eid = pano.trace("hello", "agent:read", "ok")
        self.assertTrue(pano.flush(10))
        self.assertEqual(len(self.proxy.batches()), 3)
        self.assertEqual((pano.stats().sent, pano.stats().dropped), (1, 0))
        self.assertEqual(self.stored_ids(), [eid])
        pano.close()

    def test_an_oversized_batch_is_split_in_halves(self) -> None:
        self.proxy.faults = [Fault(413, {}, {"error": {"code": "payload_too_large", "message": "x"}})]
        pano = fast(self.proxy.url, self.app, flush_interval=30)
        ids = [pano.trace("hello", "agent:read", "ok") for _ in range(10)]
        self.assertTrue(pano.flush(10))
        self.assertEqual([len(b) for _, b in self.proxy.batches()], [10, 5, 5])
        self.assertEqual(sorted(self.stored_ids()), sorted(ids))
        self.assertEqual(pano.stats().dropped, 0)
        pano.close()

    def test_an_invalid_trace_is_dropped_and_counted_the_others_stored(self) -> None:
        errors: List[PanopticonError] = []
        pano = fast(self.proxy.url, self.app, flush_interval=30, on_error=errors.append)
        good = [pano.trace("hello", "agent:read", "ok") for _ in range(3)]
        bad = pano.trace("hello", "agent:read", "ok", started_at="2026-02-30T10:00:00Z")  # no such day
        self.assertIsNotNone(bad)
        self.assertTrue(pano.flush(10))
        self.assertEqual(len(self.proxy.batches()), 1)  # not resent: resending cannot help
        s = pano.stats()
        self.assertEqual((s.sent, s.dropped_rejected, s.dropped), (3, 1, 1))
        self.assertEqual([e.code for e in errors], ["validation_failed"])
        self.assertIn("started_at", str(errors[0]))
        self.assertEqual(sorted(self.stored_ids()), sorted(good))
        pano.close()

    def test_batches_stay_under_the_servers_body_limit(self) -> None:
        pano = fast(self.proxy.url, self.app, batch_size=1000, flush_interval=30)
        blob = "x" * 15_000  # attributes may hold 16 KiB: 150 of them are over the 2 MiB a batch may be
        ids = [pano.trace("big", "agent:read", "ok", attributes={"blob": blob}) for _ in range(150)]
        self.assertTrue(pano.flush(20))
        sizes = [len(b) for _, b in self.proxy.batches()]
        self.assertGreaterEqual(len(sizes), 2)
        self.assertEqual(sum(sizes), 150)
        self.assertTrue(all(len(body) < 2 * 1024 * 1024 for _, _, path, body in self.proxy.log if path == "/panopticon/traces"))
        self.assertEqual(sorted(self.stored_ids()), sorted(ids))
        pano.close()

    def test_a_batch_refused_as_a_whole_is_dropped_and_counted_not_resent(self) -> None:
        self.proxy.faults = [Fault(400, {}, {"error": {"code": "malformed_json", "message": "x"}})]
        errors: List[PanopticonError] = []
        pano = fast(self.proxy.url, self.app, flush_interval=30, on_error=errors.append)
        for _ in range(4):
            pano.trace("hello", "agent:read", "ok")
        self.assertTrue(pano.flush(5))
        self.assertEqual(len(self.proxy.batches()), 1)
        s = pano.stats()
        self.assertEqual((s.dropped_rejected, s.sent, s.buffered), (4, 0, 0))
        self.assertEqual([(e.code, e.status) for e in errors], [("malformed_json", 400)])
        pano.close()

    def test_https_with_a_private_ca_sync_and_async(self) -> None:
        import asyncio
        import ssl

        from support import self_signed_certificate

        tmp = tempfile.mkdtemp(prefix="panopticon-tls-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = self_signed_certificate(tmp)
        tls = Proxy(self.server.url, tls=(cert, key))
        self.addCleanup(tls.close)
        self.assertTrue(tls.url.startswith("https://"))
        untrusted = fast(tls.url, self.app)
        self.assertEqual(untrusted.check("x", scope="y").reason, "unreachable")  # the system CAs do not know it
        untrusted.close(0.1)
        pano = fast(tls.url, self.app, ssl_context=ssl.create_default_context(cafile=cert))
        eid = pano.trace("over_tls", "agent:read", "ok")
        self.assertTrue(pano.flush(10))
        self.assertEqual(pano.check("x", scope="y").source, "server")
        self.assertEqual(asyncio.run(pano.check_async("x", scope="y")).source, "server")
        self.assertEqual(asyncio.run(pano.wait_for_approval_async("apr_0000000000000000", timeout=3)).error, "approval_not_found")
        self.assertEqual(self.stored_ids(), [eid])
        pano.close()

    def test_flush_and_close_from_asyncio(self) -> None:
        import asyncio

        async def main() -> Any:
            async with fast(self.proxy.url, self.app, flush_interval=30) as pano:
                ids = [pano.trace("async", "agent:read", "ok") for _ in range(3)]
                self.assertTrue(await pano.flush_async(10))
                pano.trace("async", "agent:read", "ok")
            return pano, ids

        pano, ids = asyncio.run(main())
        self.assertEqual(pano.stats().sent, 4)  # the last one delivered by close_async
        self.assertIsNone(pano.trace("late", "agent:read", "ok"))
        self.assertEqual(len(self.stored_ids()), 4)

    def test_a_full_buffer_drops_the_oldest_and_counts_them(self) -> None:
        self.proxy.hold = True
        errors: List[PanopticonError] = []
        pano = fast(self.proxy.url, self.app, flush_interval=30, max_buffer_size=10, on_error=errors.append)
        ids = [pano.trace("hello", "agent:read", "ok", duration_ms=i) for i in range(30)]
        self.assertFalse(pano.flush(0.3))  # held: nothing gets through
        s = pano.stats()
        self.assertEqual((s.dropped_overflow, s.buffered), (20, 10))
        self.assertIn("overflow", [e.code for e in errors])
        self.proxy.hold = False
        self.assertTrue(pano.flush(10))
        self.assertEqual(sorted(self.stored_ids()), sorted(ids[20:]))  # the newest ten
        self.assertEqual(pano.stats().sent, 10)
        pano.close()

    def test_close_delivers_then_later_traces_are_dropped_and_counted(self) -> None:
        pano = fast(self.proxy.url, self.app, flush_interval=30)
        ids = [pano.trace("hello", "agent:read", "ok") for _ in range(5)]
        result = pano.close(5)
        self.assertEqual((result.delivered, result.pending), (True, 0))
        self.assertIsNone(pano.trace("hello", "agent:read", "ok"))
        self.assertEqual(pano.stats().dropped_shutdown, 1)
        self.assertEqual(sorted(self.stored_ids()), sorted(ids))
        self.assertEqual(pano.close(), result)  # again: harmless

    def test_close_without_a_spool_counts_what_it_could_not_deliver(self) -> None:
        pano = fast(closed_port_url(), self.app, flush_interval=30)
        for _ in range(4):
            pano.trace("hello", "agent:read", "ok")
        result = pano.close(0.3)
        self.assertEqual((result.delivered, result.pending), (False, 4))
        s = pano.stats()
        self.assertEqual((s.dropped_shutdown, s.buffered), (4, 0))

    def test_a_process_that_exits_without_close_delivers_at_exit(self) -> None:
        script = """
            import sys
            sys.path.insert(0, {src!r})
            from panopticon import Panopticon
            pano = Panopticon({url!r}, {pak!r}, {cid!r}, flush_interval=60)
            print("\\n".join(pano.trace("hello", "agent:read", "ok") for _ in range(20)))
        """.format(src=os.path.join(SDK_ROOT, "src"), url=self.server.url, pak=self.app.pak, cid=self.app.client_id)
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        ids = out.stdout.split()
        self.assertEqual(len(ids), 20)
        self.assertEqual(sorted(self.stored_ids()), sorted(ids))

    def test_a_forked_child_delivers_its_own_traces_not_its_parents(self) -> None:
        if not hasattr(os, "fork"):
            self.skipTest("no fork on this platform")
        pano = fast(self.server.url, self.app, flush_interval=30)
        parent_ids = [pano.trace("parent", "agent:read", "ok") for _ in range(5)]
        pid = os.fork()
        if pid == 0:  # the child: its buffer starts empty
            code = 99
            try:
                for _ in range(3):
                    pano.trace("child", "agent:read", "ok")
                ok = pano.flush(10)
                code = pano.stats().sent if ok else 98
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.WEXITSTATUS(status), 3)
        self.assertTrue(pano.flush(10))
        self.assertEqual(pano.stats().sent, 5)
        stored = self.op.traces(self.app.client_id)
        self.assertEqual(sorted(t["tool"] for t in stored), ["child"] * 3 + ["parent"] * 5)
        self.assertTrue(set(parent_ids) <= {t["event_id"] for t in stored})
        pano.close()


class _Restart:
    """The server dies mid-stream and comes back on the same store: every trace is stored once."""

    engine = ""

    def test_server_killed_mid_stream_then_restarted_every_trace_stored_exactly_once(self) -> None:
        # The shared server of the engine is killed and restarted on its port and store.
        server, op = shared(self.engine)
        app = op.app()
        errors: List[PanopticonError] = []
        pano = fast(server.url, app, batch_size=25, flush_interval=0.02, retry_max_delay=0.3, request_timeout=2.0,
                    on_error=errors.append)
        ids: List[str] = []
        done = threading.Event()

        def produce() -> None:
            for i in range(400):
                ids.append(pano.trace("stream", "agent:read", "ok", duration_ms=i))
                time.sleep(0.003)
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        eventually(lambda: pano.stats().sent >= 50, timeout=10, interval=0.005)
        server.kill(signal.SIGKILL)  # mid-stream: batches in flight are cut off
        killed_at_sent = pano.stats().sent
        time.sleep(0.5)
        server.restart()
        producer.join()
        self.assertTrue(done.is_set())
        self.assertTrue(pano.flush(30), pano.stats())
        s = pano.stats()
        self.assertLess(killed_at_sent, 400)
        self.assertGreater(s.failed_requests, 0)
        self.assertEqual((s.sent, s.dropped, s.buffered), (400, 0, 0))
        stored = [t["event_id"] for t in op.traces(app.client_id)]
        self.assertEqual(len(stored), 400)
        self.assertEqual(sorted(stored), sorted(ids))
        self.assertEqual(op.usage_total(app.client_id), 400)
        self.assertTrue(any(e.code in ("network", "timeout") for e in errors))
        pano.close()


class _Spool:
    """Unacknowledged traces survive the process on disk and are delivered by the next one."""

    engine = ""

    def setUp(self) -> None:
        self.server, self.op = shared(self.engine)
        self.app = self.op.app()
        self.dir = tempfile.mkdtemp(prefix="panopticon-spool-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_child(self, body: str, expect_signal: bool = False) -> List[str]:
        script = "import sys, os, signal, time\nsys.path.insert(0, %r)\nfrom panopticon import Panopticon\n" % os.path.join(SDK_ROOT, "src")
        out = subprocess.run([sys.executable, "-c", script + textwrap.dedent(body)], capture_output=True, text=True, timeout=60)
        if expect_signal:
            self.assertEqual(out.returncode, -signal.SIGKILL, out.stderr)
        else:
            self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.split()

    def test_traces_of_a_killed_process_are_delivered_by_the_next_start(self) -> None:
        ids = self.run_child("""
            pano = Panopticon(%r, %r, %r, spool_dir=%r, retry_initial_delay=0.05)
            print("\\n".join(pano.trace("spooled", "agent:read", "ok") for _ in range(50)), flush=True)
            time.sleep(0.3)  # the spool writer has the records in the file within milliseconds
            os.kill(os.getpid(), signal.SIGKILL)
        """ % (closed_port_url(), self.app.pak, self.app.client_id, self.dir), expect_signal=True)
        self.assertEqual(len(ids), 50)
        self.assertEqual(len([f for f in os.listdir(self.dir) if f.endswith(".jsonl")]), 1)
        pano = fast(self.server.url, self.app, spool_dir=self.dir)
        self.assertTrue(pano.flush(10))
        s = pano.stats()
        self.assertEqual((s.sent, s.dropped), (50, 0))
        self.assertEqual(sorted(t["event_id"] for t in self.op.traces(self.app.client_id)), sorted(ids))
        self.assertEqual(sorted(os.listdir(self.dir)), sorted(f for f in os.listdir(self.dir) if f.startswith(self.app.client_id)))
        self.assertEqual(pano.close().pending, 0)
        self.assertEqual(os.listdir(self.dir), [])  # nothing pending: the spool files go

    def test_a_close_that_could_not_deliver_leaves_the_traces_for_the_next_process(self) -> None:
        ids = self.run_child("""
            pano = Panopticon(%r, %r, %r, spool_dir=%r)
            print("\\n".join(pano.trace("later", "agent:read", "ok") for _ in range(12)))
            r = pano.close(0.3)
            assert (r.delivered, r.pending) == (False, 12), r
            assert pano.stats().dropped_shutdown == 0
        """ % (closed_port_url(), self.app.pak, self.app.client_id, self.dir))
        self.assertEqual(len(ids), 12)
        pano = fast(self.server.url, self.app, spool_dir=self.dir)
        self.assertTrue(pano.flush(10))
        self.assertEqual(sorted(t["event_id"] for t in self.op.traces(self.app.client_id)), sorted(ids))
        pano.close()

    def test_a_torn_line_in_a_dead_processs_spool_is_skipped_and_reported(self) -> None:
        first = fast(closed_port_url(), self.app, spool_dir=self.dir, flush_interval=30)
        ids = [first.trace("torn", "agent:read", "ok") for _ in range(3)]
        first.close(0.1)
        (data,) = [f for f in os.listdir(self.dir) if f.endswith(".jsonl")]
        with open(os.path.join(self.dir, data), "a") as f:
            f.write('{"e": {"event_id": "half a rec')  # what a crash in the middle of a write leaves
        errors: List[PanopticonError] = []
        second = fast(self.server.url, self.app, spool_dir=self.dir, on_error=errors.append)
        self.assertTrue(second.flush(10))
        self.assertEqual([(e.code, str(e)) for e in errors], [("spool", "1 unreadable spool line(s) skipped")])
        self.assertEqual(sorted(t["event_id"] for t in self.op.traces(self.app.client_id)), sorted(ids))
        second.close()

    def test_a_live_client_keeps_its_spool_a_second_client_on_the_dir_does_not_take_it(self) -> None:
        first = fast(closed_port_url(), self.app, spool_dir=self.dir, flush_interval=30)
        kept = [first.trace("first", "agent:read", "ok") for _ in range(3)]
        first._spool.drain(5)  # type: ignore[union-attr]
        second = fast(self.server.url, self.app, spool_dir=self.dir)
        self.assertEqual(second.stats().buffered, 0)
        second.close()
        self.assertEqual(self.op.traces(self.app.client_id), [])
        first.close(0.1)  # undeliverable: stays in the spool
        third = fast(self.server.url, self.app, spool_dir=self.dir)
        self.assertTrue(third.flush(10))
        self.assertEqual(sorted(t["event_id"] for t in self.op.traces(self.app.client_id)), sorted(kept))
        third.close()

    def test_the_spool_file_stays_bounded_while_traces_flow(self) -> None:
        pano = fast(self.server.url, self.app, spool_dir=self.dir, max_spool_bytes=8192, batch_size=50)
        ids = []
        biggest = 0
        for i in range(1500):
            ids.append(pano.trace("bounded", "agent:read", "ok", duration_ms=i))
            if i % 100 == 0:
                pano.flush(10)
                biggest = max(biggest, max(os.path.getsize(os.path.join(self.dir, f)) for f in os.listdir(self.dir) if f.endswith(".jsonl")))
        self.assertTrue(pano.flush(10))
        self.assertLess(biggest, 8192 + 60_000)  # compacted past max_spool_bytes (+ one write's worth)
        self.assertEqual(len(self.op.traces(self.app.client_id)), 1500)
        pano.close()
        self.assertEqual(os.listdir(self.dir), [])


globals().update(per_engine(_Delivery))
globals().update(per_engine(_Restart))
globals().update(per_engine(_Spool))
