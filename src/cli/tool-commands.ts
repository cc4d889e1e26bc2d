/** `logi panopticon tools …`: the MCP tools an application's proxies reported, and their pinned definitions. */
import { Option, type Command } from 'commander';
import type { ApiClient } from './client.js';
import { authedClient, enc, run, UsageError, withJson, type Json } from './common.js';
import { lineDiff, table } from './format.js';

interface Definition {
  id: string;
  hash: string;
  status: string;
  definition: Record<string, unknown>;
  first_seen_at: string;
}

interface Tool {
  name: string;
  status: string;
  pinned: Definition | null;
  changes: Definition[];
  first_seen_at: string;
  last_seen_at: string;
  calls: number;
}

interface ToolList {
  client_id: string;
  new_tools: string;
  calls_since: string;
  tools: Tool[];
}

const columns: Array<[string, string]> = [
  ['name', 'tool'], ['status', 'status'], ['pinned', 'pinned hash'], ['pending', 'pending'], ['calls', 'calls (30d)'], ['first_seen_at', 'first seen'], ['last_seen_at', 'last seen'],
];

/** The definition pretty-printed, one field per block, for a line diff a reviewer can read. */
const pretty = (d: Definition | null): string[] => (d === null ? [] : JSON.stringify(d.definition, null, 2).split('\n'));

function changeReport(clientId: string, tool: Tool): string {
  return tool.changes.map((c) => {
    const diff = lineDiff(pretty(tool.pinned), pretty(c)).map((l) => `    ${l}`).join('\n');
    return `${tool.name}: ${c.status} definition ${c.id} (hash ${c.hash.slice(0, 12)}, first seen ${c.first_seen_at})` +
      `${tool.pinned === null ? ', a new tool' : `, pinned ${tool.pinned.hash.slice(0, 12)}`}:\n${diff}\n` +
      (c.status === 'pending' ? `  approve: logi panopticon tools approve ${clientId} ${c.id}\n  reject:  logi panopticon tools reject ${clientId} ${c.id}\n` : '');
  }).join('\n');
}

/** A definition id as given, or the one pending definition of the named tool. */
async function resolveDefinition(api: ApiClient, clientId: string, target: string, decision: 'approve' | 'reject'): Promise<string> {
  if (/^tdf_[A-Za-z0-9]+$/.test(target)) return target;
  const list = await api.request<ToolList>('GET', `/api/apps/${enc(clientId)}/tools`);
  const tool = list.tools.find((t) => t.name === target);
  if (tool === undefined) throw new UsageError(`no tool named "${target}" in ${clientId} (see logi panopticon tools list ${clientId})`);
  const candidates = tool.changes.filter((c) => c.status === 'pending' || (decision === 'approve' && c.status === 'rejected'));
  const pending = candidates.filter((c) => c.status === 'pending');
  const chosen = pending.length > 0 ? pending : candidates;
  if (chosen.length === 1) return chosen[0]!.id;
  if (chosen.length === 0) throw new UsageError(`tool "${target}" has no definition to ${decision}`);
  throw new UsageError(`tool "${target}" has ${chosen.length} definitions to decide (${chosen.map((c) => c.id).join(', ')}): name one by id`);
}

export function registerToolCommands(pano: Command): void {
  const tools = pano.command('tools').description('MCP tools seen by the proxy: pinned definitions, quarantined changes, approve, reject');

  withJson(tools.command('list <client_id>'))
    .description('every tool the application\'s MCP proxies reported, with each quarantined change as a diff against the pinned definition')
    .action(run(async (cmd, clientId) => {
      const res = await authedClient(cmd).request<ToolList>('GET', `/api/apps/${enc(clientId!)}/tools`);
      const rows = res.tools.map((t) => ({
        name: t.name, status: t.status, pinned: t.pinned?.hash.slice(0, 12) ?? null, pending: t.changes.filter((c) => c.status === 'pending').length,
        calls: t.calls, first_seen_at: t.first_seen_at, last_seen_at: t.last_seen_at,
      }));
      const changes = res.tools.filter((t) => t.changes.length > 0).map((t) => changeReport(clientId!, t)).join('\n');
      return { json: res, human: `New tools: ${res.new_tools === 'allow' ? 'pinned when first seen' : 'need approval'}\n` + table(rows, columns) + (changes === '' ? '' : `\n${changes}`) };
    }));

  for (const decision of ['approve', 'reject'] as const) {
    withJson(tools.command(`${decision} <client_id> <definition>`))
      .description(decision === 'approve'
        ? 'approve a definition (a tdf_… id, or a tool name with one pending definition): it becomes the pinned one, shown and callable'
        : 'reject a quarantined definition (a tdf_… id, or a tool name with one pending definition): it stays hidden and refused')
      .action(run(async (cmd, clientId, target) => {
        const api = authedClient(cmd);
        const id = await resolveDefinition(api, clientId!, target!, decision);
        const res = await api.request<{ tool: string; definition: Definition; previous: Definition | null }>('POST', `/api/apps/${enc(clientId!)}/tools/definitions/${enc(id)}/${decision}`);
        const human = decision === 'approve'
          ? `Approved ${res.tool} definition ${res.definition.id} (hash ${res.definition.hash}); it is the pinned definition now${res.previous === null ? '' : ` (was ${res.previous.hash.slice(0, 12)})`}.\n`
          : `Rejected ${res.tool} definition ${res.definition.id} (hash ${res.definition.hash}); it stays hidden and refused${res.previous === null ? '' : `, the pinned ${res.previous.hash.slice(0, 12)} is kept`}.\n`;
        return { json: res, human };
      }));
  }

  withJson(tools.command('settings <client_id>'))
    .description('whether a tool not seen before is pinned when first seen, or hidden until approved')
    .addOption(new Option('--new-tools <policy>', 'allow (pin when first seen) or require_approval').choices(['allow', 'require_approval']).makeOptionMandatory())
    .action(run(async (cmd, clientId) => {
      const res = await authedClient(cmd).request<Json>('PUT', `/api/apps/${enc(clientId!)}/tools/settings`, { new_tools: cmd.opts<{ newTools: string }>().newTools });
      return { json: res, human: `New tools in ${clientId}: ${res.new_tools === 'allow' ? 'pinned when first seen' : 'hidden and refused until approved'}.\n` };
    }));
}
