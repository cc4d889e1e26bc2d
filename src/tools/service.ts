/**
 * MCP tool pinning: what an MCP proxy reports a server listed, and what operators decide about it.
 *
 * - A report (`POST /panopticon/tools`) answers, per tool, whether its definition is approved (the
 *   proxy shows it and lets calls through to the guard), pending or rejected (hidden and refused).
 *   A new name is pinned at once unless the app makes new tools wait for approval; a definition
 *   that differs from the pin is quarantined. Pins on first sight are audited as one `tool.pin`
 *   entry by the reporting key; each quarantine as `tool.quarantine`, with a `tool.changed` webhook
 *   delivery, all in the report's transaction.
 * - An operator approves a definition (it becomes the pin, `tool.approve`) or rejects it
 *   (`tool.reject`), and sets whether new tools need approval (`tools.settings`).
 */
import type { GuardEvent, GuardEvents } from '../guard/events.js';
import { newId } from '../keys/tokens.js';
import type { AuditInput } from '../store/types/audit.js';
import type { DecideToolResult, NewToolsPolicy, ReportResult, ToolChange, ToolDefinition, ToolRecord } from '../store/types/tools.js';
import type { Store } from '../store/types/store.js';
import { deliveriesTo } from '../webhooks/service.js';
import { canonicalDefinition, definitionHash, type ToolDefinitionInput } from './definition.js';

export interface ToolContext {
  store: Store;
  events: GuardEvents;
  now: () => number;
}

/** How far back the operator's tool list counts calls (traces of the tool). */
export const CALL_COUNT_WINDOW_MS = 30 * 24 * 3600 * 1000;

const changedEvent = (clientId: string, c: ToolChange): Extract<GuardEvent, { type: 'tool.changed' }> => ({
  type: 'tool.changed', clientId, tool: c.definition.name, change: c.kind, definitionId: c.definition.id, hash: c.definition.hash, previousHash: c.pinned?.hash ?? null,
});

export async function reportTools(ctx: ToolContext, clientId: string, keyId: string, tools: readonly ToolDefinitionInput[]): Promise<ReportResult> {
  const now = ctx.now();
  const actor = `pak:${keyId}`;
  const reported = tools.map((t) => {
    const definition = canonicalDefinition(t);
    return { name: t.name, definition, hash: definitionHash(definition) };
  });
  // Read before the transaction (as the other event paths do); the deliveries are built inside it,
  // only for the quarantines the report really made.
  const endpoints = await ctx.store.webhooks.list(clientId);
  const result = await ctx.store.tools.report({
    clientId, now, actor, tools: reported, newId: () => newId('tdf'),
    audit: (e): AuditInput[] => [
      ...(e.pinned.length === 0 ? [] : [{
        clientId, at: now, actor, action: 'tool.pin', target: e.pinned.length === 1 ? e.pinned[0]!.name : null, before: null,
        after: { tools: e.pinned.map((d) => ({ name: d.name, hash: d.hash, definition_id: d.id })) },
      }]),
      ...e.changes.map((c) => ({
        clientId, at: now, actor, action: 'tool.quarantine', target: c.definition.name,
        before: c.pinned === null ? null : { hash: c.pinned.hash, definition_id: c.pinned.id },
        after: { change: c.kind, hash: c.definition.hash, definition_id: c.definition.id },
      })),
    ],
    deliveries: (changes) => changes.flatMap((c) => deliveriesTo(endpoints, changedEvent(clientId, c), now)),
  });
  for (const c of result.changes) ctx.events.publish(changedEvent(clientId, c));
  return result;
}

export async function decideTool(ctx: ToolContext, clientId: string, definitionId: string, status: 'approved' | 'rejected', actor: string): Promise<DecideToolResult> {
  const now = ctx.now();
  return ctx.store.tools.decide({
    clientId, definitionId, status, now, actor,
    audit: (d, pinned) => ({
      clientId, at: now, actor, action: status === 'approved' ? 'tool.approve' : 'tool.reject', target: d.name,
      before: { pinned: pinned === null ? null : { hash: pinned.hash, definition_id: pinned.id } },
      after: status === 'approved' ? { pinned: { hash: d.hash, definition_id: d.id } } : { rejected: { hash: d.hash, definition_id: d.id } },
    }),
  });
}

export async function setNewToolsPolicy(ctx: ToolContext, clientId: string, policy: NewToolsPolicy, actor: string): Promise<NewToolsPolicy> {
  const now = ctx.now();
  await ctx.store.tools.setNewToolsPolicy(clientId, policy, (before) => ({
    clientId, at: now, actor, action: 'tools.settings', target: null, before: { new_tools: before }, after: { new_tools: policy },
  }));
  return policy;
}

export interface ToolView {
  record: ToolRecord;
  /** What the proxy does with the definition the server showed last. */
  status: 'approved' | 'quarantined' | 'rejected';
  pinned: ToolDefinition | null;
  /** Its other definitions still to decide or rejected, newest first. */
  changes: ToolDefinition[];
  calls: number;
}

export async function listTools(ctx: ToolContext, clientId: string): Promise<{ tools: ToolView[]; callsSince: number; newTools: NewToolsPolicy }> {
  const callsSince = ctx.now() - CALL_COUNT_WINDOW_MS;
  const [{ tools, definitions }, counts, newTools] = await Promise.all([
    ctx.store.tools.list(clientId),
    ctx.store.tools.callCounts(clientId, callsSince * 1000),
    ctx.store.tools.newToolsPolicy(clientId),
  ]);
  const byName = new Map<string, ToolDefinition[]>();
  for (const d of definitions) byName.set(d.name, [...(byName.get(d.name) ?? []), d]);
  return {
    callsSince,
    newTools: newTools ?? 'allow',
    tools: tools.map((record) => {
      const defs = byName.get(record.name) ?? [];
      const lastSeen = defs.find((d) => d.id === record.lastSeenId);
      // Not listed: superseded by an approval since the server last showed it, so its next report quarantines it.
      const status = lastSeen?.status === 'approved' ? 'approved' : lastSeen?.status === 'rejected' ? 'rejected' : 'quarantined';
      return {
        record,
        status,
        pinned: defs.find((d) => d.id === record.pinnedId) ?? null,
        changes: defs.filter((d) => d.id !== record.pinnedId).sort((a, b) => b.firstSeenAt - a.firstSeenAt),
        calls: counts.get(record.name) ?? 0,
      };
    }),
  };
}
