/**
 * `logi panopticon audit head|verify` as scripts and cron jobs call them: the signed head as one
 * line (or a file), verification against it, and every exit code the help promises.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, rawSql, startServer, tempDir, type RunningServer, type Tenant } from '../support/harness.js';
import { logi as runLogi } from '../support/logi.js';

const logi = (env: Record<string, string>, ...args: string[]) => runLogi(args, env);

for (const engine of ENGINES) {
  describe(`logi panopticon audit head / verify [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    let env: Record<string, string>;
    let dir: string;
    const run = (...args: string[]) => logi(env, ...args);

    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url);
      dir = tempDir('audit-cli');
      env = { LOGI_URL: server.url, LOGI_TOKEN: t.token, XDG_CONFIG_HOME: dir, HOME: dir };
    });
    after(async () => {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('head prints one signed line; verify --against it (the line, or a file of the text or --json output) exits 0', async () => {
      const head = await run('panopticon', 'audit', 'head', t.clientId);
      assert.equal(head.code, 0, head.stderr);
      assert.match(head.stdout, /^pah1\.logi_[0-9a-f]{12}\.3\.[0-9a-f]{64}\.\d+\.[A-Za-z0-9_-]{43}\n$/);
      const line = head.stdout.trim();
      const asJson = JSON.parse((await run('panopticon', 'audit', 'head', t.clientId, '--json')).stdout);
      assert.deepEqual([asJson.client_id, asJson.seq], [t.clientId, 3]);
      assert.match(asJson.head, /^pah1\./);

      const plain = await run('panopticon', 'audit', 'verify', t.clientId);
      assert.equal(plain.code, 0);
      assert.match(plain.stdout, /^OK: 3 entries, chain intact/);
      assert.match(plain.stdout, /Not checked: truncation off the end/);

      const textFile = path.join(dir, 'head.txt');
      const jsonFile = path.join(dir, 'head.json');
      fs.writeFileSync(textFile, head.stdout);
      fs.writeFileSync(jsonFile, JSON.stringify(asJson, null, 2));
      for (const against of [line, textFile, jsonFile]) {
        const v = await run('panopticon', 'audit', 'verify', t.clientId, '--against', against);
        assert.equal(v.code, 0, `${against}: ${v.stderr}`);
        assert.match(v.stdout, /^OK: 3 entries, chain intact.*\nMatches the head signed at \S+: entries 1-3 are unchanged\.\n$/);
      }
      const json = JSON.parse((await run('panopticon', 'audit', 'verify', t.clientId, '--against', textFile, '--json')).stdout);
      assert.deepEqual([json.ok, json.anchor.seq], [true, 3]);
    });

    it('exit 1 when the log no longer holds what the head anchors, or the server refuses the head or the chain', async () => {
      const victim = await createTenant(server.url);
      const asVictim = (...args: string[]) => logi({ ...env, LOGI_TOKEN: victim.token }, ...args);
      const file = path.join(dir, 'victim-head.txt');
      fs.writeFileSync(file, (await asVictim('panopticon', 'audit', 'head', victim.clientId)).stdout);
      const db = await rawSql(server.location);
      try {
        await db.query('DELETE FROM audit_log WHERE client_id = ? AND seq = 3', [victim.clientId]);
        const [last] = await db.query('SELECT hash FROM audit_log WHERE client_id = ? AND seq = 2', [victim.clientId]);
        await db.query('UPDATE apps SET audit_head = ?, audit_count = 2 WHERE client_id = ?', [last!.hash, victim.clientId]);
      } finally {
        await db.close();
      }
      assert.equal((await asVictim('panopticon', 'audit', 'verify', victim.clientId)).code, 0, 'the chain alone cannot see it');
      const broken = await asVictim('panopticon', 'audit', 'verify', victim.clientId, '--against', file);
      assert.equal(broken.code, 1);
      assert.match(broken.stdout, /^BROKEN: anchor_truncated at entry 3: /);
      const brokenJson = await asVictim('panopticon', 'audit', 'verify', victim.clientId, '--against', file, '--json');
      assert.equal(brokenJson.code, 1);
      assert.deepEqual([JSON.parse(brokenJson.stdout).ok, JSON.parse(brokenJson.stdout).problem], [false, 'anchor_truncated']);

      // Someone else's head, or one edited by hand: refused by the server.
      const mine = (await run('panopticon', 'audit', 'head', t.clientId)).stdout.trim();
      const refused = await asVictim('panopticon', 'audit', 'verify', victim.clientId, '--against', mine, '--json');
      assert.equal(refused.code, 1);
      assert.equal(JSON.parse(refused.stderr).error.code, 'audit_head_invalid');

      // A chain that does not verify gets no head.
      const db2 = await rawSql(server.location);
      try {
        await db2.query("UPDATE audit_log SET after = '{}' WHERE client_id = ? AND seq = 1", [victim.clientId]);
      } finally {
        await db2.close();
      }
      const noHead = await asVictim('panopticon', 'audit', 'head', victim.clientId, '--json');
      assert.equal(noHead.code, 1);
      assert.deepEqual([JSON.parse(noHead.stderr).error.code, JSON.parse(noHead.stderr).error.problem], ['audit_chain_broken', 'hash_mismatch']);
    });

    it('exit 2 for bad usage: no client_id, --against neither a head nor a readable file with one', async () => {
      const missing = await run('panopticon', 'audit', 'verify');
      assert.equal(missing.code, 2);
      const nowhere = await run('panopticon', 'audit', 'verify', t.clientId, '--against', path.join(dir, 'no-such-file'));
      assert.equal(nowhere.code, 2);
      assert.match(nowhere.stderr, /neither a signed head .* nor a readable file/);
      const empty = path.join(dir, 'empty.txt');
      fs.writeFileSync(empty, 'nothing here\n');
      const noHead = await run('panopticon', 'audit', 'verify', t.clientId, '--against', empty, '--json');
      assert.equal(noHead.code, 2);
      assert.equal(JSON.parse(noHead.stderr).error.code, 'usage');
      assert.equal((await run('panopticon', 'audit')).code, 2);
    });

    it('--help states the exit codes the tests above observe', async () => {
      const verifyHelp = await run('panopticon', 'audit', 'verify', '--help');
      assert.equal(verifyHelp.code, 0);
      for (const line of [/--against <head>/, /--json/, /^ {2}0 {2}the chain verifies/m, /^ {2}1 {2}it does not/m, /^ {2}2 {2}bad usage/m, /docs\/security\.md/]) assert.match(verifyHelp.stdout, line);
      const headHelp = await run('panopticon', 'audit', 'head', '--help');
      assert.equal(headHelp.code, 0);
      for (const line of [/--json/, /^ {2}0 {2}printed/m, /^ {2}1 {2}the server refused \(audit_chain_broken/m, /^ {2}2 {2}bad usage/m]) assert.match(headHelp.stdout, line);
      const auditHelp = await run('panopticon', 'audit', '--help');
      assert.match(auditHelp.stdout, /verify \[options\] <client_id>/);
      assert.match(auditHelp.stdout, /head \[options\] <client_id>/);
    });
  });
}
