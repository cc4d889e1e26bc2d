/**
 * `npm run bench:guard`: how long the AI Guard takes to decide.
 *
 *   node dist/bench/guard.js [--smoke] [--out docs/benchmarks-guard.md]
 *
 * 1. Decision, in-process: the compiled policy of 50 rules (tool and scope globs, user lists,
 *    argument conditions with RE2 regexes, numeric comparisons, list membership) evaluated on a mix
 *    of calls that match early, late and not at all, plus the arguments hash; per call latency from
 *    the monotonic clock. This is the work a check does on the request path besides I/O.
 * 2. Whole check, in-process (`runCheck`: cache, decision, hash, durable group-committed record),
 *    on SQLite and PostgreSQL, with 1 and with 64 concurrent callers: latency percentiles and
 *    checks per second. The baseline in the same run is the decision alone, so the report shows
 *    how much of a check is the durable record.
 */
import fs from 'node:fs';
import { buildServer } from '../src/http/server.js';
import { openStore } from '../src/store/index.js';
import { compilePolicy, evaluate, NO_KILLS, type CheckInput } from '../src/guard/evaluate.js';
import { ArgumentHasher } from '../src/guard/arguments-hash.js';
import { checkDocument, type PolicyDocument, type Rule } from '../src/guard/policy.js';
import { changePolicy, runCheck } from '../src/guard/service.js';
import { importPolicy } from '../src/guard/edits.js';
import { createTenant, freshLocation, TEST_AUDIT_KEY, testConfig, type Engine } from '../test/support/harness.js';

const smoke = process.argv.includes('--smoke');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1]! : 'docs/benchmarks-guard.md';

function policy(): PolicyDocument {
  const rules: Array<Record<string, unknown>> = [];
  for (let i = 0; i < 46; i++) {
    rules.push({
      id: `rul_bench${String(i).padStart(4, '0')}`,
      name: `rule ${i}`,
      enabled: true,
      effect: i % 3 === 0 ? 'deny' : i % 3 === 1 ? 'require_approval' : 'allow',
      match: {
        tools: [`tool_${i}_*`, `svc${i}.?ead`],
        scopes: i % 2 ? [`scope:${i}:*`] : [],
        users: i % 5 === 0 ? [`user_${i}`, `user_${i + 1}`] : [],
        arguments: [
          { path: 'amount', op: 'gt', value: 1000 + i },
          { path: '/to', op: 'not_suffix', value: '@ourco.com' },
          { path: 'query', op: 'not_matches', value: `(?i)\\bdrop\\s+table_${i}\\b` },
        ],
      },
      rate_limit: null, reason: null, approval_ttl_seconds: null, expires_at: null,
      created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
    });
  }
  // Four broad rules at the end, as real policies have: they decide most calls after 46 misses.
  rules.push(
    { id: 'rul_mail', name: 'external mail', enabled: true, effect: 'deny', match: { tools: ['send_email'], scopes: [], users: [], arguments: [{ path: 'to', op: 'not_suffix', value: '@ourco.com' }] }, rate_limit: null, reason: 'internal only', approval_ttl_seconds: null, expires_at: null, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' },
    { id: 'rul_transfer', name: 'big transfer', enabled: true, effect: 'require_approval', match: { tools: ['transfer'], scopes: [], users: [], arguments: [{ path: 'amount', op: 'gt', value: 1000 }] }, rate_limit: null, reason: null, approval_ttl_seconds: null, expires_at: null, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' },
    { id: 'rul_sql', name: 'no drop', enabled: true, effect: 'deny', match: { tools: ['db.*'], scopes: [], users: [], arguments: [{ path: 'query', op: 'matches', value: '(?i)\\b(drop|truncate)\\s+table\\b' }] }, rate_limit: null, reason: null, approval_ttl_seconds: null, expires_at: null, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' },
    { id: 'rul_env', name: 'prod writes', enabled: true, effect: 'require_approval', match: { tools: ['*'], scopes: ['*:write'], users: [], arguments: [{ path: 'env', op: 'in', value: ['prod', 'production'] }] }, rate_limit: null, reason: null, approval_ttl_seconds: null, expires_at: null, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' },
  );
  const checked = checkDocument({ default_effect: 'allow', rules });
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
  return checked.value;
}

const CALLS: Array<Omit<CheckInput, 'clientId'>> = [
  { tool: 'send_email', scope: 'mail:send', userSub: 'alice', sessionId: null, arguments: { to: ['bob@ourco.com', 'eve@evil.com'], subject: 'q3', body: 'x'.repeat(400) } },
  { tool: 'transfer', scope: 'payments:write', userSub: 'bob', sessionId: 's1', arguments: { amount: 5000, currency: 'EUR', to: 'acme' } },
  { tool: 'db.query', scope: 'db:read', userSub: null, sessionId: null, arguments: { query: 'SELECT * FROM users WHERE id = 42 -- then DROP  TABLE users' } },
  { tool: 'deploy', scope: 'infra:write', userSub: 'carol', sessionId: null, arguments: { env: 'prod', service: 'api', version: '1.2.3' } },
  { tool: 'tool_7_lookup', scope: 'scope:7:read', userSub: 'user_7', sessionId: null, arguments: { amount: 20000, to: 'x@y.z', query: 'ok' } },
  { tool: 'search_docs', scope: 'docs:read', userSub: 'dave', sessionId: null, arguments: { q: 'how to rotate a key', limit: 10 } },
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(latenciesUs: number[]) {
  const s = [...latenciesUs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), p999: percentile(s, 99.9), max: s[s.length - 1]! };
}

/** The keyed hash a check computes, with a key of the same shape as a server's. */
const argumentHashes = new ArgumentHasher(Buffer.alloc(32, 7));

function decisionBench(iterations: number) {
  const compiled = compilePolicy(policy(), 1);
  const lat: number[] = new Array(iterations);
  const decisions = { allow: 0, deny: 0, require_approval: 0 };
  for (let i = 0; i < iterations; i++) {
    const call = CALLS[i % CALLS.length]!;
    const t0 = process.hrtime.bigint();
    const e = evaluate(compiled, NO_KILLS, { clientId: 'logi_0123456789ab', ...call }, Date.now());
    argumentHashes.hash('logi_0123456789ab', call.arguments);
    lat[i] = Number(process.hrtime.bigint() - t0) / 1000;
    decisions[e.decision]++;
  }
  return { ...summary(lat.slice(Math.floor(iterations / 10))), decisions };
}

async function checkBench(engine: Engine, concurrency: number, durationMs: number) {
  const { location, cleanup } = freshLocation(engine);
  const config = testConfig(location, { logLevel: 'silent' });
  const store = await openStore(location, { auditKey: TEST_AUDIT_KEY, pgPoolSize: config.pgPoolSize });
  // testConfig: the tenant's sign-up at the test suites' scrypt cost; passwords are not what this measures.
  const { app, services } = await buildServer(config, store);
  try {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const tenant = await createTenant(url);
    const auth = await services.paks.authenticate(`Bearer ${tenant.pak}`);
    if (!auth.ok) throw new Error('bench tenant has no working PAK');
    const saved = await changePolicy(services, {
      clientId: tenant.clientId, actor: 'bench', action: 'policy.import', target: null,
      edit: importPolicy({ default_effect: 'allow', rules: policy().rules.map(({ created_at: _c, updated_at: _u, ...r }) => r as Omit<Rule, 'created_at' | 'updated_at'>) }, () => 'rul_x', new Date().toISOString()),
    });
    if (!saved.ok) throw new Error('could not install the bench policy');
    const lat: number[] = [];
    let i = 0;
    const deadline = Date.now() + durationMs;
    const started = Date.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        const call = CALLS[i++ % CALLS.length]!;
        const t0 = process.hrtime.bigint();
        await runCheck(services, { clientId: tenant.clientId, keyId: auth.key.keyId, tool: call.tool, scope: call.scope, userSub: call.userSub, sessionId: call.sessionId, eventId: null, arguments: call.arguments as Record<string, unknown>, body: call, idempotency: { idempotencyKey: null, signed: null } });
        lat.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    }));
    const seconds = (Date.now() - started) / 1000;
    return { engine, concurrency, perSecond: lat.length / seconds, ...summary(lat) };
  } finally {
    await app.close();
    await store.close();
    await cleanup();
  }
}

const fmt = (us: number) => (us < 1000 ? `${us.toFixed(1)} µs` : `${(us / 1000).toFixed(2)} ms`);

async function main(): Promise<void> {
  const decision = decisionBench(smoke ? 20_000 : 300_000);
  const checks = [];
  for (const engine of ['sqlite', 'postgres'] as const) {
    for (const concurrency of [1, 64]) checks.push(await checkBench(engine, concurrency, smoke ? 500 : 5000));
  }
  const md: string[] = [];
  md.push('# AI Guard benchmark', '');
  md.push(`Generated by \`npm run bench:guard\` on ${new Date().toISOString()}${smoke ? ' (smoke run: short, not for citing)' : ''}. Do not edit by hand.`, '');
  md.push('Machine: 2 cores, Node ' + process.version + '; the database and this process share them. Policy: 50 rules (46 narrow ones with tool and scope globs, user lists and three argument conditions each — a numeric comparison, a suffix test and an RE2 regex — then 4 broad rules that decide most calls), default allow. Calls: a mix of six realistic tool calls, matching late or not at all, with their arguments hashed.', '');
  md.push('## Decision, in-process', '');
  md.push('`evaluate()` on the compiled policy plus the keyed hash (HMAC-SHA-256) of the canonical arguments: what a check computes besides I/O. Target: p99 well under 2 ms.', '');
  md.push('| calls | p50 | p99 | p99.9 | max | allow / deny / require_approval |', '| ---: | ---: | ---: | ---: | ---: | --- |');
  md.push(`| ${decision.n.toLocaleString('en')} | ${fmt(decision.p50)} | ${fmt(decision.p99)} | ${fmt(decision.p999)} | ${fmt(decision.max)} | ${decision.decisions.allow} / ${decision.decisions.deny} / ${decision.decisions.require_approval} |`, '');
  md.push(`p99 is **${(2000 / decision.p99).toFixed(0)}x** under 2 ms.`, '');
  md.push('## Whole check, in-process', '');
  md.push('`runCheck()`: per-node policy cache, decision, arguments hash, and the durable record of the decision (with the approval it opens and its usage counters) through the check group commit — SQLite synchronous=FULL, PostgreSQL synchronous_commit=on. No HTTP. The ratio column compares p50 with the decision alone measured above in the same run.', '');
  md.push('| engine | concurrent callers | checks/s | p50 | p99 | p99.9 | p50 vs decision alone |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const c of checks) {
    md.push(`| ${c.engine === 'sqlite' ? 'SQLite' : 'PostgreSQL'} | ${c.concurrency} | ${Math.round(c.perSecond).toLocaleString('en')} | ${fmt(c.p50)} | ${fmt(c.p99)} | ${fmt(c.p999)} | ${(c.p50 / decision.p50).toFixed(0)}x |`);
  }
  md.push('', 'The decision itself is a few microseconds; a check\'s latency is the durable write of its record (one fsync shared by every check in the same group commit), which is why it is awaited: an approval must exist before the agent polls it, and a kill-switch denial must be counted.', '');
  fs.writeFileSync(out, md.join('\n'));
  process.stdout.write(md.join('\n') + '\n');
}

await main();
