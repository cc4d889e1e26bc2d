/**
 * Hostile input on the PAK-authenticated endpoints (trace, batch, guard check), on both engines:
 * every case gets its documented status and error code, and nothing is stored: no trace, no
 * check, no approval, no usage. The cases are a table, so the count reported in docs/security.md
 * is the table's size; a case whose answer changes fails here with its name.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { generateToken, PAK_PREFIX } from '../../src/keys/tokens.js';
import { LIMITS } from '../../src/traces/schema.js';
import { createTenant, ENGINES, rawSql, startServer, traceBody, type RunningServer, type Tenant } from '../support/harness.js';

interface Case {
  name: string;
  path: '/panopticon/trace' | '/panopticon/traces' | '/panopticon/guard/check';
  /** A JSON value (serialised here), or raw text sent as it is. */
  body: unknown;
  raw?: boolean;
  headers?: Record<string, string>;
  /** `null`: no Authorization header; a function: built from the tenants. */
  auth?: (t: Tenants) => string | null;
  status: number;
  code: string;
}

interface Tenants {
  alice: Tenant;
  mallory: Tenant;
  disabled: Tenant;
  revokedPak: string;
}

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { d: value };
  return value;
}

function deepArrays(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

/** The cases, for the app `clientId` (alice's). */
function cases(clientId: string, otherClientId: string): Case[] {
  const trace = (overrides: Record<string, unknown> = {}) => traceBody(clientId, overrides);
  const without = (field: string) => {
    const body = trace();
    delete body[field];
    return body;
  };
  const check = (overrides: Record<string, unknown> = {}) => ({ client_id: clientId, tool: 'deploy', scope: 'agent:write', ...overrides });
  const out: Case[] = [];
  const tracePath = '/panopticon/trace' as const;
  const bad = (name: string, body: unknown, code = 'validation_failed', status = 400) => out.push({ name, path: tracePath, body, status, code });

  // Authentication
  const auths: Array<[string, (t: Tenants) => string | null, number, string]> = [
    ['no Authorization header', () => null, 401, 'pak_missing'],
    ['Basic scheme', () => 'Basic dXNlcjpwYXNz', 401, 'pak_malformed'],
    ['Bearer with nothing', () => 'Bearer ', 401, 'pak_malformed'],
    ['Bearer garbage', () => 'Bearer hello', 401, 'pak_malformed'],
    ['a PAK with a wrong checksum', (t) => `Bearer ${t.alice.pak.slice(0, -1)}${t.alice.pak.endsWith('A') ? 'B' : 'A'}`, 401, 'pak_malformed'],
    ['a well-formed PAK this server never issued', () => `Bearer ${generateToken(PAK_PREFIX)}`, 401, 'pak_invalid'],
    ['a revoked PAK', (t) => `Bearer ${t.revokedPak}`, 401, 'pak_revoked'],
    ['an operator token instead of a PAK', (t) => `Bearer ${t.alice.token}`, 401, 'pak_malformed'],
    ['the PAK of an app with Panopticon off', (t) => `Bearer ${t.disabled.pak}`, 403, 'panopticon_disabled'],
    ['another app\'s PAK (client_id mismatch)', (t) => `Bearer ${t.mallory.pak}`, 403, 'client_id_mismatch'],
    ['the PAK twice in one header', (t) => `Bearer ${t.alice.pak} ${t.alice.pak}`, 401, 'pak_malformed'],
  ];
  for (const path of ['/panopticon/trace', '/panopticon/traces', '/panopticon/guard/check'] as const) {
    const body = path === '/panopticon/trace' ? trace() : path === '/panopticon/traces' ? { traces: [trace()] } : check();
    for (const [name, auth, status, code] of auths) {
      // A batch judges client_id per item: the request is 207 and the item is rejected with the code.
      const perItem = path === '/panopticon/traces' && code === 'client_id_mismatch';
      out.push({ name: `${path}: ${name}`, path, body, auth, status: perItem ? 207 : status, code });
    }
  }

  // Envelope: what is not a JSON object of the right size and type
  for (const path of ['/panopticon/trace', '/panopticon/guard/check'] as const) {
    out.push({ name: `${path}: not JSON`, path, body: '{"event_id": ', raw: true, status: 400, code: 'malformed_json' });
    out.push({ name: `${path}: empty body`, path, body: '', raw: true, status: 400, code: 'malformed_json' });
    out.push({ name: `${path}: text/plain`, path, body: '{}', raw: true, headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' });
    out.push({ name: `${path}: form-encoded`, path, body: 'a=b', raw: true, headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' });
    out.push({ name: `${path}: a JSON array`, path, body: [], status: 400, code: 'validation_failed' });
    out.push({ name: `${path}: JSON null`, path, body: 'null', raw: true, status: 400, code: 'validation_failed' });
    out.push({ name: `${path}: a JSON string`, path, body: '"x"', raw: true, status: 400, code: 'validation_failed' });
    out.push({ name: `${path}: 100,000 nested arrays`, path, body: deepArrays(100_000), raw: true, status: 413, code: 'payload_too_large' });
    out.push({ name: `${path}: 20,000 nested arrays`, path, body: deepArrays(20_000), raw: true, status: 400, code: 'validation_failed' });
    out.push({ name: `${path}: over the size limit`, path, body: 'x'.repeat(LIMITS.traceBodyBytes + 1), raw: true, status: 413, code: 'payload_too_large' });
    // Refused by the JSON parser itself (prototype poisoning), before any schema sees it.
    out.push({ name: `${path}: __proto__ key`, path, body: '{"__proto__":{"admin":true}}', raw: true, status: 400, code: 'malformed_json' });
    out.push({ name: `${path}: constructor.prototype key`, path, body: '{"constructor":{"prototype":{"admin":true}}}', raw: true, status: 400, code: 'malformed_json' });
  }

  // Each required trace field missing, and wrong in type or range
  for (const field of ['event_id', 'client_id', 'tool', 'scope_used', 'status', 'started_at', 'duration_ms']) bad(`trace without ${field}`, without(field));
  const wrong: Array<[string, Record<string, unknown>]> = [
    ['event_id a number', { event_id: 42 }], ['event_id not a UUID', { event_id: 'abc' }], ['event_id urn:uuid:', { event_id: `urn:uuid:${crypto.randomUUID()}` }],
    ['event_id in braces', { event_id: `{${crypto.randomUUID()}}` }], ['event_id without hyphens', { event_id: crypto.randomUUID().replaceAll('-', '') }],
    ['event_id with a trailing newline', { event_id: `${crypto.randomUUID()}\n` }],
    ['client_id malformed', { client_id: 'logi_XYZ' }], ['client_id with SQL', { client_id: "logi_' OR 1=1 --" }],
    ['tool empty', { tool: '' }], ['tool too long', { tool: 't'.repeat(LIMITS.toolLength + 1) }], ['tool an object', { tool: { $ne: null } }],
    ['scope_used too long', { scope_used: 's'.repeat(LIMITS.scopeLength + 1) }], ['status unknown', { status: 'success' }], ['status upper case', { status: 'OK' }],
    ['started_at not a date', { started_at: 'yesterday' }], ['started_at year 0026', { started_at: '0026-05-09T10:11:12Z' }],
    ['started_at year 9999', { started_at: '9999-12-31T23:59:59.999999Z' }], ['started_at 30 February', { started_at: '2026-02-30T10:00:00Z' }],
    ['started_at leap second', { started_at: '2016-12-31T23:59:60Z' }], ['started_at without offset', { started_at: '2026-05-09T10:11:12' }],
    ['started_at too long', { started_at: `2026-05-09T10:11:12.${'1'.repeat(40)}Z` }],
    ['duration_ms negative', { duration_ms: -1 }], ['duration_ms fractional', { duration_ms: 1.5 }], ['duration_ms over 2^31', { duration_ms: 2 ** 31 }],
    ['duration_ms a string', { duration_ms: '12' }], ['user_sub too long', { user_sub: 'u'.repeat(LIMITS.userSubLength + 1) }],
    ['session_id too long', { session_id: 's'.repeat(LIMITS.sessionIdLength + 1) }], ['error_message too long', { error_message: 'e'.repeat(LIMITS.errorMessageLength + 1) }],
    ['check_id malformed', { check_id: 'chk_../../etc' }], ['an unknown field', { is_admin: true }],
    ['attributes an array', { attributes: [1, 2] }], ['attributes a string', { attributes: 'x' }],
    ['attributes too deep', { attributes: nested(LIMITS.attributesDepth + 1) as Record<string, unknown> }],
    ['attributes too many keys', { attributes: Object.fromEntries(Array.from({ length: LIMITS.attributesKeys + 1 }, (_, i) => [`k${i}`, i])) }],
    ['attributes too large', { attributes: { big: 'x'.repeat(LIMITS.attributesBytes) } }],
  ];
  for (const [name, overrides] of wrong) bad(`trace ${name}`, trace(overrides));
  out.push({ name: 'trace for another app (client_id of another account)', path: tracePath, body: trace({ client_id: otherClientId }), status: 403, code: 'client_id_mismatch' });

  // Batches
  const batch = '/panopticon/traces' as const;
  out.push({ name: 'batch without traces', path: batch, body: {}, status: 400, code: 'validation_failed' });
  out.push({ name: 'batch with an empty list', path: batch, body: { traces: [] }, status: 400, code: 'validation_failed' });
  out.push({ name: 'batch traces not a list', path: batch, body: { traces: trace() }, status: 400, code: 'validation_failed' });
  out.push({ name: 'batch with an extra field', path: batch, body: { traces: [trace()], more: 1 }, status: 400, code: 'validation_failed' });
  out.push({ name: 'batch of 1,001 traces', path: batch, body: { traces: Array.from({ length: LIMITS.batchItems + 1 }, () => ({ event_id: crypto.randomUUID() })) }, status: 413, code: 'batch_too_large' });
  out.push({ name: 'batch with one trace of another app', path: batch, body: { traces: [trace({ client_id: otherClientId })] }, status: 207, code: 'client_id_mismatch' });
  out.push({ name: 'batch with one invalid trace', path: batch, body: { traces: [trace({ status: 'fine' })] }, status: 207, code: 'validation_failed' });
  out.push({ name: 'batch over 2 MiB', path: batch, body: 'x'.repeat(LIMITS.batchBodyBytes + 1), raw: true, status: 413, code: 'payload_too_large' });

  // Guard checks
  const guard = '/panopticon/guard/check' as const;
  const badCheck = (name: string, body: unknown, code = 'validation_failed', status = 400) => out.push({ name: `check ${name}`, path: guard, body, status, code });
  for (const field of ['client_id', 'tool', 'scope']) {
    const body: Record<string, unknown> = check();
    delete body[field];
    badCheck(`without ${field}`, body);
  }
  badCheck('tool too long', check({ tool: 't'.repeat(257) }));
  badCheck('tool empty', check({ tool: '' }));
  badCheck('scope an array', check({ scope: ['a'] }));
  badCheck('arguments an array', check({ arguments: [1] }));
  badCheck('arguments too deep', check({ arguments: nested(40) }));
  badCheck('arguments too large', check({ arguments: { big: 'x'.repeat(70_000) } }), 'payload_too_large', 413);
  badCheck('arguments with 257 keys', check({ arguments: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, i])) }));
  badCheck('event_id urn:uuid:', check({ event_id: `urn:uuid:${crypto.randomUUID()}` }));
  badCheck('an unknown field', check({ decision: 'allow' }));
  badCheck('for another app', check({ client_id: otherClientId }), 'client_id_mismatch', 403);
  return out;
}

for (const engine of ENGINES) {
  describe(`hostile input on the trace and guard endpoints [${engine}]`, () => {
    let server: RunningServer;
    let tenants: Tenants;
    let table: Case[];

    before(async () => {
      server = await startServer(engine);
      const alice = await createTenant(server.url);
      const mallory = await createTenant(server.url);
      const disabled = await createTenant(server.url);
      const off = await fetch(`${server.url}/api/apps/${disabled.clientId}`, {
        method: 'PATCH', headers: { authorization: `Bearer ${disabled.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ panopticon_enabled: false }),
      });
      assert.equal(off.status, 200);
      const revoked = await createTenant(server.url);
      const revoke = await fetch(`${server.url}/api/apps/${revoked.clientId}/paks/revoke`, {
        method: 'POST', headers: { authorization: `Bearer ${revoked.token}`, 'content-type': 'application/json' }, body: '{}',
      });
      assert.equal(revoke.status, 200);
      // The revoked key is sent for alice's app: refused as revoked before the client_id is compared.
      tenants = { alice, mallory, disabled, revokedPak: revoked.pak };
      table = cases(alice.clientId, mallory.clientId);
      // A guard rule that would open an approval for any check that got through.
      const rule = await fetch(`${server.url}/api/apps/${alice.clientId}/policies/rules`, {
        method: 'POST', headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'everything needs a human', effect: 'require_approval', match: { tools: ['*'] } }),
      });
      assert.equal(rule.status, 201);
    });
    after(() => server.close());

    it('every case gets its documented status and code, and nothing is stored', async (t) => {
      const answers: string[] = [];
      const expected: string[] = [];
      for (const c of table) {
        const headers: Record<string, string> = { 'content-type': 'application/json', ...c.headers };
        const auth = c.auth === undefined ? `Bearer ${tenants.alice.pak}` : c.auth(tenants);
        if (auth !== null) headers.authorization = auth;
        const res = await fetch(server.url + c.path, { method: 'POST', headers, body: c.raw === true ? (c.body as string) : JSON.stringify(c.body) });
        const text = await res.text();
        let code = '(not the catalogue shape)';
        try {
          const parsed = JSON.parse(text);
          if (typeof parsed?.error?.code === 'string' && typeof parsed.error.request_id === 'string') code = parsed.error.code;
          // 207: the batch's one item was rejected, with its code in its result slot.
          if (res.status === 207 && parsed.rejected === 1 && parsed.accepted === 0) code = parsed.results[0].error.code;
        } catch {
          /* reported as not the catalogue shape */
        }
        answers.push(`${c.name}: ${res.status} ${code}`);
        expected.push(`${c.name}: ${c.status} ${c.code}`);
      }
      assert.deepEqual(answers, expected);

      const sql = await rawSql(server.location);
      try {
        for (const [table_, where] of [['traces', 'client_id'], ['guard_checks', 'client_id'], ['approvals', 'client_id'], ['usage_daily', 'client_id']] as const) {
          const rows = await sql.query(`SELECT count(*) AS n FROM ${table_} WHERE ${where} IN (?, ?, ?)`, [tenants.alice.clientId, tenants.mallory.clientId, tenants.disabled.clientId]);
          assert.equal(Number(rows[0]!.n), 0, `${table_}: nothing stored`);
        }
      } finally {
        await sql.close();
      }
      t.diagnostic(`${table.length} hostile requests, each with its documented status and code; 0 rows stored`);
    });
  });
}
