/**
 * The Getting Started walk-through as a newcomer does it: `logi serve` as a child process, the real
 * `logi` CLI as child processes (its own config dir), and the page's curl example pasted into a
 * shell with only the host, the PAK and the client_id changed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENGINES, freshLocation, http, LOGI_BIN, spawnServer, tempDir, type SpawnedServer } from '../support/harness.js';
import { run } from '../support/logi.js';

const exec = (file: string, args: string[], env: Record<string, string>) => run(file, args, { HOME: process.env.HOME ?? '', ...env });

/** The curl example of step 2 of the Getting Started page, character for character. */
const SEED_CURL = `curl -X POST https://api.1pass.dev/panopticon/trace \\
  -H "Authorization: Bearer pano_pak_YOUR_PAK_HERE" \\
  -H "Content-Type: application/json" \\
  -d '{
    "event_id": "550e8400-e29b-41d4-a716-446655440000",
    "client_id": "logi_f31b6962aef3",
    "tool": "hello",
    "scope_used": "agent:read",
    "status": "ok",
    "started_at": "2026-05-09T10:11:12Z",
    "duration_ms": 12
  }'`;

function replace(text: string, from: string, to: string): string {
  assert.equal(text.split(from).length, 2, `${from} appears once in the example`);
  return text.replace(from, to);
}

/** Runs the example in a shell; `-sS -w` only adds the status line after the body it prints. */
async function seedCurl(url: string, pak: string, clientId: string): Promise<{ status: number; body: string }> {
  let command = replace(SEED_CURL, 'https://api.1pass.dev', url);
  command = replace(command, 'pano_pak_YOUR_PAK_HERE', pak);
  command = replace(command, 'logi_f31b6962aef3', clientId);
  const run = await exec('/bin/sh', ['-c', `${command} -sS -w '\\n%{http_code}'`], {});
  assert.equal(run.code, 0, run.stderr);
  const cut = run.stdout.lastIndexOf('\n');
  return { body: run.stdout.slice(0, cut), status: Number(run.stdout.slice(cut + 1)) };
}

const LEAF_COMMANDS = [
  ['signup'], ['login'], ['logout'], ['apps', 'create'], ['apps', 'list'],
  ['panopticon', 'enable'], ['panopticon', 'disable'], ['panopticon', 'traces'], ['panopticon', 'usage'],
  ['panopticon', 'pak', 'issue'], ['panopticon', 'pak', 'rotate'], ['panopticon', 'pak', 'revoke'], ['panopticon', 'pak', 'list'],
];

describe('logi CLI: help and usage errors', () => {
  const env = { XDG_CONFIG_HOME: tempDir('cli-help'), LOGI_URL: 'http://127.0.0.1:9' };

  it('every command answers --help with its usage and offers --json', async () => {
    const runs = await Promise.all(LEAF_COMMANDS.map((c) => exec(process.execPath, [LOGI_BIN, ...c, '--help'], env)));
    runs.forEach((run, i) => {
      const name = LEAF_COMMANDS[i]!.join(' ');
      assert.equal(run.code, 0, name);
      assert.match(run.stdout, new RegExp(`^Usage: logi ${name} `), name);
      assert.match(run.stdout, /--json\s+print machine-readable JSON/, name);
    });
  });

  it('with --json, a usage error is JSON on stderr and exit code 2', async () => {
    const run = await exec(process.execPath, [LOGI_BIN, 'panopticon', 'usage', 'logi_f31b6962aef3', '--json'], env);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    const error = JSON.parse(run.stderr).error;
    assert.equal(error.code, 'usage');
    assert.match(error.message, /--since/);
  });

  it('without --json, a usage error is text with the command help, exit code 2', async () => {
    const run = await exec(process.execPath, [LOGI_BIN, 'panopticon', 'usage', 'logi_f31b6962aef3', '--since', '2026-13-01'], env);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--since .*must be a date YYYY-MM-DD/);
    assert.match(run.stderr, /Usage: logi panopticon usage/);
  });

  it('a server that cannot be reached is exit code 1, naming the URL and the cause', async () => {
    // Port 9 (discard) has no listener here: the connection is refused.
    const run = await exec(process.execPath, [LOGI_BIN, 'apps', 'list', '--json'], { ...env, LOGI_TOKEN: 'pano_op_x' });
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.deepEqual(JSON.parse(run.stderr).error, { code: 'connection_failed', message: 'cannot reach http://127.0.0.1:9 (ECONNREFUSED)' });
    const human = await exec(process.execPath, [LOGI_BIN, 'apps', 'list'], { ...env, LOGI_TOKEN: 'pano_op_x' });
    assert.equal(human.code, 1);
    assert.match(human.stderr, /^logi: cannot reach http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\); is the server running\? \(set LOGI_URL or --url\)\n$/);
  });

  it('a command that needs a token says how to sign in, exit code 2', async () => {
    const run = await exec(process.execPath, [LOGI_BIN, 'apps', 'list', '--json'], env);
    assert.equal(run.code, 2);
    assert.match(JSON.parse(run.stderr).error.message, /logi login/);
  });
});

for (const engine of ENGINES) {
  describe(`Getting Started with the logi CLI [${engine}]`, () => {
    const fresh = freshLocation(engine);
    const config = tempDir('cli-config');
    let server: SpawnedServer;
    let env: Record<string, string>;
    const logi = (...args: string[]) => exec(process.execPath, [LOGI_BIN, ...args], env);
    const json = async (...args: string[]) => {
      const run = await logi(...args, '--json');
      assert.equal(run.code, 0, `logi ${args.join(' ')}: ${run.stderr}`);
      return JSON.parse(run.stdout);
    };
    const email = 'newcomer@example.com';
    const password = 'a-long-password';
    let clientId: string;
    let pak: string;

    before(async () => {
      server = await spawnServer({ PANOPTICON_DB: fresh.dbValue });
      env = { LOGI_URL: server.url, XDG_CONFIG_HOME: config };
    });
    after(async () => {
      server.child.kill('SIGTERM');
      await server.exited;
      await fresh.cleanup();
      fs.rmSync(config, { recursive: true, force: true });
    });

    const credentials = path.join(config, 'logi', 'credentials.json');

    it('logi serve warns that PANOPTICON_PASSWORD_SCRYPT_N (the harness sets 2^14) is below OWASP\'s cost', () => {
      const warning = server.output().split('\n').find((line) => line.includes('PANOPTICON_PASSWORD_SCRYPT_N'));
      assert.ok(warning, server.output());
      assert.match(warning, /below OWASP's scrypt cost/);
      assert.equal(JSON.parse(warning).passwordScryptN, 16384);
    });

    it('signs up, signs in, and keeps the token in a 0600 file', async () => {
      const signup = await json('signup', '--email', email, '--password', password);
      assert.match(signup.token, /^pano_op_/);
      assert.equal(signup.account.is_owner, true);
      const login = await json('login', '--email', email, '--password', password);
      assert.match(login.token, /^pano_op_/);
      assert.notEqual(login.token, signup.token);
      assert.equal(fs.statSync(credentials).mode & 0o777, 0o600);
      assert.equal(fs.statSync(path.dirname(credentials)).mode & 0o777, 0o700);
      assert.equal(JSON.parse(fs.readFileSync(credentials, 'utf8')).token, login.token);
    });

    it('creates an app, enables Panopticon and issues a PAK', async () => {
      const app = await json('apps', 'create', '--name', 'my-agent');
      assert.match(app.client_id, /^logi_[0-9a-f]{12}$/);
      assert.equal(app.panopticon_enabled, false);
      clientId = app.client_id;
      const enabled = await logi('panopticon', 'enable', clientId);
      assert.equal(enabled.code, 0, enabled.stderr);
      assert.match(enabled.stdout, new RegExp(`Panopticon enabled for ${clientId}`));
      const issued = await json('panopticon', 'pak', 'issue', clientId);
      assert.match(issued.pak, /^pano_pak_[0-9A-Za-z]{38}$/);
      pak = issued.pak;
      const list = await logi('apps', 'list');
      assert.match(list.stdout, /^CLIENT_ID\s+NAME\s+ENABLED\s+CREATED\n/);
      assert.match(list.stdout, new RegExp(`${clientId}\\s+my-agent\\s+true`));
    });

    it("the page's curl example is accepted, then answered duplicate", async () => {
      const first = await seedCurl(server.url, pak, clientId);
      assert.equal(first.status, 202);
      assert.equal(first.body, '{"event_id":"550e8400-e29b-41d4-a716-446655440000","status":"accepted"}');
      const again = await seedCurl(server.url, pak, clientId);
      assert.equal(again.status, 200);
      assert.equal(again.body, '{"event_id":"550e8400-e29b-41d4-a716-446655440000","status":"duplicate"}');
    });

    it('shows the trace and the daily usage', async () => {
      const traces = await json('panopticon', 'traces', clientId);
      assert.equal(traces.traces.length, 1);
      assert.equal(traces.traces[0].event_id, '550e8400-e29b-41d4-a716-446655440000');
      assert.equal(traces.traces[0].tool, 'hello');
      assert.equal(traces.traces[0].started_at, '2026-05-09T10:11:12.000Z');
      const table = await logi('panopticon', 'traces', clientId);
      assert.match(table.stdout, /^STARTED_AT\s+TOOL\s+STATUS\s+MS\s+SCOPE\s+USER\s+EVENT_ID\n2026-05-09T10:11:12\.000Z\s+hello\s+ok\s+12\s+agent:read/);

      // The page: "per application × date, the daily trace count, error count, HITL request count,
      // and kill-switch count". --json prints the rows.
      const usage = await json('panopticon', 'usage', clientId, '--since', '2026-05-01');
      assert.deepEqual(usage, [{ date: '2026-05-09', traces: 1, errors: 0, hitl_requests: 0, kill_switch: 0 }]);
      const usageTable = await logi('panopticon', 'usage', clientId, '--since', '2026-05-01');
      assert.equal(usageTable.code, 0);
      const lines = usageTable.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, new RegExp(`^${clientId}  2026-05-01 \\.\\. \\d{4}-\\d{2}-\\d{2}$`));
      assert.match(lines[1]!, /^DATE\s+TRACES\s+ERRORS\s+HITL\s+KILL SWITCH$/);
      assert.match(lines[2]!, /^2026-05-09\s+1\s+0\s+0\s+0$/);
      assert.match(lines[3]!, /^total\s+1\s+0\s+0\s+0$/);
    });

    it('lists, rotates with no grace (the old key stops at once) and revokes keys', async () => {
      const keys = await json('panopticon', 'pak', 'list', clientId);
      assert.equal(keys.length, 1);
      assert.equal(keys[0].status, 'active');
      assert.equal(keys[0].prefix, pak.slice(0, 15));
      assert.ok(!JSON.stringify(keys).includes(pak), 'the list never shows the key');
      const table = await logi('panopticon', 'pak', 'list', clientId);
      assert.match(table.stdout, /^ID\s+PREFIX\s+STATUS\s+CREATED\s+LAST USED\s+EXPIRES\n/);

      const rotated = await json('panopticon', 'pak', 'rotate', clientId, '--grace', '0');
      assert.match(rotated.pak, /^pano_pak_/);
      assert.equal(rotated.previous[0].status, 'revoked');
      const old = await seedCurl(server.url, pak, clientId);
      assert.equal(old.status, 401);
      assert.equal(JSON.parse(old.body).error.code, 'pak_revoked');
      pak = rotated.pak;
      assert.equal((await seedCurl(server.url, pak, clientId)).status, 200, 'the new key works at once');

      const revoked = await json('panopticon', 'pak', 'revoke', clientId);
      assert.deepEqual(revoked.revoked.map((k: { prefix: string }) => k.prefix), [pak.slice(0, 15)]);
      assert.equal((await seedCurl(server.url, pak, clientId)).status, 401);
    });

    it('disables Panopticon, then signs out and forgets the token', async () => {
      const disabled = await json('panopticon', 'disable', clientId);
      assert.equal(disabled.panopticon_enabled, false);
      const token = JSON.parse(fs.readFileSync(credentials, 'utf8')).token as string;
      const out = await json('logout');
      assert.deepEqual(out, { revoked: true, removed: true });
      assert.ok(!fs.existsSync(credentials));
      assert.equal((await http(server.url, 'GET', '/api/apps', { token })).status, 401, 'the token is revoked on the server');
      const after = await logi('apps', 'list');
      assert.equal(after.code, 2);
      assert.match(after.stderr, /not signed in/);
    });
  });
}
