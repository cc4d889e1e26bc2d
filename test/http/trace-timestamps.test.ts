/**
 * A trace's started_at over HTTP, on both engines: across the whole accepted range what is read
 * back is the instant that was sent (to the microsecond) and counts on that instant's UTC day;
 * outside it (years 0000-1969 and 2200-9999, impossible dates, leap seconds) the answer is 400 and
 * nothing is stored. Years 0000-0099 used to be stored as 19xx, and 9999-12-31T23:59:59.999999Z as
 * year 10000, with a 202.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, postTrace, startServer, traceBody, type RunningServer, type Tenant } from '../support/harness.js';

/** The instant a text names, in µs, as BigInt (independent of the server's parser). */
function instantOf(text: string): bigint {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|([+-])(\d{2}):(\d{2}))$/.exec(text);
  assert.ok(m, text);
  const date = new Date(0);
  date.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  date.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]), 0);
  let ms = BigInt(date.getTime());
  if (m[9] !== undefined) ms -= BigInt((m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11])) * 60_000);
  return ms * 1000n + BigInt((m[7] ?? '').slice(0, 6).padEnd(6, '0'));
}

const pad = (v: number, w: number) => String(v).padStart(w, '0');

/** Random texts of accepted instants: every year of the range, fractions of 0-9 digits, offsets. */
function acceptedSamples(count: number): string[] {
  let seed = 20261206;
  const rand = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % k);
  const out = ['1970-01-01T00:00:00Z', '1970-01-01T01:00:00+01:00', '2199-12-31T23:59:59.999999Z', '2200-01-01T00:59:59.999999+01:00', '2024-02-29T23:59:59.5-00:30', '2000-02-29T00:00:00Z'];
  while (out.length < count) {
    const year = 1971 + rand(228);
    const month = 1 + rand(12);
    const day = 1 + rand(28);
    let text = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(rand(24), 2)}:${pad(rand(60), 2)}:${pad(rand(60), 2)}`;
    const digits = rand(10);
    if (digits > 0) text += `.${Array.from({ length: digits }, () => rand(10)).join('')}`;
    text += rand(3) === 0 ? 'Z' : `${rand(2) ? '+' : '-'}${pad(rand(24), 2)}:${pad(rand(60), 2)}`;
    out.push(text);
  }
  return out;
}

const REFUSED = [
  '0026-05-09T10:11:12Z',
  '0000-01-01T00:00:00Z',
  '0099-12-31T23:59:59Z',
  '1969-12-31T23:59:59.999999Z',
  '1970-01-01T00:59:59+01:00',
  '2200-01-01T00:00:00Z',
  '2199-12-31T23:30:00-01:00',
  '9999-12-31T23:59:59.999999Z',
  '2016-12-31T23:59:60Z',
  '2026-02-30T10:11:12Z',
  '2026-05-09T24:00:00Z',
];

for (const engine of ENGINES) {
  describe(`started_at read back as sent [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url);
    });
    after(() => server.close());

    it('every accepted instant is stored exactly and counted on its UTC day', async () => {
      const texts = acceptedSamples(400);
      const sent = texts.map((text) => traceBody(t.clientId, { started_at: text, tool: 'when' }));
      const res = await http(server.url, 'POST', '/panopticon/traces', { token: t.pak, body: { traces: sent } });
      assert.equal(res.status, 200, res.text);
      const stored = new Map<string, string>();
      let cursor: string | null = null;
      do {
        const page: { body: { traces: Array<{ event_id: string; started_at: string }>; next_cursor: string | null } } = await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?limit=200${cursor ? `&cursor=${cursor}` : ''}`, { token: t.token });
        for (const row of page.body.traces) stored.set(row.event_id, row.started_at);
        cursor = page.body.next_cursor;
      } while (cursor !== null);
      for (const body of sent) {
        const back = stored.get(body.event_id as string);
        assert.ok(back, `${body.started_at} was stored`);
        assert.equal(instantOf(back), instantOf(body.started_at as string), `${body.started_at} read back as ${back}`);
      }
      // The last microsecond of the range counts on its own day, not on "+010000-01".
      const lastDay = await http(server.url, 'GET', `/api/apps/${t.clientId}/usage?since=2199-12-31&until=2199-12-31`, { token: t.token });
      assert.equal(lastDay.status, 200, lastDay.text);
      const expected = sent.filter((b) => new Date(Number(instantOf(b.started_at as string) / 1000n)).toISOString().startsWith('2199-12-31')).length;
      assert.ok(expected >= 2);
      assert.equal(lastDay.body.totals.traces, expected, lastDay.text);
    });

    it('refuses instants outside the range, impossible dates and leap seconds with 400, naming the field; stores none', async () => {
      const before = (await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?limit=1&tool=refused`, { token: t.token })).body.traces.length;
      assert.equal(before, 0);
      for (const text of REFUSED) {
        const res = await postTrace(server.url, t.pak, traceBody(t.clientId, { started_at: text, tool: 'refused' }));
        assert.equal(res.status, 400, `${text}: ${res.text}`);
        assert.equal(res.body.error.code, 'validation_failed');
        assert.equal(res.body.error.fields[0].field, 'started_at', res.text);
      }
      const range = await postTrace(server.url, t.pak, traceBody(t.clientId, { started_at: '0026-05-09T10:11:12Z', tool: 'refused' }));
      assert.match(range.body.error.fields[0].message, /between 1970-01-01T00:00:00Z and 2199-12-31T23:59:59\.999999Z/);
      const batch = await http(server.url, 'POST', '/panopticon/traces', { token: t.pak, body: { traces: REFUSED.map((text) => traceBody(t.clientId, { started_at: text, tool: 'refused' })) } });
      assert.equal(batch.status, 207, batch.text);
      assert.ok(batch.body.results.every((r: { status: string }) => r.status === 'rejected'));
      const after = await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?limit=1&tool=refused`, { token: t.token });
      assert.equal(after.body.traces.length, 0, 'nothing refused was stored');
    });

    it('over OTLP: a span start is kept to the microsecond; one outside the range is a rejected span, not a moved one', async () => {
      const span = (startNanos: string, tool: string) => ({
        traceId: crypto.randomBytes(16).toString('hex'),
        spanId: crypto.randomBytes(8).toString('hex'),
        name: `execute_tool ${tool}`,
        kind: 1,
        startTimeUnixNano: startNanos,
        endTimeUnixNano: (BigInt(startNanos) + 5_000_000n).toString(),
        attributes: [
          { key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } },
          { key: 'gen_ai.tool.name', value: { stringValue: tool } },
        ],
      });
      const last = (instantOf('2199-12-31T23:59:59.999999Z') * 1000n + 999n).toString();
      const beyond = (instantOf('2300-01-01T00:00:00Z') * 1000n).toString();
      const body = { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: 't' }, spans: [span(last, 'otlp_last'), span(beyond, 'otlp_beyond')] }] }] };
      const res = await fetch(`${server.url}/v1/traces`, { method: 'POST', headers: { authorization: `Bearer ${t.pak}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(res.status, 200);
      const answer = (await res.json()) as { partialSuccess?: { rejectedSpans: string; errorMessage: string } };
      assert.equal(answer.partialSuccess?.rejectedSpans, '1', JSON.stringify(answer));
      assert.match(answer.partialSuccess!.errorMessage, /startTimeUnixNano must fall between/);
      const kept = await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?tool=otlp_last`, { token: t.token });
      assert.equal(kept.body.traces[0]?.started_at, '2199-12-31T23:59:59.999999Z', kept.text);
      const moved = await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?tool=otlp_beyond`, { token: t.token });
      assert.equal(moved.body.traces.length, 0);
    });

    it('since and until take any well-formed instant, and refuse an impossible one with 400', async () => {
      const all = await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z&limit=1`, { token: t.token });
      assert.equal(all.status, 200, all.text);
      assert.equal(all.body.traces.length, 1);
      const leap = await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?since=2016-12-31T23:59:60Z`, { token: t.token });
      assert.equal(leap.status, 400, leap.text);
      assert.equal(leap.body.error.fields[0].field, 'since');
    });
  });
}
