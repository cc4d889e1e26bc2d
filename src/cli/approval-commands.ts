/** `logi panopticon approvals …` and `logi panopticon grants …`: decide HITL requests, manage remembered answers. */
import { Option, type Command } from 'commander';
import { authedClient, enc, positiveInt, run, UsageError, withJson, type Json } from './common.js';
import { parseDuration, record, table } from './format.js';

const approvalColumns: Array<[string, string]> = [
  ['id', 'id'], ['status', 'status'], ['tool', 'tool'], ['user_sub', 'user'], ['reason', 'reason'], ['created_at', 'created'], ['expires_at', 'expires'],
];
const grantColumns: Array<[string, string]> = [
  ['id', 'id'], ['kind', 'kind'], ['status', 'status'], ['tool', 'tool'], ['user_sub', 'user'], ['session_id', 'session'], ['uses', 'uses'], ['expires_at', 'expires'],
];

export function registerApprovalCommands(pano: Command): void {
  const approvals = pano.command('approvals').description('human-in-the-loop approval requests: list, show, approve, deny');

  withJson(approvals.command('list <client_id>'))
    .description('approval requests of the application, newest first')
    .addOption(new Option('--status <status>', 'only this status').choices(['pending', 'approved', 'denied', 'expired']))
    .option('--limit <n>', 'how many (1-500)', positiveInt, 50)
    .option('--cursor <cursor>', 'continue after a previous page (next_cursor)')
    .action(run(async (cmd, clientId) => {
      const o = cmd.opts<{ status?: string; limit: number; cursor?: string }>();
      const qs = new URLSearchParams({ limit: String(o.limit) });
      if (o.status) qs.set('status', o.status);
      if (o.cursor) qs.set('cursor', o.cursor);
      const res = await authedClient(cmd).request<{ approvals: Json[]; next_cursor: string | null }>('GET', `/api/apps/${enc(clientId!)}/approvals?${qs}`);
      return { json: res, human: table(res.approvals, approvalColumns) + (res.next_cursor ? `More: --cursor ${res.next_cursor}\n` : '') };
    }));

  withJson(approvals.command('show <approval_id>'))
    .description('one approval request')
    .action(run(async (cmd, approvalId) => {
      const res = await authedClient(cmd).request<Json>('GET', `/api/approvals/${enc(approvalId!)}`);
      return { json: res, human: record(res) };
    }));

  withJson(approvals.command('approve <approval_id>'))
    .description('approve a pending request; --remember session|always also allows the next identical calls')
    .option('--comment <text>', 'why; the agent and the audit log see it')
    .addOption(new Option('--remember <scope>', 'once (this call), session (same session), always').choices(['once', 'session', 'always']).default('once'))
    .option('--for <duration>', 'with --remember session|always: the grant expires after this long (90s, 30m, 24h, 7d)')
    .action(run(async (cmd, approvalId) => {
      const o = cmd.opts<{ comment?: string; remember: string; for?: string }>();
      const body: Json = { remember: o.remember };
      if (o.comment !== undefined) body.comment = o.comment;
      if (o.for !== undefined) {
        const ms = parseDuration(o.for);
        if (ms === null || ms < 1000) throw new UsageError(`--for: "${o.for}" is not a duration of at least 1s, like 30m, 24h or 7d`);
        if (o.remember === 'once') throw new UsageError('--for needs --remember session or always');
        body.remember_for_seconds = Math.round(ms / 1000);
      }
      const res = await authedClient(cmd).request<{ approval: Json; grant: Json | null }>('POST', `/api/approvals/${enc(approvalId!)}/approve`, body);
      const grant = res.grant === null ? '' : `Remembered as grant ${String(res.grant.id)} (${String(res.grant.kind)}); revoke: logi panopticon grants revoke ${String(res.grant.client_id)} ${String(res.grant.id)}\n`;
      return { json: res, human: `Approved ${approvalId}.\n${grant}` };
    }));

  withJson(approvals.command('deny <approval_id>'))
    .description('deny a pending request')
    .option('--comment <text>', 'why; the agent and the audit log see it')
    .action(run(async (cmd, approvalId) => {
      const o = cmd.opts<{ comment?: string }>();
      const res = await authedClient(cmd).request<{ approval: Json }>('POST', `/api/approvals/${enc(approvalId!)}/deny`, o.comment === undefined ? {} : { comment: o.comment });
      return { json: res, human: `Denied ${approvalId}.\n` };
    }));

  const grants = pano.command('grants').description('remembered approvals: list, revoke');

  withJson(grants.command('list <client_id>'))
    .description('grants of the application with how often each was used')
    .option('--all', 'include revoked grants')
    .action(run(async (cmd, clientId) => {
      const all = cmd.opts<{ all?: boolean }>().all === true;
      const res = await authedClient(cmd).request<{ grants: Json[]; counts: Json }>('GET', `/api/apps/${enc(clientId!)}/grants${all ? '?include_revoked=true' : ''}`);
      const c = res.counts;
      return { json: res, human: table(res.grants, grantColumns) + `${String(c.active)} active, ${String(c.expired)} expired, ${String(c.revoked)} revoked; ${String(c.uses)} uses\n` };
    }));

  withJson(grants.command('revoke <client_id> <grant_id>'))
    .description('revoke a grant on every node; the next identical call asks again')
    .action(run(async (cmd, clientId, grantId) => {
      const res = await authedClient(cmd).request<Json>('DELETE', `/api/apps/${enc(clientId!)}/grants/${enc(grantId!)}`);
      return { json: res, human: `Revoked grant ${grantId}.\n` };
    }));
}
