/**
 * `logi panopticon audit …`: an application's audit log, its verification, and signed heads to keep
 * outside the database. The command names, flags and exit codes are a contract (scripts and cron
 * jobs call them); every command takes --json.
 *
 *   audit <client_id>                        the log, newest first
 *   audit verify <client_id> [--against H]   recompute the keyed chain (and compare with a signed head)
 *   audit head <client_id>                   print the current head, signed by the server
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { authedClient, enc, positiveInt, run, UsageError, withJson, type Json } from './common.js';
import { table } from './format.js';

const VERIFY_EXIT_CODES = `
Exit codes:
  0  the chain verifies (and, with --against, still holds every entry of that head, unchanged)
  1  it does not (the problem is printed: changed, deleted, unkeyed or truncated entries), or the
     server refused the request (e.g. audit_head_invalid: the head was not signed by this server
     for this application)
  2  bad usage: no client_id, or --against is neither a signed head nor a readable file holding one

Without --against, entries deleted off the end together with the count and head pinned on the
application row go unnoticed; keep the output of \`logi panopticon audit head\` elsewhere and
verify against it. What is and is not detected: docs/security.md, "Audit log integrity".
`;

const HEAD_EXIT_CODES = `
Prints one line (pah1.<client_id>.<seq>.<head hash>.<signed_at ms>.<tag>). Keep it where whoever can
write the database cannot (a ticket, a repository, write-once storage); later,
\`logi panopticon audit verify <client_id> --against <that line or its file>\` detects deletion or
rewriting of any entry up to it.

Exit codes:
  0  printed
  1  the server refused (audit_chain_broken: the log does not verify, so no head is signed)
  2  bad usage
`;

const SIGNED_HEAD = /pah1\.[A-Za-z0-9_.-]+/;

/** `--against`: the printed head itself, or a file holding it (the line, `audit head` output or its --json). */
export function readSignedHead(value: string): string {
  if (value.startsWith('pah1.')) return value;
  let text: string;
  try {
    text = fs.readFileSync(value, 'utf8');
  } catch {
    throw new UsageError(`--against: "${value}" is neither a signed head (pah1.…) nor a readable file`);
  }
  const found = SIGNED_HEAD.exec(text);
  if (found === null) throw new UsageError(`--against: ${value} holds no signed head (pah1.…)`);
  return found[0];
}

function verifyText(clientId: string, v: Json): string {
  if (!v.ok) return `BROKEN: ${String(v.problem)} at entry ${String(v.seq)}: ${String(v.detail)}\n`;
  let text = `OK: ${String(v.entries)} entries, chain intact (head ${String(v.head ?? '-').slice(0, 16)}…)\n`;
  const anchor = v.anchor as Json | undefined;
  if (anchor !== undefined) text += `Matches the head signed at ${String(anchor.signed_at)}: entries 1-${String(anchor.seq)} are unchanged.\n`;
  if (Number(v.unkeyed_entries) > 0) {
    text += `Note: entries 1-${String(v.unkeyed_entries)} were written before the chain was keyed (plain SHA-256), sealed at ${String(v.unkeyed_sealed_at)}: ` +
      'changes a database writer made to them before then cannot be detected.\n';
  }
  if (anchor === undefined) text += `Not checked: truncation off the end. Keep \`logi panopticon audit head ${clientId}\` elsewhere and verify --against it.\n`;
  return text;
}

export function registerAuditCommands(pano: Command): void {
  const audit = withJson(pano.command('audit'))
    .description('the audit log, newest first (`audit <client_id>`); `audit verify` checks its keyed hash chain, `audit head` prints a signed head to keep elsewhere')
    .argument('[client_id]', 'the application')
    .option('--limit <n>', 'how many entries (1-500)', positiveInt, 50)
    .action(run(async (cmd, clientId) => {
      if (clientId === undefined) throw new UsageError('usage: logi panopticon audit <client_id> | audit verify <client_id> [--against HEAD] | audit head <client_id>');
      const res = await authedClient(cmd).request<{ entries: Json[] }>('GET', `/api/apps/${enc(clientId)}/audit?limit=${cmd.opts<{ limit: number }>().limit}`);
      const rows = res.entries.map((e) => ({ ...e, who: e.actor_email ?? e.actor, change: `${JSON.stringify(e.before)} → ${JSON.stringify(e.after)}` }));
      return { json: res.entries, human: table(rows, [['seq', '#'], ['at', 'at'], ['who', 'who'], ['action', 'action'], ['target', 'target'], ['change', 'before → after']]) };
    }));

  withJson(audit.command('verify <client_id>'))
    .description('recompute the keyed hash chain; with --against, also check the log still holds every entry of a signed head kept elsewhere')
    .option('--against <head>', 'a signed head printed by `audit head` (pah1.…), or a file holding one')
    .addHelpText('after', VERIFY_EXIT_CODES)
    .action(run(async (cmd, clientId) => {
      const against = cmd.opts<{ against?: string }>().against;
      const qs = against === undefined ? '' : `?against=${enc(readSignedHead(against))}`;
      const v = await authedClient(cmd).request<Json>('GET', `/api/apps/${enc(clientId!)}/audit/verify${qs}`);
      if (!v.ok) process.exitCode = 1;
      return { json: v, human: verifyText(clientId!, v) };
    }));

  withJson(audit.command('head <client_id>'))
    .description("print the log's current head, signed by the server, to keep outside the database")
    .addHelpText('after', HEAD_EXIT_CODES)
    .action(run(async (cmd, clientId) => {
      const h = await authedClient(cmd).request<Json>('GET', `/api/apps/${enc(clientId!)}/audit/head`);
      return { json: h, human: `${String(h.head)}\n` };
    }));
}
