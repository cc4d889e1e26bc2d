/** The evaluator, table-driven: each row is a policy, a call and the decision it must get. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import crypto from 'node:crypto';
import { ArgumentHasher } from '../../src/guard/arguments-hash.js';
import { applyRateLimit, canonicalJson, compilePolicy, evaluate, globMatch, NO_KILLS, type CheckInput, type KillState } from '../../src/guard/evaluate.js';
import { checkRuleInput, type PolicyDocument, type Rule, type RuleInput } from '../../src/guard/policy.js';

let n = 0;
function rule(partial: Omit<Partial<RuleInput>, 'match'> & { match?: Partial<RuleInput['match']> }): Rule {
  const checked = checkRuleInput({ name: `r${++n}`, effect: 'deny', ...partial, match: { ...partial.match } });
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
  return { id: `rul_${n}`, ...checked.value, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' };
}

const call = (over: Partial<CheckInput> = {}): CheckInput => ({
  clientId: 'logi_000000000001', tool: 'send_email', scope: 'mail:send', userSub: 'u1', sessionId: null, arguments: {}, ...over,
});

const NOW = Date.parse('2026-11-25T12:00:00Z');

interface Row {
  name: string;
  rules: Rule[];
  defaultEffect?: PolicyDocument['default_effect'];
  kills?: KillState;
  input: CheckInput;
  decision: string;
  reason?: string;
  ruleIndex?: number | null;
}

const external = rule({ effect: 'deny', reason: 'external recipients need review', match: { tools: ['send_email'], arguments: [{ path: 'to', op: 'not_suffix', value: '@ourco.com' }] } });
const bigTransfer = rule({ effect: 'require_approval', match: { tools: ['transfer'], arguments: [{ path: '/amount', op: 'gt', value: 1000 }] } });

const rows: Row[] = [
  { name: 'no rules: default allow', rules: [], input: call(), decision: 'allow', reason: 'default', ruleIndex: null },
  { name: 'no rules: default deny', rules: [], defaultEffect: 'deny', input: call(), decision: 'deny', reason: 'default' },
  { name: 'default require_approval', rules: [], defaultEffect: 'require_approval', input: call(), decision: 'require_approval' },
  { name: 'deny external recipient', rules: [external], input: call({ arguments: { to: 'eve@evil.com' } }), decision: 'deny', reason: 'external recipients need review', ruleIndex: 0 },
  { name: 'allow internal recipient', rules: [external], input: call({ arguments: { to: 'bob@ourco.com' } }), decision: 'allow', reason: 'default' },
  { name: 'one external in a list is enough to deny', rules: [external], input: call({ arguments: { to: ['bob@ourco.com', 'eve@evil.com'] } }), decision: 'deny' },
  { name: 'all internal in a list passes', rules: [external], input: call({ arguments: { to: ['bob@ourco.com', 'al@ourco.com'] } }), decision: 'allow' },
  { name: 'missing argument: negated condition holds', rules: [external], input: call({ arguments: {} }), decision: 'deny' },
  { name: 'other tool is not matched', rules: [external], input: call({ tool: 'read_email', arguments: { to: 'eve@evil.com' } }), decision: 'allow' },
  { name: 'transfer over 1000 needs approval', rules: [bigTransfer], input: call({ tool: 'transfer', arguments: { amount: 5000 } }), decision: 'require_approval', ruleIndex: 0 },
  { name: 'numeric string counts as a number', rules: [bigTransfer], input: call({ tool: 'transfer', arguments: { amount: '1500.5' } }), decision: 'require_approval' },
  { name: 'transfer of 1000 is not over', rules: [bigTransfer], input: call({ tool: 'transfer', arguments: { amount: 1000 } }), decision: 'allow' },
  { name: 'non-numeric amount does not match gt', rules: [bigTransfer], input: call({ tool: 'transfer', arguments: { amount: 'lots' } }), decision: 'allow' },
  { name: 'first matching rule wins', rules: [rule({ effect: 'allow', match: { tools: ['send_*'] } }), external], input: call({ arguments: { to: 'eve@evil.com' } }), decision: 'allow', ruleIndex: 0 },
  { name: 'disabled rule is skipped', rules: [rule({ enabled: false, match: { tools: ['*'] } })], input: call(), decision: 'allow' },
  { name: 'expired rule is skipped', rules: [rule({ expires_at: '2026-11-25T11:59:59Z', match: { tools: ['*'] } })], input: call(), decision: 'allow' },
  { name: 'unexpired rule applies', rules: [rule({ expires_at: '2026-11-25T12:00:01Z', match: { tools: ['*'] } })], input: call(), decision: 'deny' },
  { name: 'scope glob', rules: [rule({ match: { scopes: ['admin:*'] } })], input: call({ scope: 'admin:write' }), decision: 'deny' },
  { name: 'scope glob miss', rules: [rule({ match: { scopes: ['admin:*'] } })], input: call({ scope: 'agent:read' }), decision: 'allow' },
  { name: 'user list', rules: [rule({ match: { users: ['u2', 'u3'] } })], input: call({ userSub: 'u3' }), decision: 'deny' },
  { name: 'user list miss', rules: [rule({ match: { users: ['u2'] } })], input: call({ userSub: 'u1' }), decision: 'allow' },
  { name: 'user list never matches an anonymous call', rules: [rule({ match: { users: ['u2'] } })], input: call({ userSub: null }), decision: 'allow' },
  { name: 'regex matches (RE2)', rules: [rule({ match: { arguments: [{ path: 'query', op: 'matches', value: '(?i)drop\\s+table' }] } })], input: call({ arguments: { query: 'DROP  TABLE users' } }), decision: 'deny' },
  { name: 'in list', rules: [rule({ match: { arguments: [{ path: 'env', op: 'in', value: ['prod', 'staging'] }] } })], input: call({ arguments: { env: 'prod' } }), decision: 'deny' },
  { name: 'not_in list', rules: [rule({ match: { arguments: [{ path: 'env', op: 'not_in', value: ['dev'] }] } })], input: call({ arguments: { env: 'dev' } }), decision: 'allow' },
  { name: 'eq / ne', rules: [rule({ match: { arguments: [{ path: 'a.b', op: 'eq', value: true }, { path: 'c', op: 'ne', value: 'x' }] } })], input: call({ arguments: { a: { b: true }, c: 'y' } }), decision: 'deny' },
  { name: 'prefix on a nested array element by dotted index', rules: [rule({ match: { arguments: [{ path: 'files.0', op: 'prefix', value: '/etc/' }] } })], input: call({ arguments: { files: ['/etc/passwd'] } }), decision: 'deny' },
  { name: 'exists / not_exists', rules: [rule({ match: { arguments: [{ path: 'force', op: 'exists' }, { path: 'dry_run', op: 'not_exists' }] } })], input: call({ arguments: { force: false } }), decision: 'deny' },
  { name: 'numeric range by two conditions', rules: [rule({ match: { arguments: [{ path: 'n', op: 'gte', value: 10 }, { path: 'n', op: 'lt', value: 20 }] } })], input: call({ arguments: { n: 20 } }), decision: 'allow' },
  { name: 'app kill switch beats an allow rule', rules: [rule({ effect: 'allow', match: { tools: ['*'] } })], kills: { app: { reason: 'incident 42' }, tools: new Map() }, input: call(), decision: 'deny', reason: 'kill_switch', ruleIndex: null },
  { name: 'tool kill switch', rules: [], kills: { app: null, tools: new Map([['send_email', { reason: 'spam' }]]) }, input: call(), decision: 'deny', reason: 'kill_switch' },
  { name: 'tool kill switch spares other tools', rules: [], kills: { app: null, tools: new Map([['transfer', { reason: 'x' }]]) }, input: call(), decision: 'allow' },
];

describe('guard evaluator', () => {
  for (const row of rows) {
    it(row.name, () => {
      const policy = compilePolicy({ default_effect: row.defaultEffect ?? 'allow', rules: row.rules }, 7);
      const e = evaluate(policy, row.kills ?? NO_KILLS, row.input, NOW);
      assert.equal(e.decision, row.decision);
      if (row.reason !== undefined) assert.equal(e.reason, row.reason);
      if (row.ruleIndex !== undefined) assert.equal(e.ruleId, row.ruleIndex === null ? null : row.rules[row.ruleIndex]!.id);
      assert.equal(e.killed, row.reason === 'kill_switch');
    });
  }

  it('require_approval carries the rule TTL (default 10 minutes)', () => {
    const withTtl = rule({ effect: 'require_approval', approval_ttl_seconds: 60, match: { tools: ['a'] } });
    const without = rule({ effect: 'require_approval', match: { tools: ['b'] } });
    const policy = compilePolicy({ default_effect: 'allow', rules: [withTtl, without] }, 1);
    assert.equal(evaluate(policy, NO_KILLS, call({ tool: 'a' }), NOW).approvalTtlMs, 60_000);
    assert.equal(evaluate(policy, NO_KILLS, call({ tool: 'b' }), NOW).approvalTtlMs, 600_000);
  });

  it('rate limits: a bucket per window and subject; over the max is a deny with a retry hint', () => {
    const limited = rule({ effect: 'allow', rate_limit: { max: 2, period: 'minute', per: 'user' }, match: { tools: ['*'] } });
    const policy = compilePolicy({ default_effect: 'allow', rules: [limited] }, 1);
    const a = evaluate(policy, NO_KILLS, call({ userSub: 'alice' }), NOW + 15_000);
    const b = evaluate(policy, NO_KILLS, call({ userSub: 'bob' }), NOW + 15_000);
    assert.ok(a.rateLimit && b.rateLimit);
    assert.notEqual(a.rateLimit.bucket, b.rateLimit.bucket);
    assert.equal(a.rateLimit.windowStart, NOW);
    assert.equal(a.rateLimit.windowEnd, NOW + 60_000);
    assert.equal(applyRateLimit(a, 2, NOW + 15_000).decision, 'allow');
    const over = applyRateLimit(a, 3, NOW + 15_000);
    assert.equal(over.decision, 'deny');
    assert.equal(over.reason, 'rate_limited');
    assert.equal(over.retryAfterSeconds, 45);
  });

  it('globs: * and ? only, literal otherwise, and no blow-up on hostile input', () => {
    assert.ok(globMatch('send_*', 'send_email'));
    assert.ok(globMatch('*', ''));
    assert.ok(globMatch('a?c', 'abc'));
    assert.ok(!globMatch('a?c', 'ac'));
    assert.ok(globMatch('fs.*', 'fs.read'));
    assert.ok(!globMatch('fs.*', 'fsxread'), 'a dot is literal');
    assert.ok(globMatch('*mid*', 'xxmidyy'));
    const started = process.hrtime.bigint();
    assert.ok(!globMatch('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(200)));
    assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 1000);
  });

  it('rejects regexes RE2 cannot run in linear time, and malformed conditions', () => {
    const backref = checkRuleInput({ name: 'x', effect: 'deny', match: { arguments: [{ path: 'a', op: 'matches', value: '(a)\\1' }] } });
    assert.equal(backref.ok, false);
    const lookahead = checkRuleInput({ name: 'x', effect: 'deny', match: { arguments: [{ path: 'a', op: 'matches', value: '(?=a)' }] } });
    assert.equal(lookahead.ok, false);
    const inScalar = checkRuleInput({ name: 'x', effect: 'deny', match: { arguments: [{ path: 'a', op: 'in', value: 'b' }] } });
    assert.equal(inScalar.ok, false);
    const gtString = checkRuleInput({ name: 'x', effect: 'deny', match: { arguments: [{ path: 'a', op: 'gt', value: 'b' }] } });
    assert.equal(gtString.ok, false);
    const tooLong = checkRuleInput({ name: 'x', effect: 'deny', match: { arguments: [{ path: 'a', op: 'matches', value: 'a'.repeat(513) }] } });
    assert.equal(tooLong.ok, false);
  });

  it('canonical JSON: key order does not change the arguments hash', () => {
    const hasher = new ArgumentHasher(Buffer.alloc(32, 1));
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}');
    assert.equal(hasher.hash('logi_a', { x: 1, y: 2 }), hasher.hash('logi_a', { y: 2, x: 1 }));
    assert.notEqual(hasher.hash('logi_a', { x: 1 }), hasher.hash('logi_a', { x: 2 }));
    assert.equal(hasher.hash('logi_a', undefined), hasher.hash('logi_a', {}));
  });

  it('arguments hashes are keyed: not the well-known SHA-256, different per app and per server key, stable per app', () => {
    const hasher = new ArgumentHasher(Buffer.alloc(32, 1));
    const plainSha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');
    // SHA-256("{}"), the value anyone can look up: a stored hash must not be it.
    assert.equal(plainSha256('{}'), '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    assert.notEqual(hasher.hash('logi_a', {}), plainSha256('{}'));
    assert.notEqual(hasher.hash('logi_a', { amount: 100 }), plainSha256('{"amount":100}'));
    assert.notEqual(hasher.hash('logi_a', { amount: 100 }), hasher.hash('logi_b', { amount: 100 }), 'another app, another key');
    assert.notEqual(hasher.hash('logi_a', { amount: 100 }), new ArgumentHasher(Buffer.alloc(32, 2)).hash('logi_a', { amount: 100 }), 'another server key');
    assert.equal(hasher.hash('logi_a', { amount: 100 }), new ArgumentHasher(Buffer.alloc(32, 1)).hash('logi_a', { amount: 100 }), 'every node with the same key agrees');
    assert.match(hasher.hash('logi_a', {}), /^[0-9a-f]{64}$/);
  });
});
