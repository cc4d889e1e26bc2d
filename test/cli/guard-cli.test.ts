/** `logi panopticon policies|kill|revive|checks|audit` against a real server, as scripts call them. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseArgCondition, parseRate } from '../../src/cli/guard-commands.js';
import { createTenant, http, startServer, tempDir, type RunningServer, type Tenant } from '../support/harness.js';
import { logi as runLogi } from '../support/logi.js';

const logi = (env: Record<string, string>, ...args: string[]) => runLogi(args, env);

describe('guard CLI', () => {
  let server: RunningServer;
  let t: Tenant;
  let env: Record<string, string>;
  let dir: string;
  const run = (...args: string[]) => logi(env, ...args);
  const json = async (...args: string[]) => {
    const r = await run(...args, '--json');
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };

  before(async () => {
    server = await startServer('sqlite');
    t = await createTenant(server.url);
    dir = tempDir('guard-cli');
    env = { LOGI_URL: server.url, LOGI_TOKEN: t.token, XDG_CONFIG_HOME: dir, HOME: dir };
  });
  after(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('parses argument conditions and rates the way the help says', () => {
    assert.deepEqual(parseArgCondition('to !$= @ourco.com'), { path: 'to', op: 'not_suffix', value: '@ourco.com' });
    assert.deepEqual(parseArgCondition('amount > 1000'), { path: 'amount', op: 'gt', value: 1000 });
    assert.deepEqual(parseArgCondition('env in prod,staging'), { path: 'env', op: 'in', value: ['prod', 'staging'] });
    assert.deepEqual(parseArgCondition('/a/b == true'), { path: '/a/b', op: 'eq', value: true });
    assert.deepEqual(parseArgCondition('q matches ^DROP\\s+'), { path: 'q', op: 'matches', value: '^DROP\\s+' });
    assert.deepEqual(parseArgCondition('force exists'), { path: 'force', op: 'exists' });
    assert.deepEqual(parseArgCondition('code prefix 007'), { path: 'code', op: 'prefix', value: '007' });
    assert.throws(() => parseArgCondition('amount >> 3'));
    assert.throws(() => parseArgCondition('amount >'));
    assert.deepEqual(parseRate('10/minute'), { max: 10, period: 'minute' });
    assert.deepEqual(parseRate('5/s'), { max: 5, period: 'second' });
    assert.throws(() => parseRate('10/fortnight'));
  });

  it('adds, lists, moves, disables and removes rules; the decisions follow', async () => {
    const mail = await json('panopticon', 'policies', 'add', t.clientId, '--name', 'external-mail', '--effect', 'deny', '--tool', 'send_email', '--arg', 'to !$= @ourco.com', '--reason', 'internal mail only');
    assert.match(mail.id, /^rul_/);
    assert.deepEqual(mail.match.arguments, [{ path: 'to', op: 'not_suffix', value: '@ourco.com' }]);
    const big = await json('panopticon', 'policies', 'add', t.clientId, '--name', 'big', '--effect', 'require_approval', '--tool', 'transfer', '--arg', 'amount > 1000', '--approval-ttl', '5m', '--position', '1');
    assert.equal(big.approval_ttl_seconds, 300);
    const lim = await json('panopticon', 'policies', 'add', t.clientId, '--name', 'lim', '--effect', 'allow', '--tool', 'search', '--rate', '1/hour', '--per', 'user', '--expires', '2h');
    assert.deepEqual(lim.rate_limit, { max: 1, period: 'hour', per: 'user' });
    assert.ok(Date.parse(lim.expires_at) > Date.now() + 3600_000);

    const listed = await json('panopticon', 'policies', 'list', t.clientId);
    assert.deepEqual(listed.rules.map((r: { id: string }) => r.id), [big.id, mail.id, lim.id]);
    const human = await run('panopticon', 'policies', 'list', t.clientId);
    assert.match(human.stdout, /external-mail\s+true\s+deny\s+tool=send_email & to not_suffix "@ourco.com"/);

    const check = (body: Record<string, unknown>) => http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, body: { client_id: t.clientId, scope: 's', ...body } });
    assert.equal((await check({ tool: 'send_email', arguments: { to: 'x@evil.com' } })).body.decision, 'deny');
    assert.equal((await check({ tool: 'transfer', arguments: { amount: 1001 } })).body.decision, 'require_approval');
    assert.equal((await check({ tool: 'search', user_sub: 'u' })).body.decision, 'allow');
    assert.equal((await check({ tool: 'search', user_sub: 'u' })).body.reason, 'rate_limited');

    assert.equal((await json('panopticon', 'policies', 'move', t.clientId, mail.id, '--position', '3')).position, 3);
    await json('panopticon', 'policies', 'disable', t.clientId, mail.id);
    assert.equal((await check({ tool: 'send_email', arguments: { to: 'x@evil.com' } })).body.decision, 'allow');
    await json('panopticon', 'policies', 'enable', t.clientId, mail.id);
    await json('panopticon', 'policies', 'remove', t.clientId, lim.id);
    assert.equal((await json('panopticon', 'policies', 'default', t.clientId, 'require_approval')).default_effect, 'require_approval');
    const finalPolicy = await json('panopticon', 'policies', 'list', t.clientId);
    assert.deepEqual(finalPolicy.rules.map((r: { id: string }) => r.id), [big.id, mail.id]);

    const missing = await run('panopticon', 'policies', 'remove', t.clientId, 'rul_nope', '--json');
    assert.equal(missing.code, 1);
    assert.equal(JSON.parse(missing.stderr).error.code, 'rule_not_found');
    const bad = await run('panopticon', 'policies', 'add', t.clientId, '--name', 'x', '--effect', 'deny', '--arg', 'a ?? b');
    assert.equal(bad.code, 2);
  });

  it('exports YAML that imports back unchanged, and imports JSON', async () => {
    const file = path.join(dir, 'policy.yaml');
    const wrote = await json('panopticon', 'policies', 'export', t.clientId, file);
    const before = await json('panopticon', 'policies', 'list', t.clientId);
    assert.equal(wrote.version, before.version);
    assert.match(fs.readFileSync(file, 'utf8'), /^# Panopticon policy/);
    const imported = await json('panopticon', 'policies', 'import', t.clientId, file);
    assert.equal(imported.version, before.version + 1);
    const strip = (rules: Array<Record<string, unknown>>) => rules.map(({ updated_at: _u, ...r }) => r);
    assert.deepEqual(strip(imported.rules), strip(before.rules));

    const jsonFile = path.join(dir, 'policy.json');
    fs.writeFileSync(jsonFile, JSON.stringify({ default_effect: 'allow', rules: [{ name: 'only', effect: 'deny', match: { tools: ['rm'] } }] }));
    const replaced = await json('panopticon', 'policies', 'import', t.clientId, jsonFile, '--if-version', String(imported.version));
    assert.deepEqual(replaced.rules.map((r: { name: string }) => r.name), ['only']);
    const stale = await run('panopticon', 'policies', 'import', t.clientId, jsonFile, '--if-version', '1', '--json');
    assert.equal(JSON.parse(stale.stderr).error.code, 'policy_conflict');
  });

  it('kill and revive, app-wide and per tool; checks and audit show them; audit verify passes', async () => {
    const killed = await json('panopticon', 'kill', t.clientId, '--tool', 'rm', '--reason', 'incident 7');
    assert.equal(killed.kill_switch.tool, 'rm');
    const check = await http(server.url, 'POST', '/panopticon/guard/check', { token: t.pak, body: { client_id: t.clientId, tool: 'rm', scope: 's' } });
    assert.equal(check.body.reason, 'kill_switch');
    const checks = await json('panopticon', 'checks', t.clientId, '--limit', '1');
    assert.equal(checks[0].check_id, check.body.check_id);
    await json('panopticon', 'revive', t.clientId, '--tool', 'rm');
    await json('panopticon', 'kill', t.clientId, '--reason', 'all stop');
    await json('panopticon', 'revive', t.clientId);
    const notOn = await run('panopticon', 'revive', t.clientId, '--json');
    assert.equal(JSON.parse(notOn.stderr).error.code, 'kill_switch_not_found');

    const audit = await json('panopticon', 'audit', t.clientId, '--limit', '4');
    assert.deepEqual(audit.map((e: { action: string }) => e.action), ['kill.off', 'kill.on', 'kill.off', 'kill.on']);
    const verify = await json('panopticon', 'audit', 'verify', t.clientId);
    assert.equal(verify.ok, true);
    const human = await run('panopticon', 'audit', 'verify', t.clientId);
    assert.match(human.stdout, /^OK: \d+ entries, chain intact/);
  });

  it('every guard command answers --help', async () => {
    for (const args of [['policies', 'list'], ['policies', 'add'], ['policies', 'remove'], ['policies', 'enable'], ['policies', 'disable'], ['policies', 'move'], ['policies', 'default'], ['policies', 'import'], ['policies', 'export'], ['policies', 'simulate'], ['kill'], ['revive'], ['checks'], ['audit']]) {
      const r = await run('panopticon', ...args, '--help');
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /--json/, args.join(' '));
    }
  });
});
