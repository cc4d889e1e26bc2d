/** `logi panopticon hmac enable|disable|rotate|status <client_id>`: HMAC request signing of one application. */
import type { Command } from 'commander';
import { authedClient, enc, run, UsageError, withJson, type Json } from './common.js';
import { parseDuration, record, table } from './format.js';

const secretColumns: Array<[string, string]> = [['id', 'id'], ['prefix', 'prefix'], ['status', 'status'], ['created_at', 'created'], ['expires_at', 'expires'], ['revoked_at', 'revoked']];

/** The one place the secret is printed for humans: it cannot be shown again. */
function showSecret(title: string, secret: unknown): string {
  return `${title} (shown only once, store it now; the server cannot show it again):\n\n  ${String(secret)}\n\n`;
}

export function registerHmacCommands(pano: Command): void {
  const hmac = pano.command('hmac').description('HMAC request signing: when on, every trace request must carry X-Panopticon-Signature');

  withJson(hmac.command('enable <client_id>'))
    .description('require signed requests; prints the signing secret (pak_secret) once')
    .action(run(async (cmd, clientId) => {
      const res = await authedClient(cmd).request<Json & { secret: Json }>('POST', `/api/apps/${enc(clientId!)}/hmac/enable`);
      return {
        json: res,
        human: showSecret('Signing secret', res.pak_secret) +
          record({ id: res.secret.id, prefix: res.secret.prefix, created_at: res.secret.created_at }) +
          `Every request with this application's PAK must now be signed; see "HMAC request signing" in docs/api.md.\n`,
      };
    }));

  withJson(hmac.command('rotate <client_id>'))
    .description('issue a new signing secret; the old ones keep working for the grace period')
    .option('--grace <duration>', 'how long old secrets stay valid: 0 (revoke now), 90s, 30m, 24h, 7d', '24h')
    .action(run(async (cmd, clientId) => {
      const text = cmd.opts<{ grace: string }>().grace;
      const grace = parseDuration(text);
      if (grace === null) throw new UsageError(`--grace: "${text}" is not a duration like 0, 30m, 24h or 7d`);
      const res = await authedClient(cmd).request<Json & { previous: Json[] }>('POST', `/api/apps/${enc(clientId!)}/hmac/rotate`, { grace_seconds: Math.round(grace / 1000) });
      return {
        json: res,
        human: showSecret('New signing secret', res.pak_secret) + (res.previous.length ? `Previous secrets:\n${table(res.previous, secretColumns)}` : ''),
      };
    }));

  withJson(hmac.command('disable <client_id>'))
    .description('stop requiring signed requests; every signing secret is revoked')
    .action(run(async (cmd, clientId) => {
      const res = await authedClient(cmd).request<Json & { revoked: Json[] }>('POST', `/api/apps/${enc(clientId!)}/hmac/disable`);
      return { json: res, human: `HMAC signing disabled for ${clientId}; ${res.revoked.length} secret(s) revoked.\n` };
    }));

  withJson(hmac.command('status <client_id>'))
    .description('whether signing is required, and the signing secrets by prefix')
    .action(run(async (cmd, clientId) => {
      const res = await authedClient(cmd).request<Json & { secrets: Json[] }>('GET', `/api/apps/${enc(clientId!)}/hmac`);
      return { json: res, human: `HMAC signing ${res.enabled ? 'required' : 'off'} for ${clientId}\n` + table(res.secrets, secretColumns) };
    }));
}
