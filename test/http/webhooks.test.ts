/**
 * Webhook endpoints and delivery on both engines, received by a loopback listener: signatures,
 * both body formats, retries with recorded attempts, giving up, event filters, audit, tenancy.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openApproval } from '../support/approvals.js';
import { receiver, type Received } from '../support/receiver.js';
import { eventually, sleep } from '../support/wait.js';
import { createTenant, ENGINES, http, startServer, twoNodesOnePostgres, type RunningServer, type TwoNodes, type Tenant, POSTGRES_ONLY } from '../support/harness.js';
import { backoffMs, webhookDeliveries } from '../../src/webhooks/service.js';
import { newId } from '../../src/keys/tokens.js';
import { GUARD_EVENT_TYPES } from '../../src/guard/events.js';

/** A kill switch turned on (or off) through the operator API, as an operator would: the change and its webhook rows commit together. */
async function killSwitch(url: string, tenant: Tenant, action: 'kill' | 'revive', body: { tool?: string; reason?: string }): Promise<void> {
  const res = await http(url, 'POST', `/api/apps/${tenant.clientId}/${action}`, { token: tenant.token, body });
  assert.equal(res.status, 200, res.text);
}

function verify(secret: string, r: Received): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(r.headers['x-panopticon-signature']));
  if (m === null) return false;
  const expected = crypto.createHmac('sha256', secret).update(`${m[1]}.POST.${r.path}.${r.body}`).digest('hex');
  return crypto.timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(m[2]!, 'hex')) && Math.abs(Number(m[1]) - Date.now() / 1000) < 300;
}

for (const engine of ENGINES) {
  describe(`webhooks [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    let rx: Awaited<ReturnType<typeof receiver>>;

    before(async () => {
      server = await startServer(engine, {}, undefined, { webhooks: { baseDelayMs: 30, maxDelayMs: 60, maxAttempts: 3, pollIntervalMs: 50 }, hitl: { sweepIntervalMs: 100 } });
      t = await createTenant(server.url);
      rx = await receiver();
    });
    after(async () => {
      await server.close();
      await rx.close();
    });

    const add = (tenant: Tenant, body: unknown) => http(server.url, 'POST', `/api/apps/${tenant.clientId}/webhooks`, { token: tenant.token, body });
    const deliveries = (tenant: Tenant, id: string) => http(server.url, 'GET', `/api/apps/${tenant.clientId}/webhooks/${id}/deliveries`, { token: tenant.token });
    const remove = (tenant: Tenant, id: string) => http(server.url, 'DELETE', `/api/apps/${tenant.clientId}/webhooks/${id}`, { token: tenant.token });
    const deliveries_ = async (tenant: Tenant, id: string) => (await deliveries(tenant, id)).body.deliveries as unknown[];

    it('delivers a signed JSON body for approval.requested to a loopback listener, and records it', async () => {
      const created = await add(t, { url: rx.url('/hooks/json?team=ops'), format: 'json', events: ['approval.requested'] });
      assert.equal(created.status, 201, created.text);
      const secret = created.body.secret as string;
      assert.match(secret, /^whsec_[0-9A-Za-z]{32}$/);
      assert.deepEqual(created.body.events, ['approval.requested']);
      const listed = await http(server.url, 'GET', `/api/apps/${t.clientId}/webhooks`, { token: t.token });
      assert.equal(listed.body.webhooks.length, 1);
      assert.ok(!listed.text.includes(secret), 'the secret is shown once');
      assert.ok(!(await server.store.webhooks.list(t.clientId))[0]!.secretEnc.includes(secret), 'and stored sealed');

      const { approvalId } = await openApproval(server, t.clientId, { tool: 'payments.refund', userSub: 'alice' });
      const r = await eventually('the delivery', () => rx.received.find((x) => x.path.startsWith('/hooks/json')));
      assert.equal(r.path, '/hooks/json?team=ops');
      assert.ok(verify(secret, r), 'valid t=,v1= signature over t.POST.path?query.body');
      assert.ok(!verify('whsec_wrong', r));
      assert.equal(r.headers['x-panopticon-event'], 'approval.requested');
      assert.equal(r.headers['content-type'], 'application/json');
      const body = JSON.parse(r.body);
      assert.equal(body.type, 'approval.requested');
      assert.equal(body.client_id, t.clientId);
      assert.equal(body.data.approval_id, approvalId);
      assert.equal(body.data.tool, 'payments.refund');
      assert.equal(body.data.user_sub, 'alice');
      assert.equal(body.data.poll_url, `/panopticon/approvals/${approvalId}`);

      const d = await eventually('delivered status', async () => {
        const res = await deliveries(t, created.body.id);
        return res.body.deliveries[0]?.status === 'delivered' ? res.body.deliveries[0] : undefined;
      });
      assert.equal(d.id, r.headers['x-panopticon-delivery']);
      assert.equal(d.attempts, 1);
      assert.equal(d.last_status_code, 200);
      assert.equal(d.event, 'approval.requested');

      // Subscribed to approval.requested only: a decision is not sent to it.
      const before = rx.received.length;
      await http(server.url, 'POST', `/api/approvals/${approvalId}/approve`, { token: t.token, body: {} });
      await sleep(300);
      assert.equal(rx.received.length, before);
      assert.equal((await remove(t, created.body.id)).status, 200);
    });

    it('Slack format: a human sentence with the approve and deny commands, as text and blocks', async () => {
      const created = await add(t, { url: rx.url('/slack'), format: 'slack' });
      assert.equal(created.status, 201);
      assert.deepEqual(created.body.events, [...GUARD_EVENT_TYPES], 'all event types by default');
      const { approvalId } = await openApproval(server, t.clientId, { tool: 'db.drop', userSub: '<!channel>', reason: 'dangerous & rare' });
      const r = await eventually('the Slack delivery', () => rx.received.find((x) => x.path === '/slack'));
      assert.ok(verify(created.body.secret, r));
      const body = JSON.parse(r.body);
      assert.deepEqual(Object.keys(body).sort(), ['blocks', 'text']);
      assert.match(body.text, /Approval needed/);
      assert.match(body.text, /db\.drop/);
      assert.match(body.text, /dangerous &amp; rare/);
      assert.ok(!body.text.includes('<!channel>'), 'user text cannot ping a channel');
      assert.ok(body.text.includes(`logi panopticon approvals approve ${approvalId}`));
      assert.equal(body.blocks[0].type, 'section');
      assert.equal(body.blocks[0].text.type, 'mrkdwn');
      assert.ok(body.blocks.some((b: { text?: { text: string } }) => b.text?.text.includes(`logi panopticon approvals deny ${approvalId}`)));

      // Decision and expiry are notified too.
      await http(server.url, 'POST', `/api/approvals/${approvalId}/deny`, { token: t.token, body: { comment: 'no way' } });
      const decided = await eventually('the decided event', () => rx.received.find((x) => x.path === '/slack' && x.headers['x-panopticon-event'] === 'approval.decided'));
      assert.match(JSON.parse(decided.body).text, /denied by account:acct_\w+: "no way"/);
      const short = await openApproval(server, t.clientId, { expiresInMs: 200 });
      const expired = await eventually('the expired event', () => rx.received.find((x) => x.path === '/slack' && x.headers['x-panopticon-event'] === 'approval.expired'));
      assert.ok(JSON.parse(expired.body).text.includes(short.approvalId));
      assert.equal((await remove(t, created.body.id)).status, 200);
    });

    it('retries after a 500 with backoff, then succeeds; the attempts are recorded', async () => {
      const created = await add(t, { url: rx.url('/retry'), events: ['kill_switch.on'] });
      rx.statuses.push(500);
      await killSwitch(server.url, t, 'kill', { reason: 'incident' });
      const d = await eventually('delivered after a retry', async () => {
        const res = await deliveries(t, created.body.id);
        return res.body.deliveries[0]?.status === 'delivered' ? res.body.deliveries[0] : undefined;
      });
      assert.equal(d.attempts, 2);
      assert.equal(d.last_status_code, 200);
      const got = rx.received.filter((x) => x.path === '/retry');
      assert.equal(got.length, 2);
      assert.equal(got[0]!.headers['x-panopticon-delivery'], got[1]!.headers['x-panopticon-delivery'], 'same delivery id, so the receiver can dedupe');
      assert.equal(got[0]!.body, got[1]!.body, 'the same bytes each attempt');
      assert.equal((await remove(t, created.body.id)).status, 200);
      await killSwitch(server.url, t, 'revive', {});
    });

    it('gives up after the maximum attempts and records the failure', async () => {
      const created = await add(t, { url: rx.url('/down'), events: ['kill_switch.off'] });
      rx.statuses.push(500, 503, 502);
      await killSwitch(server.url, t, 'kill', { tool: 'db.drop', reason: 'r' });
      await killSwitch(server.url, t, 'revive', { tool: 'db.drop' });
      const d = await eventually('failed', async () => {
        const res = await deliveries(t, created.body.id);
        return res.body.deliveries[0]?.status === 'failed' ? res.body.deliveries[0] : undefined;
      });
      assert.equal(d.attempts, 3);
      assert.equal(d.last_status_code, 502);
      assert.equal(d.last_error, 'HTTP 502');
      assert.ok(d.completed_at);
      await sleep(200);
      assert.equal(rx.received.filter((x) => x.path === '/down').length, 3, 'no attempt after giving up');
    });

    it('an unreachable endpoint is an error, not a crash', async () => {
      const closed = await receiver();
      const url = closed.url('/gone');
      await closed.close();
      const created = await add(t, { url, events: ['kill_switch.on'] });
      await killSwitch(server.url, t, 'kill', { tool: 'x', reason: 'r' });
      const d = await eventually('failed', async () => {
        const res = await deliveries(t, created.body.id);
        return res.body.deliveries[0]?.status === 'failed' ? res.body.deliveries[0] : undefined;
      });
      assert.equal(d.last_status_code, null);
      assert.match(d.last_error, /ECONNREFUSED/);
      assert.equal((await remove(t, created.body.id)).status, 200);
      await killSwitch(server.url, t, 'revive', { tool: 'x' });
    });

    it('approval.requested deliveries commit with the approval: sent without the in-memory event, and gone with a failed commit', async () => {
      const owner = await createTenant(server.url);
      const hook = await add(owner, { url: rx.url('/hooks/outbox'), events: ['approval.requested'] });
      assert.equal(hook.status, 201, hook.text);
      const { record } = await openApproval(server, owner.clientId);
      await eventually('the first delivery', () => rx.received.find((x) => x.path === '/hooks/outbox'));
      const request = (approvalId: string) => ({
        type: 'approval.requested' as const, clientId: owner.clientId, approvalId, tool: record.tool, userSub: record.userSub, reason: 'r', expiresAt: Date.now() + 60_000,
      });

      // As if the process died right after the commit: the event is never published, the row is sent anyway.
      const silent = newId('apr');
      const deliveries = await webhookDeliveries(server.store, request(silent), Date.now());
      assert.equal(deliveries.length, 1);
      await server.services.checks.write({ ...record, id: newId('chk'), argumentsHash: 'silent', approval: { ...record.approval!, id: silent }, deliveries });
      const sent = await eventually('the unpublished delivery', () => rx.received.find((x) => x.path === '/hooks/outbox' && JSON.parse(x.body).data.approval_id === silent));
      assert.equal(sent.headers['x-panopticon-event'], 'approval.requested');

      // A commit that fails (the check id already exists) leaves neither the approval nor its delivery.
      const doomed = newId('apr');
      const before = (await deliveries_(owner, hook.body.id)).length;
      await assert.rejects(server.services.checks.write({ ...record, argumentsHash: 'doomed', approval: { ...record.approval!, id: doomed }, deliveries: await webhookDeliveries(server.store, request(doomed), Date.now()) }));
      assert.equal(await server.store.approvals.get(doomed), null);
      assert.equal((await deliveries_(owner, hook.body.id)).length, before);
      await remove(owner, hook.body.id);
    });

    it('decision, expiry and kill-switch deliveries commit with their change; a change that does not happen writes none', async () => {
      const owner = await createTenant(server.url);
      const hook = await add(owner, { url: rx.url('/hooks/changes'), format: 'json', events: ['approval.decided', 'approval.expired', 'kill_switch.on', 'kill_switch.off'] });
      assert.equal(hook.status, 201, hook.text);
      const rows = async () => (await deliveries_(owner, hook.body.id)) as Array<{ event: string }>;
      const sentFor = (event: string) => rx.received.filter((x) => x.path === '/hooks/changes' && x.headers['x-panopticon-event'] === event);

      // As if the process died right after the commit: the in-memory event is never published, the row is sent anyway.
      const event = { type: 'kill_switch.on' as const, clientId: owner.clientId, tool: 'silent.tool', reason: 'r', actor: 'test' };
      await server.store.guard.setKillSwitch({
        clientId: owner.clientId, tool: 'silent.tool', reason: 'r', createdBy: 'test', createdAt: Date.now(),
        audit: { clientId: owner.clientId, at: Date.now(), actor: 'test', action: 'kill.on', target: 'silent.tool', before: null, after: null },
        deliveries: await webhookDeliveries(server.store, event, Date.now()),
      });
      const silent = await eventually('the unpublished kill_switch.on', () => sentFor('kill_switch.on')[0]);
      assert.equal(JSON.parse(silent.body).data.tool, 'silent.tool');

      // Turning off a switch that is not on changes nothing, so it notifies nothing.
      const before = (await rows()).length;
      const notOn = await http(server.url, 'POST', `/api/apps/${owner.clientId}/revive`, { token: owner.token, body: { tool: 'never.on' } });
      assert.equal(notOn.status, 404);
      assert.equal((await rows()).length, before);

      // Two decisions of one approval: only the winner commits, with its one delivery.
      const { approvalId } = await openApproval(server, owner.clientId);
      const first = await http(server.url, 'POST', `/api/approvals/${approvalId}/approve`, { token: owner.token, body: {} });
      const second = await http(server.url, 'POST', `/api/approvals/${approvalId}/deny`, { token: owner.token, body: {} });
      assert.equal(first.status, 200, first.text);
      assert.equal(second.status, 409, second.text);
      await eventually('the decided event', () => sentFor('approval.decided')[0]);
      assert.equal((await rows()).filter((d) => d.event === 'approval.decided').length, 1);

      // The sweep writes each expiry's delivery with it; a decided approval is not swept.
      const short = await openApproval(server, owner.clientId, { expiresInMs: 1 });
      await sleep(5);
      // The node's own interval sweeper may be sweeping at the same moment: a sweep answers only once
      // the expiry committed, whichever of the two wrote it.
      const concurrent = server.services.approvals.sweep();
      await server.services.approvals.sweep();
      assert.deepEqual((await rows()).filter((d) => d.event === 'approval.expired').length, 1);
      await concurrent;
      const expired = await eventually('the expired event', () => sentFor('approval.expired')[0]);
      assert.equal(JSON.parse(expired.body).data.approval_id, short.approvalId);
      await server.services.approvals.sweep();
      assert.equal((await rows()).filter((d) => d.event === 'approval.expired').length, 1, 'a second sweep expires nothing and writes nothing');
      await remove(owner, hook.body.id);
    });

    it('validates URLs, audits create and remove, and keeps other accounts out', async () => {
      const bad = await add(t, { url: 'ftp://127.0.0.1/x' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'validation_failed');
      assert.equal((await add(t, { url: 'http://127.0.0.1/x', events: ['nope'] })).status, 400);
      assert.equal((await add(t, { url: 'http://127.0.0.1/x', format: 'xml' })).status, 400);

      const created = await add(t, { url: rx.url('/audit'), format: 'json' });
      const other = await createTenant(server.url);
      assert.equal((await remove(other, created.body.id)).status, 404, "another account's app id in its own path");
      const foreign = await http(server.url, 'DELETE', `/api/apps/${t.clientId}/webhooks/${created.body.id}`, { token: other.token });
      assert.equal(foreign.body.error.code, 'app_not_found');
      assert.equal((await deliveries(other, created.body.id)).body.error.code, 'webhook_not_found');

      assert.equal((await remove(t, created.body.id)).status, 200);
      const again = await remove(t, created.body.id);
      assert.equal(again.status, 404);
      assert.equal(again.body.error.code, 'webhook_not_found');
      const audit = await server.store.audit.list(t.clientId, { limit: 500 });
      const mine = audit.filter((e) => e.target === created.body.id).map((e) => e.action);
      assert.deepEqual(mine, ['webhook.create', 'webhook.remove']);
      assert.ok(!audit.some((e) => (e.after ?? '').includes('whsec_')), 'secrets never reach the audit log');
    });
  });
}

describe('webhook backoff', () => {
  it('doubles per attempt up to the cap, jittered down by at most half', () => {
    const s = { baseDelayMs: 1000, maxDelayMs: 10_000 };
    assert.equal(backoffMs(1, s, () => 1), 1000);
    assert.equal(backoffMs(3, s, () => 1), 4000);
    assert.equal(backoffMs(10, s, () => 1), 10_000);
    assert.equal(backoffMs(3, s, () => 0), 2000);
  });
});

describe('webhook delivery across two nodes (one PostgreSQL)', POSTGRES_ONLY, () => {
  let a: RunningServer;
  let b: RunningServer;
  let t: Tenant;
  let nodes: TwoNodes;
  let rx: Awaited<ReturnType<typeof receiver>>;
  before(async () => {
    nodes = await twoNodesOnePostgres({ webhooks: { pollIntervalMs: 20, baseDelayMs: 20, maxDelayMs: 40 } });
    ({ a, b, t } = nodes);
    rx = await receiver();
  });
  after(async () => {
    await nodes.close();
    await rx.close();
  });

  it('both workers poll the same outbox, yet each delivery is sent once', async () => {
    const created = await http(a.url, 'POST', `/api/apps/${t.clientId}/webhooks`, { token: t.token, body: { url: rx.url('/both'), events: ['kill_switch.on'] } });
    for (let i = 0; i < 30; i++) {
      await killSwitch((i % 2 === 0 ? a : b).url, t, 'kill', { tool: `t${i}`, reason: 'r' });
    }
    await eventually('30 deliveries', async () => {
      const res = await http(a.url, 'GET', `/api/apps/${t.clientId}/webhooks/${created.body.id}/deliveries?limit=100`, { token: t.token });
      return res.body.deliveries.length === 30 && res.body.deliveries.every((d: { status: string }) => d.status === 'delivered') ? true : undefined;
    });
    await sleep(300);
    const ids = rx.received.map((r) => r.headers['x-panopticon-delivery']);
    assert.equal(ids.length, 30);
    assert.equal(new Set(ids).size, 30, 'no delivery sent twice');
  });
});

describe('webhooks on a default install (private addresses refused) [sqlite]', () => {
  let server: RunningServer;
  let t: Tenant;
  let rx: Awaited<ReturnType<typeof receiver>>;

  before(async () => {
    server = await startServer('sqlite', { webhookAllowPrivate: false }, undefined, { webhooks: { baseDelayMs: 30, maxDelayMs: 60, maxAttempts: 2, pollIntervalMs: 50 } });
    t = await createTenant(server.url);
    rx = await receiver();
  });
  after(async () => {
    await server.close();
    await rx.close();
  });

  it('refuses to register a loopback, private, link-local or localhost URL, storing nothing', async () => {
    for (const url of [
      rx.url('/x'), 'http://10.0.0.5/hook', 'http://169.254.169.254/latest/meta-data', 'http://[::1]:9/x', 'http://localhost:9/x',
      // IPv4 inside IPv6 (IPv4-compatible, NAT64, NAT64 local-use, 6to4) and a fully qualified localhost
      'http://[::127.0.0.1]:9/x', 'http://[64:ff9b::127.0.0.1]/x', 'http://[64:ff9b:1::a9fe:a9fe]/x', 'http://[2002:7f00:1::]/x', 'http://localhost.:9/x',
    ]) {
      const res = await http(server.url, 'POST', `/api/apps/${t.clientId}/webhooks`, { token: t.token, body: { url, events: ['kill_switch.on'] } });
      assert.equal(res.status, 400, url);
      assert.equal(res.body.error.code, 'validation_failed');
      assert.equal(res.body.error.fields[0].field, 'url');
      assert.match(res.body.error.fields[0].message, /private or loopback/);
    }
    assert.equal((await server.store.webhooks.list(t.clientId)).length, 0);
  });

  it('does not connect to a name that resolves to loopback at delivery time (DNS rebinding); the delivery records why', async () => {
    // A name that resolves to loopback, put straight into the store as if it had resolved to a
    // public address when it was registered: the check that counts is the one at connect time.
    const port = new URL(rx.url('/')).port;
    const endpoint = {
      id: 'whk_rebind000000000', clientId: t.clientId, url: `http://localhost:${port}/rebind`, format: 'json' as const, events: ['kill_switch.on' as const],
      secretEnc: server.services.secrets.seal('whsec_x', t.clientId), enabled: true, createdAt: Date.now(),
    };
    await server.store.webhooks.create(endpoint, { clientId: t.clientId, at: Date.now(), actor: 'test', action: 'webhook.create', target: endpoint.id, before: null, after: null });
    await killSwitch(server.url, t, 'kill', { tool: 'x', reason: 'r' });
    const d = await eventually('failed', async () => {
      const res = await http(server.url, 'GET', `/api/apps/${t.clientId}/webhooks/${endpoint.id}/deliveries`, { token: t.token });
      return res.body.deliveries[0]?.status === 'failed' ? res.body.deliveries[0] : undefined;
    });
    assert.equal(d.last_status_code, null);
    assert.match(d.last_error, /resolves to (127\.0\.0\.1|::1), a private or loopback address/);
    assert.equal(rx.received.length, 0, 'no request reached the loopback receiver');
  });
});

