/**
 * The trace store's contract (store.traces), on every engine: a group commit inserts the rows that
 * are new per (app, event_id), first occurrence winning, and adds exactly those to the daily usage;
 * the timeline lists newest first with filters and a keyset cursor; the live feed reads one app
 * after a seq. How SQLite's commit worker merges callers is its own suite (sqlite-commit-worker.test.ts).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Store, StoredTrace, TraceQuery, TraceRow, TraceStatus } from '../../src/store/types/store.js';
import { ENGINES } from '../support/locations.js';
import { createAccount, createApp, freshStore, NOW, type OpenedStore, traceRow } from '../support/store-fixtures.js';

const ACCOUNT = 'acct_traces';
/** 2026-06-01T00:00:00Z in microseconds. */
const BASE_US = Date.parse('2026-06-01T00:00:00Z') * 1000;

const withoutSeq = ({ seq: _seq, ...row }: StoredTrace): TraceRow => row;
const eventIds = (traces: readonly { eventId: string }[]) => traces.map((t) => t.eventId);
const usageRow = (day: string, traces: number, errors: number) => ({ day, traces, errors, hitlRequests: 0, killSwitch: 0 });

for (const engine of ENGINES) {
  describe(`trace store contract [${engine}]`, () => {
    let opened: OpenedStore;
    let store: Store;
    const app = async (clientId: string) => {
      await createApp(store, ACCOUNT, clientId);
      return clientId;
    };

    before(async () => {
      opened = await freshStore(engine);
      store = opened.store;
      await createAccount(store, ACCOUNT);
    });
    after(async () => {
      await opened?.close();
    });

    it('insert stores every field as given, to the microsecond; list and after read it back with its seq', async () => {
      const clientId = await app('logi_d00000000001');
      const full = traceRow(clientId, {
        tool: 'fetch_url', scopeUsed: 'agent:write', status: 'error', startedAtUs: BASE_US + 123_457, day: '2026-06-01', durationMs: 1234,
        userSub: 'user-7', errorMessage: 'boom: "quoted" \\ back, ünïcødé 🚀\nsecond line', sessionId: 'sess-1',
        attributes: JSON.stringify({ a: 1, nested: { b: [1, 2] }, s: 'x"y' }), keyId: 'pak_key', receivedAt: NOW + 5, checkId: 'chk_1',
      });
      const bare = traceRow(clientId, { startedAtUs: BASE_US + 1, day: '2026-06-01', status: 'denied' });
      assert.deepEqual(await store.traces.insert([bare, full]), [true, true]);
      const listed = await store.traces.list({ clientId, limit: 10 });
      assert.deepEqual(listed.map(withoutSeq), [full, bare]);
      assert.ok(listed.every((t) => Number.isSafeInteger(t.seq) && t.seq > 0), 'seq is a positive integer');
      assert.notEqual(listed[0]!.seq, listed[1]!.seq);
      const fed = await store.traces.after(clientId, 0, 10);
      assert.deepEqual([...fed].sort((a, b) => b.startedAtUs - a.startedAtUs), listed, 'the feed reads the same rows, seq included');
      assert.equal(await store.traces.count(clientId), 2);
    });

    it('within one batch the first occurrence of an event id is new and is what is stored; repeats are not new and count nowhere', async () => {
      const clientId = await app('logi_d00000000002');
      const a = traceRow(clientId, { tool: 'first' });
      const b = traceRow(clientId);
      const repeat = { ...a, tool: 'second', status: 'error' as const };
      assert.deepEqual(await store.traces.insert([a, b, repeat, { ...repeat, status: 'timeout' }]), [true, true, false, false]);
      const stored = await store.traces.list({ clientId, limit: 10 });
      assert.deepEqual(stored.map(withoutSeq).find((t) => t.eventId === a.eventId), a);
      assert.equal(await store.traces.count(clientId), 2);
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-09', '2026-05-09'), [usageRow('2026-05-09', 2, 0)], 'the error repeats are not counted');

      // The repeat listed first in the batch wins, wherever the engine sorts rows.
      const c = traceRow(clientId, { tool: 'zzz' });
      assert.deepEqual(await store.traces.insert([{ ...c, tool: 'aaa', status: 'timeout' }, c]), [true, false]);
      assert.deepEqual((await store.traces.list({ clientId, limit: 10, tool: 'aaa' })).map(withoutSeq), [{ ...c, tool: 'aaa', status: 'timeout' }]);
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-09', '2026-05-09'), [usageRow('2026-05-09', 3, 1)]);
    });

    it('across batches a resend is not new and changes nothing; a batch of resends, or an empty one, writes nothing', async () => {
      const clientId = await app('logi_d00000000003');
      const a = traceRow(clientId, { tool: 'kept' });
      assert.deepEqual(await store.traces.insert([a]), [true]);
      const seq = await store.traces.maxSeq(clientId);
      const c = traceRow(clientId, { status: 'error' });
      assert.deepEqual(await store.traces.insert([{ ...a, tool: 'replaced', status: 'timeout' }, c]), [false, true]);
      assert.deepEqual(await store.traces.insert([a, c]), [false, false]);
      assert.deepEqual(await store.traces.insert([]), []);
      const stored = await store.traces.list({ clientId, limit: 10 });
      assert.equal(stored.length, 2);
      assert.deepEqual(stored.map(withoutSeq).find((t) => t.eventId === a.eventId), a);
      assert.equal(stored.find((t) => t.eventId === a.eventId)?.seq, seq, 'the resend did not rewrite the row');
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-01', '2026-05-31'), [usageRow('2026-05-09', 2, 1)]);
    });

    it('the same event id in two apps is two traces, each in its own app\'s count and usage', async () => {
      const x = await app('logi_d00000000004');
      const y = await app('logi_d00000000005');
      const eventId = crypto.randomUUID();
      assert.deepEqual(await store.traces.insert([traceRow(x, { eventId }), traceRow(y, { eventId, status: 'error' })]), [true, true]);
      assert.deepEqual(await store.traces.insert([traceRow(y, { eventId })]), [false]);
      assert.deepEqual([await store.traces.count(x), await store.traces.count(y)], [1, 1]);
      assert.deepEqual(eventIds(await store.traces.list({ clientId: x, limit: 10 })), [eventId]);
      assert.deepEqual((await store.traces.list({ clientId: y, limit: 10 })).map((t) => [t.eventId, t.status]), [[eventId, 'error']]);
      assert.deepEqual(await store.traces.usage(x, '2026-05-09', '2026-05-09'), [usageRow('2026-05-09', 1, 0)]);
      assert.deepEqual(await store.traces.usage(y, '2026-05-09', '2026-05-09'), [usageRow('2026-05-09', 1, 1)]);
    });

    it('usage: one row per day within the inclusive range, in day order; errors are error and timeout, not denied; each app apart', async () => {
      const clientId = await app('logi_d00000000006');
      const other = await app('logi_d00000000007');
      const on = (day: string, status: TraceStatus, id = clientId) => traceRow(id, { day, status, startedAtUs: Date.parse(`${day}T12:00:00Z`) * 1000 });
      // Days arrive out of order, across two commits.
      await store.traces.insert([on('2026-05-11', 'error'), on('2026-05-09', 'ok'), on('2026-05-09', 'error')]);
      await store.traces.insert([on('2026-05-08', 'ok'), on('2026-05-09', 'denied'), on('2026-05-09', 'timeout'), on('2026-05-09', 'error', other)]);
      const may = [usageRow('2026-05-08', 1, 0), usageRow('2026-05-09', 4, 2), usageRow('2026-05-11', 1, 1)];
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-01', '2026-05-31'), may);
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-08', '2026-05-08'), [may[0]], 'the first day is in the range');
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-09', '2026-05-11'), [may[1], may[2]], 'so is the last');
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-10', '2026-05-10'), [], 'a day without traces has no row');
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-12', '2026-06-30'), []);
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-11', '2026-05-09'), [], 'an empty range');
      assert.deepEqual(await store.traces.usage(other, '2026-05-01', '2026-05-31'), [usageRow('2026-05-09', 1, 1)]);
      assert.deepEqual(await store.traces.usage('logi_000000000000', '2026-05-01', '2026-05-31'), []);
    });

    describe('the timeline', () => {
      const TOOLS = ['alpha', 'beta', 'gamma'];
      const STATUSES: TraceStatus[] = ['ok', 'error', 'denied', 'timeout'];
      let clientId: string;
      /** Every trace of the app as list returns it: checked to be newest first, then by seq. */
      let all: StoredTrace[];
      const list = async (query: Omit<TraceQuery, 'clientId' | 'limit'> & { limit?: number }) => store.traces.list({ clientId, limit: 100, ...query });

      before(async () => {
        clientId = await app('logi_d00000000008');
        const other = await app('logi_d00000000009');
        // 24 traces at 6 distinct times (4 each: ties the cursor must split by seq); every tool,
        // status and user at several times; some without a user.
        const rows = Array.from({ length: 24 }, (_, i) =>
          traceRow(clientId, {
            startedAtUs: BASE_US + (i % 6) * 1000,
            tool: TOOLS[i % 3]!,
            status: STATUSES[Math.floor(i / 6)]!,
            userSub: i % 4 === 3 ? null : `user${i % 2}`,
          }),
        );
        // Committed in three batches, the newest not last, with another app's look-alikes between.
        const similar = rows.slice(0, 6).map((r) => ({ ...r, clientId: other, eventId: crypto.randomUUID() }));
        await store.traces.insert(rows.slice(12));
        await store.traces.insert([...rows.slice(0, 6), ...similar]);
        await store.traces.insert(rows.slice(6, 12));
        all = await list({});
        assert.deepEqual([...eventIds(all)].sort(), rows.map((r) => r.eventId).sort());
      });

      it('lists newest first by started_at, then by seq', () => {
        assert.equal(all.length, 24);
        for (let i = 1; i < all.length; i++) {
          const [p, c] = [all[i - 1]!, all[i]!];
          assert.ok(p.startedAtUs > c.startedAtUs || (p.startedAtUs === c.startedAtUs && p.seq > c.seq), `row ${i} is older than row ${i - 1}`);
        }
        assert.equal(all[0]!.startedAtUs, BASE_US + 5000);
        assert.equal(all[23]!.startedAtUs, BASE_US);
      });

      it('filters by tool, status, user, since (inclusive) and until (exclusive), alone and together, within the app', async () => {
        const cases: Array<[Omit<TraceQuery, 'clientId' | 'limit'>, (t: StoredTrace) => boolean, number]> = [
          [{ tool: 'alpha' }, (t) => t.tool === 'alpha', 8],
          [{ status: 'error' }, (t) => t.status === 'error', 6],
          [{ status: 'timeout' }, (t) => t.status === 'timeout', 6],
          [{ userSub: 'user0' }, (t) => t.userSub === 'user0', 12],
          [{ userSub: 'user1' }, (t) => t.userSub === 'user1', 6],
          [{ sinceUs: BASE_US + 2000 }, (t) => t.startedAtUs >= BASE_US + 2000, 16],
          [{ untilUs: BASE_US + 4000 }, (t) => t.startedAtUs < BASE_US + 4000, 16],
          [{ sinceUs: BASE_US + 2000, untilUs: BASE_US + 4000 }, (t) => t.startedAtUs >= BASE_US + 2000 && t.startedAtUs < BASE_US + 4000, 8],
          [{ tool: 'beta', status: 'ok' }, (t) => t.tool === 'beta' && t.status === 'ok', 2],
          [{ tool: 'gamma', userSub: 'user1', sinceUs: BASE_US + 1000 }, (t) => t.tool === 'gamma' && t.userSub === 'user1' && t.startedAtUs >= BASE_US + 1000, 2],
          [{ tool: 'nothing' }, () => false, 0],
          [{ sinceUs: BASE_US + 3000, untilUs: BASE_US + 3000 }, () => false, 0],
        ];
        for (const [query, matches, count] of cases) {
          const expected = all.filter(matches);
          assert.equal(expected.length, count, `the data set has ${count} for ${JSON.stringify(query)}`);
          assert.deepEqual(eventIds(await list(query)), eventIds(expected), JSON.stringify(query));
        }
        assert.equal((await store.traces.list({ clientId: 'logi_d00000000009', limit: 100, tool: 'alpha' })).length, 2, 'the other app\'s own');
      });

      it('limit keeps the newest', async () => {
        assert.deepEqual(eventIds(await list({ limit: 5 })), eventIds(all.slice(0, 5)));
        assert.deepEqual(eventIds(await list({ limit: 1, status: 'denied' })), eventIds(all.filter((t) => t.status === 'denied').slice(0, 1)));
      });

      it('the keyset cursor returns what is strictly older than (started_at, seq), splitting ties by seq; pages add up to the whole list', async () => {
        const at = (i: number) => ({ startedAtUs: all[i]!.startedAtUs, seq: all[i]!.seq });
        assert.equal(all[5]!.startedAtUs, all[6]!.startedAtUs, 'the cursor sits inside a group of ties');
        assert.deepEqual(eventIds(await list({ before: at(5) })), eventIds(all.slice(6)));
        assert.deepEqual(eventIds(await list({ before: at(23) })), []);
        assert.deepEqual(eventIds(await list({ before: { startedAtUs: all[0]!.startedAtUs + 1, seq: 0 } })), eventIds(all), 'any seq at a later time');

        const pages = async (query: Omit<TraceQuery, 'clientId' | 'limit' | 'before'>, size: number) => {
          const seen: string[] = [];
          let cursor: TraceQuery['before'];
          for (let n = 0; n < 30; n++) {
            const page = await list({ ...query, limit: size, before: cursor });
            seen.push(...eventIds(page));
            if (page.length < size) return seen;
            cursor = { startedAtUs: page.at(-1)!.startedAtUs, seq: page.at(-1)!.seq };
          }
          throw new Error('the cursor does not advance');
        };
        assert.deepEqual(await pages({}, 5), eventIds(all));
        assert.deepEqual(await pages({ tool: 'beta' }, 3), eventIds(all.filter((t) => t.tool === 'beta')));
        assert.deepEqual(await pages({ sinceUs: BASE_US + 1000, userSub: 'user0' }, 4), eventIds(all.filter((t) => t.startedAtUs >= BASE_US + 1000 && t.userSub === 'user0')));
      });
    });

    it('count, after and maxSeq read one app; after is ascending by seq and bounded; a later commit has higher seqs', async () => {
      const clientId = await app('logi_d0000000000a');
      const other = await app('logi_d0000000000b');
      assert.equal(await store.traces.maxSeq(clientId), 0);
      assert.deepEqual(await store.traces.after(clientId, 0, 10), []);
      assert.equal(await store.traces.count(clientId), 0);
      // Interleaved with another app, and started_at going backwards: the feed's order is by seq, not time.
      const rows = Array.from({ length: 6 }, (_, i) => traceRow(i % 2 ? other : clientId, { startedAtUs: BASE_US - i * 1000 }));
      await store.traces.insert(rows);
      const mine = await store.traces.after(clientId, 0, 10);
      // Within one commit the engine picks the seq order (PostgreSQL sorts rows by event_id to lock in one order).
      assert.deepEqual([...eventIds(mine)].sort(), eventIds([rows[0]!, rows[2]!, rows[4]!]).sort());
      assert.ok(mine[0]!.seq < mine[1]!.seq && mine[1]!.seq < mine[2]!.seq);
      assert.equal(await store.traces.maxSeq(clientId), mine[2]!.seq);
      assert.equal(await store.traces.count(clientId), 3);
      assert.deepEqual(await store.traces.after(clientId, mine[0]!.seq, 1), [mine[1]]);
      assert.deepEqual(await store.traces.after(clientId, mine[0]!.seq, 10), [mine[1], mine[2]]);
      assert.deepEqual(await store.traces.after(clientId, mine[2]!.seq, 10), []);
      assert.deepEqual([...eventIds(await store.traces.after(other, 0, 10))].sort(), eventIds([rows[1]!, rows[3]!, rows[5]!]).sort());

      const high = mine[2]!.seq;
      const later = [traceRow(clientId, { startedAtUs: BASE_US - 10_000_000 }), traceRow(clientId)];
      await store.traces.insert(later);
      const next = await store.traces.after(clientId, high, 10);
      assert.deepEqual([...eventIds(next)].sort(), eventIds(later).sort(), 'exactly the later commit\'s rows');
      assert.ok(next.every((t) => t.seq > high));
      assert.equal(await store.traces.maxSeq(clientId), next[1]!.seq);
      assert.equal(await store.traces.count(clientId), 5);
      assert.equal(await store.traces.count(other), 3);
    });

    it('concurrent inserts: each caller gets the answers for its own rows; a row several callers send is new for exactly one; usage matches what is stored', async () => {
      const clientId = await app('logi_d0000000000c');
      const shared = { x: traceRow(clientId, { status: 'error' }), y: traceRow(clientId) };
      const sharer = (i: number) => ([0, 3, 7].includes(i) ? 'x' : [2, 5].includes(i) ? 'y' : null);
      const batches = Array.from({ length: 10 }, (_, i) => {
        const s = sharer(i);
        return [traceRow(clientId, { status: i % 3 === 0 ? 'timeout' : 'ok' }), s === null ? traceRow(clientId) : shared[s], traceRow(clientId, { status: 'denied' })];
      });
      const answers = await Promise.all(batches.map((b) => store.traces.insert(b)));
      answers.forEach((a, i) => {
        assert.equal(a[0], true, `caller ${i}`);
        assert.equal(a[2], true, `caller ${i}`);
        if (sharer(i) === null) assert.equal(a[1], true, `caller ${i}`);
      });
      for (const s of ['x', 'y'] as const) {
        const newFor = answers.filter((_, i) => sharer(i) === s && answers[i]![1]).length;
        assert.equal(newFor, 1, `${s} is new for one of its senders`);
      }
      assert.equal(await store.traces.count(clientId), 27);
      const errors = (await store.traces.list({ clientId, limit: 100, status: 'error' })).length + (await store.traces.list({ clientId, limit: 100, status: 'timeout' })).length;
      assert.equal(errors, 5, 'x once, and the four timeouts');
      assert.deepEqual(await store.traces.usage(clientId, '2026-05-09', '2026-05-09'), [usageRow('2026-05-09', 27, errors)]);
    });
  });
}
