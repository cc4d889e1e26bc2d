"""The product page's step 4 (a FastMCP server's hand-written ``emit_trace``) against a real server,
on each engine: its payload shapes are accepted as the page writes them (``uuid4`` event ids,
``datetime.now(timezone.utc).isoformat()`` with a ``+00:00`` offset and microseconds,
``"user_sub": None``), one at a time and in a batch, and the SDK's own traces keep the instant
to the microsecond."""
from __future__ import annotations

import datetime
import json
import uuid
from typing import Any, Dict

from support import per_engine, prestart, request, shared

from panopticon import Panopticon, format_started_at

prestart()  # the servers boot while tests that need none run


def page_payload(client_id: str, tool_name: str, scope: str, status: str, duration_ms: int, user_sub: Any = None) -> Dict[str, Any]:
    """Step 4's payload, verbatim but for the constants."""
    return {
        "event_id": str(uuid.uuid4()),
        "client_id": client_id,
        "tool": tool_name,
        "scope_used": scope,
        "status": status,
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "duration_ms": duration_ms,
        "user_sub": user_sub,
    }


def as_utc_z(text: str) -> str:
    """An RFC 3339 instant as the server returns it (docs/api.md, Conventions): UTC, Z, with
    microseconds when it has any below the millisecond, else milliseconds."""
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(datetime.timezone.utc)
    full = dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (full if dt.microsecond % 1000 else full[:-3]) + "Z"


class _Payloads:
    engine = ""

    def setUp(self) -> None:
        self.server, self.op = shared(self.engine)
        self.app = self.op.app()

    def stored(self) -> Dict[str, Dict[str, Any]]:
        return {t["event_id"]: t for t in self.op.traces(self.app.client_id)}

    def test_the_pages_emit_trace_payload_is_accepted_as_written(self) -> None:
        body = page_payload(self.app.client_id, "hello", "agent:read", "ok", 12)
        self.assertRegex(body["started_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
        self.assertIsNone(body["user_sub"])
        # What httpx's json= sends: json.dumps with its default separators.
        status, answer = request(self.server.url, "POST", "/panopticon/trace", raw=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + self.app.pak, "Content-Type": "application/json"})
        self.assertEqual((status, answer), (202, {"event_id": body["event_id"], "status": "accepted"}))
        status, answer = request(self.server.url, "POST", "/panopticon/trace", raw=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + self.app.pak, "Content-Type": "application/json"})
        self.assertEqual((status, answer["status"]), (200, "duplicate"))
        t = self.stored()[body["event_id"]]
        self.assertEqual(t["started_at"], as_utc_z(body["started_at"]))
        self.assertIsNone(t["user_sub"])

    def test_the_pages_payloads_in_a_batch(self) -> None:
        bodies = [page_payload(self.app.client_id, "search", "docs:read", s, 30, u) for s, u in (("ok", None), ("error", "alice"), ("timeout", None))]
        micro_zero = page_payload(self.app.client_id, "search", "docs:read", "ok", 1)
        micro_zero["started_at"] = datetime.datetime(2026, 5, 9, 10, 11, 12, tzinfo=datetime.timezone.utc).isoformat()  # no fraction
        bodies.append(micro_zero)
        status, answer = request(self.server.url, "POST", "/panopticon/traces", raw=json.dumps({"traces": bodies}).encode(),
                                 headers={"Authorization": "Bearer " + self.app.pak, "Content-Type": "application/json"})
        self.assertEqual(status, 200, answer)
        self.assertEqual((answer["accepted"], answer["rejected"]), (4, 0))
        stored = self.stored()
        for b in bodies:
            self.assertEqual(stored[b["event_id"]]["started_at"], as_utc_z(b["started_at"]))
            self.assertEqual(stored[b["event_id"]]["user_sub"], b["user_sub"])
        self.assertEqual(stored[micro_zero["event_id"]]["started_at"], "2026-05-09T10:11:12.000Z")
        usage = self.op.ok("GET", "/api/apps/%s/usage?since=2000-01-01&until=2199-12-31" % self.app.client_id)["totals"]
        self.assertEqual((usage["traces"], usage["errors"]), (4, 2))

    def test_the_sdk_sends_utc_offsets_with_microseconds_and_keeps_the_instant(self) -> None:
        pano = Panopticon(self.server.url, self.app.pak, self.app.client_id, flush_at_exit=False)
        ist = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
        cases = {
            "aware_utc": datetime.datetime(2026, 5, 9, 10, 11, 12, 123456, tzinfo=datetime.timezone.utc),
            "aware_ist": datetime.datetime(2026, 5, 9, 15, 41, 12, 654321, tzinfo=ist),
            "no_fraction": datetime.datetime(2026, 5, 9, 10, 11, 12, tzinfo=datetime.timezone.utc),
            "unix_seconds": 1778321472.5,
            "text": "2026-05-09T12:11:12.000001+02:00",
        }
        ids = {name: pano.trace("hello", "agent:read", "ok", started_at=value, user_sub=None) for name, value in cases.items()}
        now_id = pano.trace("hello", "agent:read", "ok")  # started_at: now
        self.assertTrue(pano.flush(10))
        self.assertEqual(pano.stats().sent, 6)
        stored = self.stored()
        self.assertEqual(stored[ids["aware_utc"]]["started_at"], "2026-05-09T10:11:12.123456Z")
        self.assertEqual(stored[ids["aware_ist"]]["started_at"], "2026-05-09T10:11:12.654321Z")
        self.assertEqual(stored[ids["no_fraction"]]["started_at"], "2026-05-09T10:11:12.000Z")
        self.assertEqual(stored[ids["unix_seconds"]]["started_at"], "2026-05-09T10:11:12.500Z")
        self.assertEqual(stored[ids["text"]]["started_at"], "2026-05-09T10:11:12.000001Z")
        now = datetime.datetime.fromisoformat(stored[now_id]["started_at"].replace("Z", "+00:00"))
        self.assertLess(abs((datetime.datetime.now(datetime.timezone.utc) - now).total_seconds()), 30)
        self.assertTrue(all(stored[i]["user_sub"] is None for i in ids.values()))
        self.assertEqual(format_started_at(cases["aware_ist"]), "2026-05-09T10:11:12.654321+00:00")
        pano.close()


globals().update(per_engine(_Payloads))
