/**
 * `logi panopticon policies|kill|revive|checks`: the AI Guard from the command line (`audit`: audit-commands.ts). The
 * command names and flags are a contract (scripts call them); every command takes --json.
 */
import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { authedClient, enc, positiveInt, run, UsageError, withJson, type Json } from './common.js';
import { parseDuration, table } from './format.js';

const OP_SYMBOLS: Record<string, string> = {
  '==': 'eq', '=': 'eq', '!=': 'ne', '~': 'matches', '=~': 'matches', '!~': 'not_matches',
  '^=': 'prefix', '!^=': 'not_prefix', '$=': 'suffix', '!$=': 'not_suffix',
  '>': 'gt', '>=': 'gte', '<': 'lt', '<=': 'lte', '!in': 'not_in',
};
const OP_WORDS = new Set(['eq', 'ne', 'in', 'not_in', 'matches', 'not_matches', 'prefix', 'not_prefix', 'suffix', 'not_suffix', 'gt', 'gte', 'lt', 'lte', 'exists', 'not_exists']);

function scalar(text: string): unknown {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || ['number', 'boolean', 'string'].includes(typeof parsed) || Array.isArray(parsed)) return parsed;
  } catch {
    // Not JSON: a bare string.
  }
  return text;
}

/** `'PATH OP VALUE'`, e.g. `'to !$= @ourco.com'`, `'amount > 1000'`, `'env in prod,staging'`, `'force exists'`. */
export function parseArgCondition(text: string): { path: string; op: string; value?: unknown } {
  const m = /^\s*(\S+)\s+(\S+)(?:\s+(.*\S))?\s*$/.exec(text);
  if (m === null) throw new UsageError(`--arg "${text}": expected 'PATH OP VALUE', e.g. 'amount > 1000'`);
  const [, path, rawOp, rawValue] = m;
  const op = OP_SYMBOLS[rawOp!] ?? rawOp!;
  if (!OP_WORDS.has(op)) throw new UsageError(`--arg "${text}": unknown operator "${rawOp}" (use ${[...Object.keys(OP_SYMBOLS), ...OP_WORDS].join(' ')})`);
  if (op === 'exists' || op === 'not_exists') {
    if (rawValue !== undefined) throw new UsageError(`--arg "${text}": ${op} takes no value`);
    return { path: path!, op };
  }
  if (rawValue === undefined) throw new UsageError(`--arg "${text}": ${op} needs a value`);
  if (op === 'in' || op === 'not_in') {
    const v = scalar(rawValue);
    return { path: path!, op, value: Array.isArray(v) ? v : rawValue.split(',').map((s) => scalar(s.trim())) };
  }
  // Regexes, prefixes and suffixes are text even when they look like numbers.
  const value = ['matches', 'not_matches', 'prefix', 'not_prefix', 'suffix', 'not_suffix'].includes(op) ? rawValue : scalar(rawValue);
  return { path: path!, op, value };
}

const PERIODS: Record<string, string> = { s: 'second', sec: 'second', second: 'second', m: 'minute', min: 'minute', minute: 'minute', h: 'hour', hour: 'hour', d: 'day', day: 'day' };

export function parseRate(text: string): { max: number; period: string } {
  const m = /^(\d+)\/([a-z]+)$/.exec(text.trim());
  const period = m ? PERIODS[m[2]!] : undefined;
  if (m === null || period === undefined || Number(m[1]) < 1) throw new UsageError(`--rate "${text}": expected N/PERIOD, e.g. 10/minute (periods: second, minute, hour, day)`);
  return { max: Number(m[1]), period };
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

const ruleColumns: Array<[string, string]> = [['position', '#'], ['id', 'id'], ['name', 'name'], ['enabled', 'on'], ['effect', 'effect'], ['match', 'match'], ['limit', 'rate'], ['reason', 'reason']];

function ruleRow(rule: Json, index: number): Json {
  const match = rule.match as { tools: string[]; scopes: string[]; users: string[]; arguments: Array<{ path: string; op: string; value?: unknown }> };
  const parts = [
    match.tools.length ? `tool=${match.tools.join('|')}` : '',
    match.scopes.length ? `scope=${match.scopes.join('|')}` : '',
    match.users.length ? `user=${match.users.join('|')}` : '',
    ...match.arguments.map((c) => `${c.path} ${c.op}${c.value === undefined ? '' : ` ${JSON.stringify(c.value)}`}`),
  ].filter(Boolean);
  const rate = rule.rate_limit as { max: number; period: string; per: string } | null;
  return { ...rule, position: index + 1, match: parts.join(' & ') || '(any)', limit: rate ? `${rate.max}/${rate.period} per ${rate.per}` : null };
}

/** The part of a policy a reviewed file holds: no server timestamps, so an export imports as is. */
function exportable(policy: Json): Json {
  return {
    default_effect: policy.default_effect,
    rules: (policy.rules as Json[]).map(({ created_at: _c, updated_at: _u, ...rule }) => rule),
  };
}

/**
 * The YAML library, loaded by the commands that read or write YAML only: it is a third of what
 * every other `logi` call would load at start-up (see test/cli/startup.test.ts).
 */
function yaml(): Promise<typeof import('yaml')> {
  return import('yaml');
}

async function readPolicyFile(file: string | undefined): Promise<unknown> {
  const text = file === undefined || file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  const YAML = await yaml();
  try {
    return YAML.parse(text);
  } catch (err) {
    throw new UsageError(`${file ?? 'stdin'}: not YAML or JSON: ${(err as Error).message}`);
  }
}

export function registerGuardCommands(pano: Command): void {
  const policies = pano.command('policies').description('AI Guard rules: evaluated in order, first match decides; then the default effect');

  withJson(policies.command('list <client_id>'))
    .description('the rules in evaluation order, the default effect, the version and kill switches')
    .action(run(async (cmd, clientId) => {
      const p = await authedClient(cmd).request<Json>('GET', `/api/apps/${enc(clientId!)}/policies`);
      const rules = (p.rules as Json[]).map(ruleRow);
      const kills = p.kill_switches as Json[];
      const human = `${clientId}  policy v${String(p.version)}  default: ${String(p.default_effect)}\n` + table(rules, ruleColumns) +
        (kills.length ? `Kill switches ON:\n${table(kills.map((k) => ({ ...k, tool: k.tool ?? '(whole app)' })), [['tool', 'tool'], ['reason', 'reason'], ['created_at', 'since']])}` : '');
      return { json: p, human };
    }));

  withJson(policies.command('add <client_id>'))
    .description("add a rule; e.g. --name external-mail --effect deny --tool send_email --arg 'to !$= @ourco.com' --reason 'internal mail only'")
    .requiredOption('--name <name>', 'rule name')
    .addOption(new Option('--effect <effect>', 'what happens to a matching call').choices(['allow', 'deny', 'require_approval']).makeOptionMandatory())
    .option('--tool <glob>', 'tool-name glob (* and ?); repeatable; none = any tool', collect)
    .option('--scope <glob>', 'scope glob; repeatable; none = any scope', collect)
    .option('--user <sub>', 'user_sub; repeatable; none = any caller', collect)
    .option('--arg <condition>', "argument condition 'PATH OP VALUE' (ops: == != in !in ~ !~ ^= !^= $= !$= > >= < <= exists not_exists, or their names); repeatable, all must hold", collect)
    .option('--rate <N/PERIOD>', 'rate limit, e.g. 10/minute; over it the call is denied (rate_limited)')
    .addOption(new Option('--per <subject>', 'what the rate limit counts per').choices(['app', 'user', 'tool']).default('app'))
    .option('--reason <text>', 'reason shown to the agent')
    .option('--expires <duration>', 'the rule stops applying after this long, e.g. 2h, 7d')
    .option('--approval-ttl <duration>', 'require_approval: how long a request waits before it expires (default 10m)')
    .option('--position <k>', '1-based position (default: last)', positiveInt)
    .option('--disabled', 'add it switched off')
    .action(run(async (cmd, clientId) => {
      const o = cmd.opts<{ name: string; effect: string; tool?: string[]; scope?: string[]; user?: string[]; arg?: string[]; rate?: string; per: string; reason?: string; expires?: string; approvalTtl?: string; position?: number; disabled?: boolean }>();
      const duration = (flag: string, text: string | undefined): number | null => {
        if (text === undefined) return null;
        const ms = parseDuration(text);
        if (ms === null || ms <= 0) throw new UsageError(`${flag}: "${text}" is not a duration like 30m, 2h or 7d`);
        return ms;
      };
      const expiresMs = duration('--expires', o.expires);
      const ttlMs = duration('--approval-ttl', o.approvalTtl);
      const body = {
        name: o.name,
        effect: o.effect,
        enabled: !o.disabled,
        match: { tools: o.tool ?? [], scopes: o.scope ?? [], users: o.user ?? [], arguments: (o.arg ?? []).map(parseArgCondition) },
        rate_limit: o.rate === undefined ? null : { ...parseRate(o.rate), per: o.per },
        reason: o.reason ?? null,
        expires_at: expiresMs === null ? null : new Date(Date.now() + expiresMs).toISOString(),
        approval_ttl_seconds: ttlMs === null ? null : Math.round(ttlMs / 1000),
        ...(o.position !== undefined ? { position: o.position } : {}),
      };
      const res = await authedClient(cmd).request<{ version: number; rule: Json; position: number }>('POST', `/api/apps/${enc(clientId!)}/policies/rules`, body);
      return { json: res.rule, human: `Added rule ${String(res.rule.id)} at position ${res.position} (policy v${res.version}).\n` + table([ruleRow(res.rule, res.position - 1)], ruleColumns) };
    }));

  for (const verb of ['remove', 'enable', 'disable'] as const) {
    withJson(policies.command(`${verb} <client_id> <rule_id>`))
      .description(`${verb} a rule`)
      .action(run(async (cmd, clientId, ruleId) => {
        const api = authedClient(cmd);
        const path = `/api/apps/${enc(clientId!)}/policies/rules/${enc(ruleId!)}`;
        const res = verb === 'remove' ? await api.request<Json>('DELETE', path) : await api.request<Json>('POST', `${path}/${verb}`);
        return { json: res, human: `Rule ${ruleId} ${verb === 'remove' ? 'removed' : `${verb}d`} (policy v${String(res.version)}).\n` };
      }));
  }

  withJson(policies.command('move <client_id> <rule_id>'))
    .description('move a rule to another position in the evaluation order')
    .requiredOption('--position <k>', '1-based position', positiveInt)
    .action(run(async (cmd, clientId, ruleId) => {
      const res = await authedClient(cmd).request<Json>('POST', `/api/apps/${enc(clientId!)}/policies/rules/${enc(ruleId!)}/move`, { position: cmd.opts<{ position: number }>().position });
      return { json: res, human: `Rule ${ruleId} is now at position ${String(res.position)} (policy v${String(res.version)}).\n` };
    }));

  withJson(policies.command('default <client_id> <effect>'))
    .description('the effect for calls no rule matches: allow, deny or require_approval')
    .action(run(async (cmd, clientId, effect) => {
      if (!['allow', 'deny', 'require_approval'].includes(effect!)) throw new UsageError(`effect must be allow, deny or require_approval, not "${effect}"`);
      const res = await authedClient(cmd).request<Json>('PUT', `/api/apps/${enc(clientId!)}/policies/default`, { effect });
      return { json: res, human: `Default effect: ${String(res.default_effect)} (policy v${String(res.version)}).\n` };
    }));

  withJson(policies.command('export <client_id> [file]'))
    .description('write the policy as YAML (or JSON for a .json file or --json) for review in git; stdout without FILE')
    .action(run(async (cmd, clientId, file) => {
      const policy = await authedClient(cmd).request<Json>('GET', `/api/apps/${enc(clientId!)}/policies`);
      const doc = exportable(policy);
      const asJson = file?.endsWith('.json') ?? false;
      const text = asJson ? JSON.stringify(doc, null, 2) + '\n' : `# Panopticon policy for ${clientId}, exported at version ${String(policy.version)}\n` + (await yaml()).stringify(doc);
      if (file !== undefined && file !== '-') {
        fs.writeFileSync(file, text);
        return { json: { file, version: policy.version, rules: (doc.rules as Json[]).length }, human: `Wrote ${(doc.rules as Json[]).length} rule(s), policy v${String(policy.version)}, to ${file}\n` };
      }
      return { json: doc, human: text };
    }));

  withJson(policies.command('import <client_id> [file]'))
    .description('replace the policy with a YAML or JSON file (stdin without FILE); rules keep their ids, new ones get one')
    .option('--if-version <n>', 'apply only if the policy is still at this version', (v) => Number(v))
    .action(run(async (cmd, clientId, file) => {
      const doc = await readPolicyFile(file);
      if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError('the file must hold a mapping with rules (and optionally default_effect)');
      const ifVersion = cmd.opts<{ ifVersion?: number }>().ifVersion;
      const res = await authedClient(cmd).request<Json>('PUT', `/api/apps/${enc(clientId!)}/policies`, { ...(doc as Json), ...(ifVersion !== undefined ? { if_version: ifVersion } : {}) });
      return { json: res, human: `Imported ${(res.rules as Json[]).length} rule(s); policy v${String(res.version)}, default ${String(res.default_effect)}.\n` };
    }));

  withJson(policies.command('simulate <client_id> [file]'))
    .description("evaluate a proposed policy file against the app's recent checks and traces; per rule, what would change")
    .option('--since-hours <n>', 'how far back to sample (default 168)', positiveInt)
    .action(run(async (cmd, clientId, file) => {
      const proposed = await readPolicyFile(file);
      const since = cmd.opts<{ sinceHours?: number }>().sinceHours;
      const r = await authedClient(cmd).request<Json>('POST', `/api/apps/${enc(clientId!)}/policies/simulate`, { policy: proposed, ...(since ? { since_hours: since } : {}) });
      const human = `${String(r.samples)} sample(s) ${r.from ? `from ${String(r.from)} to ${String(r.to)}` : ''}; ${String(r.changed)} decision(s) would change` +
        (Number(r.undecidable) > 0 ? `; ${String(r.undecidable)} without stored arguments` : '') + '\n' +
        `now:      ${JSON.stringify(r.current)}\nproposed: ${JSON.stringify(r.proposed)}\n` +
        table(r.rules as Json[], [['rule_id', 'rule'], ['name', 'name'], ['matched', 'matched'], ['changed', 'changed'], ['to_allow', '→allow'], ['to_deny', '→deny'], ['to_require_approval', '→approval']]);
      return { json: r, human };
    }));

  withJson(pano.command('kill <client_id>'))
    .description('kill switch ON: every guard check of the app (or of one tool) is denied, on every node within a second')
    .option('--tool <tool>', 'only this tool')
    .requiredOption('--reason <reason>', 'why (shown to agents and in the audit log)')
    .action(run(async (cmd, clientId) => {
      const o = cmd.opts<{ tool?: string; reason: string }>();
      const res = await authedClient(cmd).request<{ kill_switch: Json; was_on: boolean }>('POST', `/api/apps/${enc(clientId!)}/kill`, { reason: o.reason, ...(o.tool ? { tool: o.tool } : {}) });
      return { json: res, human: `Kill switch ON for ${o.tool ?? `all of ${clientId}`}: ${o.reason}\nUndo: logi panopticon revive ${clientId}${o.tool ? ` --tool ${o.tool}` : ''}\n` };
    }));

  withJson(pano.command('revive <client_id>'))
    .description('kill switch OFF (the app-wide one, or one tool\'s)')
    .option('--tool <tool>', 'only this tool')
    .action(run(async (cmd, clientId) => {
      const tool = cmd.opts<{ tool?: string }>().tool;
      const res = await authedClient(cmd).request<Json>('POST', `/api/apps/${enc(clientId!)}/revive`, tool ? { tool } : {});
      return { json: res, human: `Kill switch OFF for ${tool ?? `all of ${clientId}`}.\n` };
    }));

  withJson(pano.command('checks <client_id>'))
    .description('recent guard decisions, newest first')
    .option('--limit <n>', 'how many (1-500)', positiveInt, 20)
    .action(run(async (cmd, clientId) => {
      const res = await authedClient(cmd).request<{ checks: Json[] }>('GET', `/api/apps/${enc(clientId!)}/checks?limit=${cmd.opts<{ limit: number }>().limit}`);
      return { json: res.checks, human: table(res.checks, [['created_at', 'at'], ['tool', 'tool'], ['user_sub', 'user'], ['decision', 'decision'], ['reason', 'reason'], ['rule_id', 'rule'], ['approval_id', 'approval'], ['check_id', 'check_id']]) };
    }));

}
