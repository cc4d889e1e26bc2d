/**
 * The audit log against someone who can write the database (raw SQL through a connection of their
 * own), on both engines: what the keyed chain detects alone, what only a signed head kept outside
 * the database detects, what neither can (stated in docs/security.md and pinned here so the
 * document stays true), signed heads themselves, and a database written before the chain was keyed.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import util from 'node:util';
import { after, before, describe, it } from 'node:test';
import { keyedHash, unkeyedHash, KEYED_CHAIN, UNKEYED_CHAIN, type AuditFields } from '../../src/crypto/audit-chain.js';
import { AuditKey } from '../../src/crypto/audit-key.js';
import { signHead } from '../../src/audit/head.js';
import { createTenant, ENGINES, http, rawSql, startServer, TEST_AUDIT_KEY, type RawSql, type RunningServer, type Tenant } from '../support/harness.js';

type Row = Record<string, unknown>;
type Hasher = (prev: string, e: AuditFields) => { chain: number; hash: string };

/** A database writer who does not hold the server key: the best they can do is plain SHA-256, or HMAC under a key of their own. */
const unkeyed: Hasher = (prev, e) => ({ chain: UNKEYED_CHAIN, hash: unkeyedHash(prev, e) });
const wrongKey = AuditKey.fromServerKey(crypto.randomBytes(32));
const guessedKey: Hasher = (prev, e) => ({ chain: KEYED_CHAIN, hash: keyedHash(wrongKey, prev, e) });
/** A database writer who also holds the server key (a stolen key file): can forge anything the chain alone checks. */
const forger: Hasher = (prev, e) => ({ chain: KEYED_CHAIN, hash: keyedHash(TEST_AUDIT_KEY, prev, e) });

const fields = (r: Row): AuditFields => ({
  clientId: String(r.client_id), seq: Number(r.seq), at: Number(r.at), actor: String(r.actor), action: String(r.action),
  target: r.target === null ? null : String(r.target), before: r.before === null ? null : String(r.before), after: r.after === null ? null : String(r.after),
});

/**
 * What a careful attacker does: change entries from `fromSeq` on (`edit`), recompute every hash from
 * there with `hasher` so each links to the one before, and move the pin on the app row to match.
 */
async function rewrite(db: RawSql, clientId: string, fromSeq: number, hasher: Hasher, edit: (r: Row) => Row = (r) => r): Promise<void> {
  const rows = await db.query('SELECT * FROM audit_log WHERE client_id = ? ORDER BY seq', [clientId]);
  let prev = fromSeq === 1 ? '0'.repeat(64) : String(rows[fromSeq - 2]!.hash);
  for (const original of rows.slice(fromSeq - 1)) {
    const r = edit({ ...original });
    const { chain, hash } = hasher(prev, fields(r));
    await db.query('UPDATE audit_log SET after = ?, prev_hash = ?, hash = ?, chain = ? WHERE client_id = ? AND seq = ?', [r.after, prev, hash, chain, clientId, Number(r.seq)]);
    prev = hash;
  }
  await db.query('UPDATE apps SET audit_head = ?, audit_count = ? WHERE client_id = ?', [prev, rows.length, clientId]);
}

/** Deletes every entry after `keep` and moves the pin to the last one kept (none: the pin reset). */
async function truncate(db: RawSql, clientId: string, keep: number): Promise<void> {
  await db.query('DELETE FROM audit_log WHERE client_id = ? AND seq > ?', [clientId, keep]);
  const [last] = await db.query('SELECT hash FROM audit_log WHERE client_id = ? AND seq = ?', [clientId, keep]);
  await db.query('UPDATE apps SET audit_head = ?, audit_count = ? WHERE client_id = ?', [last === undefined ? null : last.hash, keep, clientId]);
}

/** The change itself: any other `after` text. */
const evil = (r: Row): Row => ({ ...r, after: JSON.stringify({ forged: true, was: r.after }) });

type AuditApi = (path: string) => Promise<{ status: number; body: any }>;

async function signedHead(api: AuditApi) {
  const res = await api('/head');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body as { head: string; seq: number; head_hash: string; client_id: string; signed_at: string };
}

/** [ok, problem, seq] of GET …/audit/verify (against `head` when given). */
async function verify(api: AuditApi, head?: string): Promise<[boolean, string | undefined, number | undefined]> {
  const res = await api(head === undefined ? '/verify' : `/verify?against=${encodeURIComponent(head)}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return [res.body.ok, res.body.problem, res.body.seq];
}

for (const engine of ENGINES) {
  describe(`audit log integrity [${engine}]`, () => {
    let server: RunningServer;
    let db: RawSql;

    before(async () => {
      server = await startServer(engine);
      db = await rawSql(server.location);
    });
    after(async () => {
      await db?.close();
      await server?.close();
    });

    /** A tenant with 6 entries: app.create, app.enable, pak.issue, three rules. */
    async function tenantWithLog(): Promise<{ t: Tenant; api: AuditApi }> {
      const t = await createTenant(server.url);
      for (const name of ['a', 'b', 'c']) {
        assert.equal((await http(server.url, 'POST', `/api/apps/${t.clientId}/policies/rules`, { token: t.token, body: { name, effect: 'deny', match: { tools: [name] } } })).status, 201);
      }
      const api = (path: string) => http(server.url, 'GET', `/api/apps/${t.clientId}/audit${path}`, { token: t.token });
      const v = (await api('/verify')).body;
      assert.deepEqual([v.ok, v.entries, v.unkeyed_entries, v.unkeyed_sealed_at], [true, 6, 0, null]);
      return { t, api };
    }
    it('every new entry is keyed; the key is derived from the server key and never printed', async () => {
      const { t, api } = await tenantWithLog();
      const entries = (await api('?limit=10')).body.entries as Array<{ keyed: boolean; action: string }>;
      assert.deepEqual(entries.map((e) => [e.action, e.keyed]).reverse(), [
        ['app.create', true], ['app.enable', true], ['pak.issue', true], ['policy.rule_add', true], ['policy.rule_add', true], ['policy.rule_add', true],
      ]);
      const rows = await db.query('SELECT chain FROM audit_log WHERE client_id = ?', [t.clientId]);
      assert.ok(rows.every((r) => Number(r.chain) === KEYED_CHAIN));
      for (const shown of [JSON.stringify(server.services.auditKey), util.inspect(server.services.auditKey), JSON.stringify({ services: { auditKey: server.services.auditKey } })]) {
        assert.match(shown, /redacted/);
      }
    });

    it('without a signed head: a rewrite by someone without the server key is detected, however the later hashes are recomputed', async () => {
      const { t, api } = await tenantWithLog();
      // HMAC under a key of their own: entry 4 onwards.
      await rewrite(db, t.clientId, 4, guessedKey, (r) => (Number(r.seq) === 4 ? evil(r) : r));
      assert.deepEqual(await verify(api), [false, 'hash_mismatch', 4]);
      // Plain SHA-256 from entry 4 on, marked unkeyed: a downgrade.
      await rewrite(db, t.clientId, 4, unkeyed, (r) => (Number(r.seq) === 4 ? evil(r) : r));
      assert.deepEqual(await verify(api), [false, 'unkeyed_entry', 4]);
      // The whole log, as if it had been written before the chain was keyed.
      await rewrite(db, t.clientId, 1, unkeyed);
      assert.deepEqual(await verify(api), [false, 'unkeyed_entry', 1]);
      // And a head is not signed over it.
      const refused = await api('/head');
      assert.equal(refused.status, 409);
      assert.deepEqual([refused.body.error.code, refused.body.error.problem, refused.body.error.seq], ['audit_chain_broken', 'unkeyed_entry', 1]);
    });

    it('without a signed head: entries deleted off the end with the pin moved, or all of them with the pin reset, go unnoticed (documented)', async () => {
      const { t, api } = await tenantWithLog();
      await truncate(db, t.clientId, 5);
      assert.deepEqual(await verify(api), [true, undefined, undefined]);
      await truncate(db, t.clientId, 0);
      assert.deepEqual(await verify(api), [true, undefined, undefined]);
      assert.equal((await api('/verify')).body.entries, 0);
    });

    it('against a signed head: truncation below it is detected, down to deleting everything and resetting the pin', async () => {
      const { t, api } = await tenantWithLog();
      const head = await signedHead(api);
      assert.deepEqual([head.client_id, head.seq], [t.clientId, 6]);
      assert.match(head.head, /^pah1\.logi_[0-9a-f]{12}\.6\.[0-9a-f]{64}\.\d+\.[A-Za-z0-9_-]{43}$/);
      const ok = (await api(`/verify?against=${encodeURIComponent(head.head)}`)).body;
      assert.equal(ok.ok, true);
      assert.deepEqual(ok.anchor, { seq: 6, head_hash: head.head_hash, signed_at: head.signed_at });

      await truncate(db, t.clientId, 5);
      assert.deepEqual(await verify(api), [true, undefined, undefined], 'the chain alone cannot tell');
      assert.deepEqual(await verify(api, head.head), [false, 'anchor_truncated', 6]);
      await truncate(db, t.clientId, 0);
      assert.deepEqual(await verify(api, head.head), [false, 'anchor_truncated', 1]);
    });

    it('against a signed head: a rewrite at or before it is detected even when the attacker holds the server key and recomputes every hash', async () => {
      for (const seq of [6, 2]) {
        const { t, api } = await tenantWithLog();
        const head = await signedHead(api);
        // Later entries are fine: the head covers 1..6, the log goes on.
        await http(server.url, 'POST', `/api/apps/${t.clientId}/kill`, { token: t.token, body: { reason: 'incident' } });
        assert.deepEqual(await verify(api, head.head), [true, undefined, undefined]);
        await rewrite(db, t.clientId, seq, forger, (r) => (Number(r.seq) === seq ? evil(r) : r));
        assert.deepEqual(await verify(api), [true, undefined, undefined], `a key holder's rewrite of entry ${seq} passes the chain alone (documented)`);
        assert.deepEqual(await verify(api, head.head), [false, 'anchor_mismatch', 6], `entry ${seq}`);
      }
    });

    it('against a signed head: what happens after it is only covered by a newer head (documented)', async () => {
      const { t, api } = await tenantWithLog();
      const head = await signedHead(api);
      await http(server.url, 'POST', `/api/apps/${t.clientId}/kill`, { token: t.token, body: { reason: 'incident' } });
      const newer = await signedHead(api);
      await truncate(db, t.clientId, 6);
      assert.deepEqual(await verify(api, head.head), [true, undefined, undefined]);
      assert.deepEqual(await verify(api, newer.head), [false, 'anchor_truncated', 7]);
    });

    it("refuses heads it did not sign for this app: edited, another server key's, another app's; malformed ones are 400 validation_failed", async () => {
      const { t, api } = await tenantWithLog();
      const other = await tenantWithLog();
      const head = await signedHead(api);
      const parts = head.head.split('.');
      const edited = [...parts.slice(0, 2), '3', ...parts.slice(3)].join('.');
      const foreign = signHead(AuditKey.fromServerKey(crypto.randomBytes(32)), { clientId: t.clientId, seq: 6, headHash: head.head_hash, signedAt: Date.now() });
      const othersHead = (await signedHead(other.api)).head;
      for (const [bad, why] of [[edited, /tag does not match/], [foreign, /tag does not match/], [othersHead, new RegExp(`head of ${other.t.clientId}, not of ${t.clientId}`)]] as const) {
        const res = await api(`/verify?against=${encodeURIComponent(bad)}`);
        assert.equal(res.status, 400, bad);
        assert.equal(res.body.error.code, 'audit_head_invalid');
        assert.match(res.body.error.message, why);
      }
      for (const bad of ['pah1.nope', `${head.head}x`, head.head.replace('pah1', 'pah2')]) {
        const res = await api(`/verify?against=${encodeURIComponent(bad)}`);
        assert.equal(res.status, 400, bad);
        assert.equal(res.body.error.code, 'validation_failed');
      }
      const intruder = await http(server.url, 'GET', `/api/apps/${t.clientId}/audit/head`, { token: other.t.token });
      assert.deepEqual([intruder.status, intruder.body.error.code], [404, 'app_not_found']);
    });

    it('changes landing while verify reads the log are not mistaken for tampering', async () => {
      const { t, api } = await tenantWithLog();
      let changing = true;
      const changes = (async () => {
        for (let i = 0; changing; i++) await http(server.url, 'PATCH', `/api/apps/${t.clientId}`, { token: t.token, body: { name: `name ${i}` } });
      })();
      try {
        for (let i = 0; i < 60; i++) {
          const v = (await api(i % 2 === 0 ? '/verify' : '/head')).body;
          assert.ok(v.ok !== false && v.error === undefined, JSON.stringify(v));
        }
      } finally {
        changing = false;
        await changes;
      }
    });

    it('an empty log (an app from before app.create was audited) is anchored as seq 0', async () => {
      const t = await createTenant(server.url, { enable: false, issuePak: false });
      await db.query('DELETE FROM audit_log WHERE client_id = ?', [t.clientId]);
      await db.query('UPDATE apps SET audit_head = NULL, audit_count = 0 WHERE client_id = ?', [t.clientId]);
      const api = (path: string) => http(server.url, 'GET', `/api/apps/${t.clientId}/audit${path}`, { token: t.token });
      const head = await signedHead(api);
      assert.deepEqual([head.seq, head.head_hash], [0, '0'.repeat(64)]);
      assert.deepEqual(await verify(api, head.head), [true, undefined, undefined]);
    });
  });

  describe(`audit log written before the chain was keyed [${engine}]`, () => {
    let a: RunningServer;
    let b: RunningServer | undefined;
    let db: RawSql;

    before(async () => {
      a = await startServer(engine);
      db = await rawSql(a.location);
    });
    after(async () => {
      await db?.close();
      await b?.close();
      await a?.close();
    });

    it('upgrading seals the unkeyed entries with a keyed audit.keyed entry; verify reports them as unkeyed; changing them afterwards is detected', async () => {
      const t = await createTenant(a.url);
      const untouched = await createTenant(a.url);
      // The database as the previous release left it: SHA-256 entries, no chain column, migration 7 not applied.
      await rewrite(db, t.clientId, 1, unkeyed);
      await rewrite(db, untouched.clientId, 1, unkeyed);
      await db.query('ALTER TABLE audit_log DROP COLUMN chain');
      await db.query('DELETE FROM schema_migrations WHERE version = 7');

      const upgradedAt = Date.now();
      b = await startServer(engine, {}, a.location);
      const api = (path: string) => http(b!.url, 'GET', `/api/apps/${t.clientId}/audit${path}`, { token: t.token });
      const v = (await api('/verify')).body;
      assert.deepEqual([v.ok, v.entries, v.unkeyed_entries], [true, 4, 3]);
      assert.ok(Date.parse(v.unkeyed_sealed_at) >= upgradedAt - 1000, v.unkeyed_sealed_at);
      const log = (await api('?limit=10')).body.entries as Array<{ action: string; actor: string; keyed: boolean; before: any }>;
      assert.deepEqual(log.map((e) => [e.action, e.keyed]).reverse(), [['app.create', false], ['app.enable', false], ['pak.issue', false], ['audit.keyed', true]]);
      assert.equal(log[0]!.actor, 'system');
      assert.deepEqual([log[0]!.before.chain, log[0]!.before.entries], ['sha256', 3]);

      // New changes are keyed and the whole log verifies, also against a head.
      await http(b.url, 'PATCH', `/api/apps/${t.clientId}`, { token: t.token, body: { name: 'renamed' } });
      const head = await signedHead(api);
      assert.equal(head.seq, 5);
      assert.deepEqual(await verify(api, head.head), [true, undefined, undefined]);

      // Changing an unkeyed entry now, even recomputing the unkeyed prefix and relinking the seal, breaks the seal's keyed hash.
      const [seal] = await db.query('SELECT prev_hash FROM audit_log WHERE client_id = ? AND seq = 4', [t.clientId]);
      const rows = await db.query('SELECT * FROM audit_log WHERE client_id = ? ORDER BY seq', [t.clientId]);
      let prev = '0'.repeat(64);
      for (const r of rows.slice(0, 3)) {
        const changed = Number(r.seq) === 1 ? evil(r) : r;
        const hash = unkeyedHash(prev, fields(changed));
        await db.query('UPDATE audit_log SET after = ?, prev_hash = ?, hash = ? WHERE client_id = ? AND seq = ?', [changed.after, prev, hash, t.clientId, Number(r.seq)]);
        prev = hash;
      }
      assert.deepEqual(await verify(api), [false, 'broken_link', 4]);
      await db.query('UPDATE audit_log SET prev_hash = ? WHERE client_id = ? AND seq = 4', [prev, t.clientId]);
      assert.notEqual(prev, seal!.prev_hash);
      assert.deepEqual(await verify(api), [false, 'hash_mismatch', 4]);

      // The other app was sealed too, once, though two servers have now opened the database.
      const other = (await http(b.url, 'GET', `/api/apps/${untouched.clientId}/audit/verify`, { token: untouched.token })).body;
      assert.deepEqual([other.ok, other.entries, other.unkeyed_entries], [true, 4, 3]);
    });
  });
}

describe('signed heads', () => {
  it('a head signed under the same server key checks on any node; keys of other labels or servers do not', () => {
    const h = { clientId: 'logi_0123456789ab', seq: 3, headHash: 'ab'.repeat(32), signedAt: 1_780_000_000_000 };
    assert.equal(signHead(TEST_AUDIT_KEY, h), signHead(AuditKey.fromServerKey(Buffer.alloc(32, 7)), h));
    assert.notEqual(signHead(TEST_AUDIT_KEY, h), signHead(AuditKey.fromServerKey(Buffer.alloc(32, 8)), h));
    // The chain and head keys are independent of each other and of the server key itself.
    assert.notEqual(TEST_AUDIT_KEY.chainMac('x'), TEST_AUDIT_KEY.headTag('x').toString('hex'));
    assert.notEqual(TEST_AUDIT_KEY.chainMac('x'), crypto.createHmac('sha256', Buffer.alloc(32, 7)).update('x').digest('hex'));
  });
});
