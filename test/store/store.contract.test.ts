/** One contract, every engine: the Store interface behaves the same on SQLite and PostgreSQL. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ENGINES, freshLocation, TEST_AUDIT_KEY } from '../support/harness.js';
import { openStore } from '../../src/store/index.js';
import type { AuditInput } from '../../src/store/types/guard.js';
import type { Store, TraceRow } from '../../src/store/types/store.js';

/** A store-level app creation with the audit entry it must carry (the apps service writes the real one). */
function appCreated<T extends { clientId: string; now: number }>(input: T): [T, AuditInput] {
  return [input, { clientId: input.clientId, at: input.now, actor: 'system', action: 'app.create', target: input.clientId, before: null, after: null }];
}

function row(clientId: string, overrides: Partial<TraceRow> = {}): TraceRow {
  return {
    clientId,
    eventId: crypto.randomUUID(),
    tool: 'search',
    scopeUsed: 'agent:read',
    status: 'ok',
    startedAtUs: Date.parse('2026-05-09T10:11:12Z') * 1000,
    day: '2026-05-09',
    durationMs: 5,
    userSub: null,
    errorMessage: null,
    sessionId: null,
    attributes: null,
    keyId: 'pak_test',
    receivedAt: Date.now(),
    checkId: null,
    ...overrides,
  };
}

function ok<T extends { ok: boolean }>(result: T): Extract<T, { ok: true }> {
  assert.ok(result.ok, JSON.stringify(result));
  return result as Extract<T, { ok: true }>;
}

for (const engine of ENGINES) {
  describe(`store contract [${engine}]`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let accountId: string;
    const now = 1_780_000_000_000;

    before(async () => {
      const fresh = freshLocation(engine);
      cleanup = fresh.cleanup;
      store = await openStore(fresh.location, { auditKey: TEST_AUDIT_KEY });
      const { account } = ok(await store.accounts.create({ id: 'acct_owner', email: 'owner@example.com', passwordHash: 'h', now }));
      accountId = account!.id;
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('migrations are idempotent', async () => {
      await store.migrate();
      assert.equal(await store.accounts.count(), 1);
    });

    it('traces.insert reports which rows were new, first occurrence wins, and counts usage once', async () => {
      const clientId = 'logi_000000000003';
      await store.apps.create(...appCreated({ clientId, accountId, name: 'traces', now }));
      const a = row(clientId);
      const b = row(clientId, { status: 'error', day: '2026-05-10', startedAtUs: Date.parse('2026-05-10T00:00:00Z') * 1000 });
      assert.deepEqual(await store.traces.insert([a, b, { ...a }]), [true, true, false]);
      assert.deepEqual(await store.traces.insert([a, row(clientId, { status: 'timeout' })]), [false, true]);
      assert.equal(await store.traces.count(clientId), 3);
      const usage = await store.traces.usage(clientId, '2026-05-01', '2026-05-31');
      assert.deepEqual(usage, [
        { day: '2026-05-09', traces: 2, errors: 1, hitlRequests: 0, killSwitch: 0 },
        { day: '2026-05-10', traces: 1, errors: 1, hitlRequests: 0, killSwitch: 0 },
      ]);
      assert.deepEqual(await store.traces.insert([a]), [false], 'a resend alone is not new either');
    });

    it('the same event_id in two apps is two traces', async () => {
      await store.apps.create(...appCreated({ clientId: 'logi_000000000004', accountId, name: 'x', now }));
      await store.apps.create(...appCreated({ clientId: 'logi_000000000005', accountId, name: 'y', now }));
      const eventId = crypto.randomUUID();
      assert.deepEqual(
        await store.traces.insert([row('logi_000000000004', { eventId }), row('logi_000000000005', { eventId })]),
        [true, true],
      );
    });

    it('lists traces newest first with filters and a keyset cursor', async () => {
      const clientId = 'logi_000000000006';
      await store.apps.create(...appCreated({ clientId, accountId, name: 'list', now }));
      const base = Date.parse('2026-06-01T00:00:00Z') * 1000;
      const rows = Array.from({ length: 7 }, (_, i) => row(clientId, { startedAtUs: base + (i % 3) * 1000, tool: i % 2 ? 'odd' : 'even', userSub: `u${i % 2}` }));
      await store.traces.insert(rows);
      const all = await store.traces.list({ clientId, limit: 100 });
      assert.equal(all.length, 7);
      for (let i = 1; i < all.length; i++) {
        const [p, c] = [all[i - 1]!, all[i]!];
        assert.ok(p.startedAtUs > c.startedAtUs || (p.startedAtUs === c.startedAtUs && p.seq > c.seq));
      }
      const pages: string[] = [];
      let before: { startedAtUs: number; seq: number } | undefined;
      for (;;) {
        const page = await store.traces.list({ clientId, limit: 3, before });
        pages.push(...page.map((t) => t.eventId));
        if (page.length < 3) break;
        const last = page[page.length - 1]!;
        before = { startedAtUs: last.startedAtUs, seq: last.seq };
      }
      assert.deepEqual(pages, all.map((t) => t.eventId));
      assert.equal((await store.traces.list({ clientId, limit: 100, tool: 'odd' })).length, 3);
      assert.equal((await store.traces.list({ clientId, limit: 100, userSub: 'u0' })).length, 4);
      assert.equal((await store.traces.list({ clientId, limit: 100, sinceUs: base + 1000, untilUs: base + 2000 })).length, 2);
      assert.equal((await store.traces.list({ clientId: 'logi_000000000005', limit: 100, tool: 'odd' })).length, 0);
    });

    it('tracesAfter reads one app after a seq, ascending and bounded; maxTraceSeq is its latest', async () => {
      const clientId = 'logi_000000000007';
      const other = 'logi_000000000008';
      await store.apps.create(...appCreated({ clientId, accountId, name: 'live', now }));
      await store.apps.create(...appCreated({ clientId: other, accountId, name: 'other', now }));
      assert.equal(await store.traces.maxSeq(clientId), 0);
      assert.deepEqual(await store.traces.after(clientId, 0, 10), []);
      // Interleaved with another app, and started_at going backwards: order is by seq, not time.
      const rows = Array.from({ length: 6 }, (_, i) => row(i % 2 ? other : clientId, { startedAtUs: (Date.parse('2026-06-01T00:00:00Z') - i * 1000) * 1000 }));
      await store.traces.insert(rows);
      const mine = await store.traces.after(clientId, 0, 10);
      // Within one commit the engine picks the seq order (PostgreSQL sorts rows by event_id to lock in one order).
      assert.deepEqual(mine.map((t) => t.eventId).sort(), [rows[0]!, rows[2]!, rows[4]!].map((r) => r.eventId).sort());
      assert.ok(mine[0]!.seq < mine[1]!.seq && mine[1]!.seq < mine[2]!.seq);
      assert.equal(await store.traces.maxSeq(clientId), mine[2]!.seq);
      assert.deepEqual((await store.traces.after(clientId, mine[0]!.seq, 1)).map((t) => t.seq), [mine[1]!.seq]);
      assert.deepEqual(await store.traces.after(clientId, mine[2]!.seq, 10), []);
    });

    it('a signal has reached this node\'s subscribers when publish returns, once', async () => {
      const got: unknown[] = [];
      const off = store.subscribe((s) => got.push(s));
      try {
        await store.publish({ kind: 'keys_changed', clientId: 'logi_000000000002' });
        assert.deepEqual(got, [{ kind: 'keys_changed', clientId: 'logi_000000000002' }]);
        // On PostgreSQL our own NOTIFY also comes back through LISTEN; it must not be heard twice.
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(got.length, 1);
      } finally {
        off();
      }
    });

    it('signals reach subscribers', async () => {
      const got = new Promise((resolve) => {
        const off = store.subscribe((s) => {
          off();
          resolve(s);
        });
      });
      await store.publish({ kind: 'keys_changed', clientId: 'logi_000000000001' });
      assert.deepEqual(await got, { kind: 'keys_changed', clientId: 'logi_000000000001' });
      const committed = new Promise((resolve) => {
        const off = store.subscribe((s) => {
          off();
          resolve(s);
        });
      });
      await store.publish({ kind: 'traces_committed', clientIds: ['logi_000000000001', 'logi_000000000002'] });
      assert.deepEqual(await committed, { kind: 'traces_committed', clientIds: ['logi_000000000001', 'logi_000000000002'] });
    });
  });
}
