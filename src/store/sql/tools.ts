/**
 * SQL, row mapping and the report planner the tool sub-stores of both engines share. The planner
 * is pure: given the rows the report's transaction read, it decides every verdict and write, so
 * both engines pin, quarantine and cap the same way.
 */
import { type Row, num, numOrNull, strOrNull } from './row.js';
import { slots } from './params.js';
import {
  MAX_PENDING_PER_TOOL, MAX_TOOLS_PER_APP,
  type DefinitionStatus, type NewToolsPolicy, type ReportInput, type ReportResult, type ToolChange, type ToolDefinition, type ToolRecord, type ToolVerdict,
} from '../types/tools.js';

export const toToolRecord = (r: Row): ToolRecord => ({
  clientId: String(r.client_id),
  name: String(r.name),
  pinnedId: strOrNull(r.pinned_id),
  lastSeenId: String(r.last_seen_id),
  firstSeenAt: num(r.first_seen_at),
  lastSeenAt: num(r.last_seen_at),
});

export const toToolDefinition = (r: Row): ToolDefinition => ({
  id: String(r.id),
  clientId: String(r.client_id),
  name: String(r.name),
  hash: String(r.hash),
  definition: String(r.definition),
  status: String(r.status) as DefinitionStatus,
  firstSeenAt: num(r.first_seen_at),
  lastSeenAt: num(r.last_seen_at),
  decidedAt: numOrNull(r.decided_at),
  decidedBy: strOrNull(r.decided_by),
});

export const UPSERT_TOOL_SQL =
  `INSERT INTO tools (client_id, name, pinned_id, last_seen_id, first_seen_at, last_seen_at) VALUES (${slots(6)})
   ON CONFLICT (client_id, name) DO UPDATE SET pinned_id = excluded.pinned_id, last_seen_id = excluded.last_seen_id, last_seen_at = excluded.last_seen_at`;

export const toolValues = (t: ToolRecord): unknown[] => [t.clientId, t.name, t.pinnedId, t.lastSeenId, t.firstSeenAt, t.lastSeenAt];

export const UPSERT_DEFINITION_SQL =
  `INSERT INTO tool_definitions (id, client_id, name, hash, definition, status, first_seen_at, last_seen_at, decided_at, decided_by)
   VALUES (${slots(10)})
   ON CONFLICT (id) DO UPDATE SET status = excluded.status, last_seen_at = excluded.last_seen_at,
     decided_at = excluded.decided_at, decided_by = excluded.decided_by`;

export const definitionValues = (d: ToolDefinition): unknown[] =>
  [d.id, d.clientId, d.name, d.hash, d.definition, d.status, d.firstSeenAt, d.lastSeenAt, d.decidedAt, d.decidedBy];

export const CALL_COUNTS_SQL =
  `SELECT tool, count(*) AS n FROM traces WHERE client_id = $1 AND started_at_us >= $2 GROUP BY tool`;

export const LIST_TOOLS_SQL = `SELECT * FROM tools WHERE client_id = $1 ORDER BY name`;
export const LIST_DEFINITIONS_SQL =
  `SELECT * FROM tool_definitions WHERE client_id = $1 AND status <> 'superseded' ORDER BY name, first_seen_at, id`;

/** What one report writes, and answers. */
export interface ReportPlan extends ReportResult {
  tools: ToolRecord[];
  definitions: ToolDefinition[];
  /** Pending definitions pushed out by MAX_PENDING_PER_TOOL. */
  deleted: string[];
}

/**
 * Decides a report from what its transaction read: the app's policy for new tools, its number of
 * tools, the reported names' tool rows and all their definitions.
 */
export function planReport(
  input: Pick<ReportInput, 'clientId' | 'now' | 'actor' | 'tools' | 'newId'>,
  policy: NewToolsPolicy,
  toolCount: number,
  existing: readonly ToolRecord[],
  known: readonly ToolDefinition[],
): ReportPlan {
  const { clientId, now } = input;
  const toolsByName = new Map(existing.map((t) => [t.name, t]));
  const plan: ReportPlan = { verdicts: [], pinned: [], changes: [], tools: [], definitions: [], deleted: [] };
  let count = toolCount;
  const fresh = (name: string, hash: string, definition: string, status: DefinitionStatus): ToolDefinition => ({
    id: input.newId(), clientId, name, hash, definition, status, firstSeenAt: now, lastSeenAt: now,
    decidedAt: status === 'approved' ? now : null, decidedBy: status === 'approved' ? input.actor : null,
  });
  const verdict = (d: ToolDefinition, pinned: ToolDefinition | null): ToolVerdict => ({
    name: d.name, hash: d.hash, definitionId: d.id, status: d.status === 'approved' ? 'approved' : d.status === 'rejected' ? 'rejected' : 'pending',
    pinnedHash: pinned?.hash ?? null,
  });

  for (const t of input.tools) {
    const tool = toolsByName.get(t.name);
    const definitions = known.filter((d) => d.name === t.name);
    if (tool === undefined) {
      if (count >= MAX_TOOLS_PER_APP) {
        plan.verdicts.push({ name: t.name, hash: t.hash, status: 'pending', definitionId: null, pinnedHash: null });
        continue;
      }
      count++;
      const d = fresh(t.name, t.hash, t.definition, policy === 'allow' ? 'approved' : 'pending');
      plan.definitions.push(d);
      plan.tools.push({ clientId, name: t.name, pinnedId: d.status === 'approved' ? d.id : null, lastSeenId: d.id, firstSeenAt: now, lastSeenAt: now });
      if (d.status === 'approved') plan.pinned.push(d);
      else plan.changes.push({ kind: 'new', definition: d, pinned: null });
      plan.verdicts.push(verdict(d, d.status === 'approved' ? d : null));
      continue;
    }
    const pinned = tool.pinnedId === null ? null : (definitions.find((d) => d.id === tool.pinnedId) ?? null);
    const seen = definitions.find((d) => d.hash === t.hash);
    let d: ToolDefinition;
    let change: ToolChange | null = null;
    if (seen === undefined) {
      d = fresh(t.name, t.hash, t.definition, 'pending');
      change = { kind: pinned === null ? 'new' : 'changed', definition: d, pinned };
    } else if (seen.status === 'superseded') {
      // A definition approved once and replaced since: showing it again is a change like any other.
      d = { ...seen, status: 'pending', lastSeenAt: now, decidedAt: null, decidedBy: null };
      change = { kind: 'changed', definition: d, pinned };
    } else {
      d = { ...seen, lastSeenAt: now };
    }
    if (change !== null) {
      plan.changes.push(change);
      const waiting = definitions.filter((x) => x.status === 'pending' && x.id !== d.id).sort((a, b) => a.firstSeenAt - b.firstSeenAt || (a.id < b.id ? -1 : 1));
      const over = waiting.length + 1 - MAX_PENDING_PER_TOOL;
      if (over > 0) plan.deleted.push(...waiting.slice(0, over).map((x) => x.id));
    }
    plan.definitions.push(d);
    plan.tools.push({ ...tool, lastSeenId: d.id, lastSeenAt: now });
    plan.verdicts.push(verdict(d, pinned));
  }
  return plan;
}

/** True when the decision cannot apply to a definition in this status (it was decided already). */
export function decisionRefused(status: DefinitionStatus, decision: 'approved' | 'rejected'): boolean {
  return decision === 'approved' ? status !== 'pending' && status !== 'rejected' : status !== 'pending';
}

export const DEFINITION_BY_ID_SQL = 'SELECT * FROM tool_definitions WHERE id = $1';
export const DEFINITION_SQL = 'SELECT * FROM tool_definitions WHERE id = $1 AND client_id = $2';
export const NEW_TOOLS_POLICY_SQL = 'SELECT new_tools FROM apps WHERE client_id = $1';
export const PIN_TOOL_SQL = 'UPDATE tools SET pinned_id = $1 WHERE client_id = $2 AND name = $3';
export const SET_NEW_TOOLS_SQL = 'UPDATE apps SET new_tools = $1 WHERE client_id = $2';
export const TOOL_SQL = 'SELECT * FROM tools WHERE client_id = $1 AND name = $2';
