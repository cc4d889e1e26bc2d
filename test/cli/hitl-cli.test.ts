/** `logi panopticon approvals|grants|webhooks` end to end: the real CLI binary against a real server. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { openApproval } from '../support/approvals.js';
import { createTenant, ENGINES, startServer, tempDir, type RunningServer, type Tenant } from '../support/harness.js';
import { logi as runLogi } from '../support/logi.js';

const logi = (url: string, token: string, home: string, ...args: string[]) =>
  runLogi(args, { HOME: home, XDG_CONFIG_HOME: home, LOGI_URL: url, LOGI_TOKEN: token });

for (const engine of ENGINES) {
  describe(`logi approvals, grants, webhooks [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    let home: string;
    const cli = (...args: string[]) => logi(server.url, t.token, home, ...args);

    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url);
      home = tempDir('cli');
    });
    after(async () => {
      await server.close();
      fs.rmSync(home, { recursive: true, force: true });
    });

    it('lists pending requests, approves with --remember always, refuses a second decision, denies', async () => {
      const first = await openApproval(server, t.clientId, { tool: 'mail.send' });
      const second = await openApproval(server, t.clientId);

      const list = await cli('panopticon', 'approvals', 'list', t.clientId, '--status', 'pending', '--json');
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(JSON.parse(list.stdout).approvals.map((a: { id: string }) => a.id).sort(), [first.approvalId, second.approvalId].sort());
      const human = await cli('panopticon', 'approvals', 'list', t.clientId);
      assert.match(human.stdout, /mail\.send/);

      const approved = await cli('panopticon', 'approvals', 'approve', first.approvalId, '--remember', 'always', '--for', '7d', '--comment', 'fine', '--json');
      assert.equal(approved.code, 0, approved.stderr);
      const res = JSON.parse(approved.stdout);
      assert.equal(res.approval.status, 'approved');
      assert.equal(res.approval.comment, 'fine');
      assert.equal(res.grant.kind, 'always');
      assert.ok(Math.abs(Date.parse(res.grant.expires_at) - (Date.now() + 7 * 86400_000)) < 60_000);

      const again = await cli('panopticon', 'approvals', 'deny', first.approvalId, '--json');
      assert.equal(again.code, 1);
      assert.equal(JSON.parse(again.stderr).error.code, 'approval_decided');

      const denied = await cli('panopticon', 'approvals', 'deny', second.approvalId, '--comment', 'no');
      assert.equal(denied.code, 0, denied.stderr);
      assert.match(denied.stdout, /Denied/);
      const shown = await cli('panopticon', 'approvals', 'show', second.approvalId, '--json');
      assert.equal(JSON.parse(shown.stdout).status, 'denied');

      const usage = await cli('panopticon', 'approvals', 'approve', second.approvalId, '--remember', 'once', '--for', '1h');
      assert.equal(usage.code, 2, 'a grant lifetime without a grant is a usage error');

      const grants = await cli('panopticon', 'grants', 'list', t.clientId, '--json');
      assert.equal(grants.code, 0, grants.stderr);
      const g = JSON.parse(grants.stdout);
      assert.deepEqual(g.grants.map((x: { id: string }) => x.id), [res.grant.id]);
      assert.equal(g.counts.active, 1);
      const revoked = await cli('panopticon', 'grants', 'revoke', t.clientId, res.grant.id, '--json');
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal(JSON.parse(revoked.stdout).status, 'revoked');
      assert.deepEqual(JSON.parse((await cli('panopticon', 'grants', 'list', t.clientId, '--json')).stdout).grants, []);
    });

    it('adds, lists, inspects and removes webhooks', async () => {
      const bad = await cli('panopticon', 'webhooks', 'add', t.clientId, 'http://127.0.0.1:9/x', '--events', 'approval.requested,nope');
      assert.equal(bad.code, 2);
      const added = await cli('panopticon', 'webhooks', 'add', t.clientId, 'http://127.0.0.1:9/x', '--format', 'slack', '--events', 'approval.requested,kill_switch.on', '--json');
      assert.equal(added.code, 0, added.stderr);
      const w = JSON.parse(added.stdout);
      assert.match(w.secret, /^whsec_/);
      assert.deepEqual(w.events, ['approval.requested', 'kill_switch.on']);
      const human = await cli('panopticon', 'webhooks', 'add', t.clientId, 'https://127.0.0.1:9/y');
      assert.match(human.stdout, /whsec_/);

      const list = await cli('panopticon', 'webhooks', 'list', t.clientId, '--json');
      assert.equal(JSON.parse(list.stdout).length, 2);
      assert.ok(!list.stdout.includes('whsec_'));
      const deliveries = await cli('panopticon', 'webhooks', 'deliveries', t.clientId, w.id, '--json');
      assert.equal(deliveries.code, 0, deliveries.stderr);
      assert.deepEqual(JSON.parse(deliveries.stdout), []);
      const removed = await cli('panopticon', 'webhooks', 'remove', t.clientId, w.id, '--json');
      assert.equal(removed.code, 0, removed.stderr);
      const gone = await cli('panopticon', 'webhooks', 'remove', t.clientId, w.id, '--json');
      assert.equal(gone.code, 1);
      assert.equal(JSON.parse(gone.stderr).error.code, 'webhook_not_found');
    });
  });
}
