/**
 * `logi`: the operator CLI. Every command takes --json (machine output on stdout, errors as JSON
 * on stderr) and prints tables otherwise. Exit codes: 0 ok, 1 the server refused or failed,
 * 2 bad usage. The server URL comes from --url, LOGI_URL, the saved credentials, or the default;
 * the token from LOGI_TOKEN or the credentials `logi login` saved (0600, under the config dir).
 */
import { Command, Option } from 'commander';
import { ApiCallError, ApiClient, removeCredentials, writeCredentials } from './client.js';
import { cliConfig, client, isoDate, positiveInt, requireToken, run, UsageError, withJson, type Json } from './common.js';
import { parseDuration, record, table } from './format.js';
import { registerGuardCommands } from './guard-commands.js';
import { registerApprovalCommands } from './approval-commands.js';
import { registerWebhookCommands } from './webhook-commands.js';
import { registerHmacCommands } from './hmac-commands.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerToolCommands } from './tool-commands.js';
import { registerMcpCommands } from './mcp-commands.js';

const appColumns: Array<[string, string]> = [['client_id', 'client_id'], ['name', 'name'], ['panopticon_enabled', 'enabled'], ['created_at', 'created']];
const pakColumns: Array<[string, string]> = [['id', 'id'], ['prefix', 'prefix'], ['status', 'status'], ['created_at', 'created'], ['last_used_at', 'last used'], ['expires_at', 'expires']];

async function obtainToken(api: ApiClient, email: string, password: string): Promise<{ token: string; account: Json }> {
  const res = await api.request<{ token: string; account: Json }>('POST', '/api/auth/token', { email, password, name: 'logi' }, { auth: false });
  writeCredentials(cliConfig.credentialsFile, { url: api.baseUrl, token: res.token });
  return res;
}

export function buildCli(argv: readonly string[] = process.argv): Command {
  // Known before parsing, because commander reports parse errors before any action runs.
  const wantsJson = argv.includes('--json');
  const program = new Command('logi')
    .description('Panopticon: see and govern every AI agent and MCP tool call')
    .version('0.1.0')
    .addOption(new Option('--url <url>', 'server URL (default: LOGI_URL, saved login, or http://127.0.0.1:8080)'))
    .showHelpAfterError()
    .configureOutput({
      // Under --json a script reads stderr as JSON, so commander's text (error and help after it)
      // is held back and the error is reported as JSON in exitOverride below.
      writeErr: (str) => {
        if (!wantsJson) process.stderr.write(str);
      },
    })
    .exitOverride((err) => {
      if (err.exitCode !== 0 && wantsJson) {
        process.stderr.write(JSON.stringify({ error: { code: 'usage', message: err.message.replace(/^error: /, '') } }) + '\n');
      }
      process.exit(err.exitCode === 0 ? 0 : 2);
    });

  withJson(program.command('serve'))
    .description('run the server (same as npm start); configured by HOST, PORT, PANOPTICON_DB and the other variables in README.md')
    .action(async () => {
      const { serve, reportStartupError } = await import('../serve.js');
      await serve().catch(reportStartupError);
    });

  withJson(program.command('signup'))
    .description('create an operator account (the first one owns the install), then sign in and save a token')
    .requiredOption('--email <email>', 'account email')
    .requiredOption('--password <password>', 'at least 10 characters')
    .action(run(async (cmd) => {
      const { email, password } = cmd.opts<{ email: string; password: string }>();
      const api = client(cmd);
      const signup = await api.request<{ account: Json }>('POST', '/api/auth/signup', { email, password }, { auth: false });
      const { token } = await obtainToken(api, email, password);
      return { json: { token, account: signup.account }, human: `Signed up and signed in as ${String(signup.account.email)}${signup.account.is_owner ? ' (owner of this install)' : ''}.\nToken saved to ${cliConfig.credentialsFile}\nNext: logi apps create --name my-agent\n` };
    }));

  withJson(program.command('login'))
    .description('sign in and save an operator token (0600) for later commands')
    .requiredOption('--email <email>', 'account email')
    .requiredOption('--password <password>', 'account password')
    .action(run(async (cmd) => {
      const { email, password } = cmd.opts<{ email: string; password: string }>();
      const { token, account } = await obtainToken(client(cmd), email, password);
      return { json: { token, account }, human: `Signed in as ${String(account.email)}. Token saved to ${cliConfig.credentialsFile}\n` };
    }));

  withJson(program.command('logout'))
    .description('revoke the saved token on the server and forget it')
    .action(run(async (cmd) => {
      const api = client(cmd);
      let revoked = false;
      if (api.hasToken) {
        try {
          await api.request('DELETE', '/api/auth/token');
          revoked = true;
        } catch (err) {
          if (!(err instanceof ApiCallError) || err.status !== 401) throw err;
        }
      }
      const removed = removeCredentials(cliConfig.credentialsFile);
      return { json: { revoked, removed }, human: revoked || removed ? 'Signed out.\n' : 'Not signed in.\n' };
    }));

  const apps = program.command('apps').description('applications');
  withJson(apps.command('create'))
    .description('create an application; prints its client_id')
    .requiredOption('--name <name>', 'display name')
    .action(run(async (cmd) => {
      const api = client(cmd);
      requireToken(api);
      const created = await api.request<Json>('POST', '/api/apps', { name: cmd.opts<{ name: string }>().name });
      return { json: created, human: record(created) + `Next: logi panopticon enable ${String(created.client_id)}\n` };
    }));
  withJson(apps.command('list'))
    .description('list your applications')
    .action(run(async (cmd) => {
      const api = client(cmd);
      requireToken(api);
      const res = await api.request<{ apps: Json[] }>('GET', '/api/apps');
      return { json: res.apps, human: table(res.apps, appColumns) };
    }));

  const pano = program.command('panopticon').description('Panopticon for one application: enable, keys, traces, usage');
  for (const [name, enabled] of [['enable', true], ['disable', false]] as const) {
    withJson(pano.command(`${name} <client_id>`))
      .description(`${enabled ? 'start' : 'stop'} accepting traces for the application`)
      .action(run(async (cmd, clientId) => {
        const api = client(cmd);
        requireToken(api);
        const updated = await api.request<Json>('PATCH', `/api/apps/${encodeURIComponent(clientId!)}`, { panopticon_enabled: enabled });
        return { json: updated, human: `Panopticon ${enabled ? 'enabled' : 'disabled'} for ${clientId}.${enabled ? `\nNext: logi panopticon pak issue ${clientId}` : ''}\n` };
      }));
  }

  const pak = pano.command('pak').description("the application's keys (PAKs)");
  withJson(pak.command('issue <client_id>'))
    .description('issue the first PAK; the full key is printed once, store it now')
    .action(run(async (cmd, clientId) => {
      const api = client(cmd);
      requireToken(api);
      const res = await api.request<Json>('POST', `/api/apps/${encodeURIComponent(clientId!)}/paks`);
      return { json: res, human: `PAK (shown only once, store it now):\n\n  ${String(res.pak)}\n\n` + record({ id: res.id, prefix: res.prefix, created_at: res.created_at }) };
    }));
  withJson(pak.command('rotate <client_id>'))
    .description('issue a new PAK; the old ones keep working for the grace period')
    .option('--grace <duration>', 'how long old keys stay valid: 0 (revoke now), 90s, 30m, 24h, 7d', '24h')
    .action(run(async (cmd, clientId) => {
      const grace = parseDuration(cmd.opts<{ grace: string }>().grace);
      if (grace === null) throw new UsageError(`--grace: "${cmd.opts<{ grace: string }>().grace}" is not a duration like 0, 30m, 24h or 7d`);
      const api = client(cmd);
      requireToken(api);
      const res = await api.request<Json & { previous: Json[] }>('POST', `/api/apps/${encodeURIComponent(clientId!)}/paks/rotate`, { grace_seconds: Math.round(grace / 1000) });
      return {
        json: res,
        human: `New PAK (shown only once, store it now):\n\n  ${String(res.pak)}\n\n` +
          (res.previous.length ? `Previous keys:\n${table(res.previous, pakColumns)}` : ''),
      };
    }));
  withJson(pak.command('revoke <client_id>'))
    .description('revoke the application\'s keys now, on every node')
    .option('--key <key_id>', 'revoke only this key')
    .action(run(async (cmd, clientId) => {
      const api = client(cmd);
      requireToken(api);
      const key = cmd.opts<{ key?: string }>().key;
      const res = await api.request<{ revoked: Json[] }>('POST', `/api/apps/${encodeURIComponent(clientId!)}/paks/revoke`, key ? { key_id: key } : {});
      return { json: res, human: `Revoked ${res.revoked.length} key(s).\n` };
    }));
  withJson(pak.command('list <client_id>'))
    .description('list the application\'s keys by prefix, with created and last-used times')
    .action(run(async (cmd, clientId) => {
      const api = client(cmd);
      requireToken(api);
      const res = await api.request<{ paks: Json[] }>('GET', `/api/apps/${encodeURIComponent(clientId!)}/paks`);
      return { json: res.paks, human: table(res.paks, pakColumns) };
    }));

  registerHmacCommands(pano);

  withJson(pano.command('traces <client_id>'))
    .description('recent traces, newest first')
    .option('--limit <n>', 'how many (1-500)', positiveInt, 20)
    .option('--tool <tool>', 'only this tool')
    .addOption(new Option('--status <status>', 'only this status').choices(['ok', 'error', 'denied', 'timeout']))
    .option('--user <user_sub>', 'only this user_sub')
    .option('--cursor <cursor>', 'continue after a previous page (next_cursor)')
    .action(run(async (cmd, clientId) => {
      const o = cmd.opts<{ limit: number; tool?: string; status?: string; user?: string; cursor?: string }>();
      const api = client(cmd);
      requireToken(api);
      const qs = new URLSearchParams({ limit: String(o.limit) });
      if (o.tool) qs.set('tool', o.tool);
      if (o.status) qs.set('status', o.status);
      if (o.user) qs.set('user_sub', o.user);
      if (o.cursor) qs.set('cursor', o.cursor);
      const res = await api.request<{ traces: Json[]; next_cursor: string | null }>('GET', `/api/apps/${encodeURIComponent(clientId!)}/traces?${qs}`);
      const human = table(res.traces, [['started_at', 'started_at'], ['tool', 'tool'], ['status', 'status'], ['duration_ms', 'ms'], ['scope_used', 'scope'], ['user_sub', 'user'], ['event_id', 'event_id']]) +
        (res.next_cursor ? `More: --cursor ${res.next_cursor}\n` : '');
      return { json: res, human };
    }));

  withJson(pano.command('usage <client_id>'))
    .description('daily counts per UTC date: traces, errors, HITL requests, kill-switch blocks')
    .requiredOption('--since <date>', 'first date, YYYY-MM-DD', isoDate)
    .option('--until <date>', 'last date, YYYY-MM-DD (default today)', isoDate)
    .action(run(async (cmd, clientId) => {
      const o = cmd.opts<{ since: string; until?: string }>();
      const api = client(cmd);
      requireToken(api);
      const qs = new URLSearchParams({ since: o.since });
      if (o.until) qs.set('until', o.until);
      const res = await api.request<{ rows: Json[]; totals: Json; since: string; until: string }>('GET', `/api/apps/${encodeURIComponent(clientId!)}/usage?${qs}`);
      const columns: Array<[string, string]> = [['date', 'date'], ['traces', 'traces'], ['errors', 'errors'], ['hitl_requests', 'hitl'], ['kill_switch', 'kill switch']];
      const human = `${clientId}  ${res.since} .. ${res.until}\n` + table([...res.rows, { date: 'total', ...res.totals }], columns);
      return { json: res.rows, human };
    }));

  registerGuardCommands(pano);
  registerAuditCommands(pano);
  registerApprovalCommands(pano);
  registerWebhookCommands(pano);
  registerToolCommands(pano);
  registerMcpCommands(program);

  return program;
}

await buildCli().parseAsync(process.argv);
