/**
 * MCP tool pinning on PostgreSQL. Every change locks the app row first (as check commits and
 * approvals do), so two nodes reporting the same new tool, or a report racing an operator's
 * decision, apply one after the other.
 */
import { appendAuditTx } from './audit.js';
import { insertDeliveriesTx } from './outbox.js';
import { lockApps, type PgDb } from './db.js';
import { CALL_COUNTS_SQL, decisionRefused, definitionValues, LIST_DEFINITIONS_SQL, LIST_TOOLS_SQL, planReport, toolValues, toToolDefinition, toToolRecord, UPSERT_DEFINITION_SQL, DEFINITION_BY_ID_SQL, DEFINITION_SQL, NEW_TOOLS_POLICY_SQL, PIN_TOOL_SQL, SET_NEW_TOOLS_SQL, TOOL_SQL } from '../sql/tools.js';
import type { DecideToolInput, DecideToolResult, NewToolsPolicy, ReportInput, ReportResult, ToolStore } from '../types/tools.js';
import type { AuditInput } from '../types/audit.js';

type Row = Record<string, unknown>;

/** The planner's rows in one statement per table (a first report of a large server pins hundreds of tools). */
const UPSERT_DEFINITIONS_SQL = `
  INSERT INTO tool_definitions (id, client_id, name, hash, definition, status, first_seen_at, last_seen_at, decided_at, decided_by)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[])
  ON CONFLICT (id) DO UPDATE SET status = excluded.status, last_seen_at = excluded.last_seen_at, decided_at = excluded.decided_at, decided_by = excluded.decided_by`;
const UPSERT_TOOLS_SQL = `
  INSERT INTO tools (client_id, name, pinned_id, last_seen_id, first_seen_at, last_seen_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
  ON CONFLICT (client_id, name) DO UPDATE SET pinned_id = excluded.pinned_id, last_seen_id = excluded.last_seen_id, last_seen_at = excluded.last_seen_at`;

function columns(rows: readonly unknown[][], width: number): unknown[][] {
  const cols: unknown[][] = Array.from({ length: width }, () => []);
  for (const r of rows) r.forEach((v, i) => cols[i]!.push(v));
  return cols;
}

export class PostgresToolStore implements ToolStore {
  constructor(private readonly db: PgDb, private readonly outboxLimit: number) {}

  async report(input: ReportInput): Promise<ReportResult> {
    return this.db.tx(async (c) => {
      const app = (await c.query('SELECT new_tools FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [input.clientId])).rows[0] as Row | undefined;
      if (app === undefined) throw new Error(`tools: no app ${input.clientId}`);
      const names = input.tools.map((t) => t.name);
      const existing = ((await c.query('SELECT * FROM tools WHERE client_id = $1 AND name = ANY($2::text[])', [input.clientId, names])).rows as Row[]).map(toToolRecord);
      const known = ((await c.query('SELECT * FROM tool_definitions WHERE client_id = $1 AND name = ANY($2::text[])', [input.clientId, names])).rows as Row[]).map(toToolDefinition);
      const count = Number((await c.query('SELECT count(*) AS n FROM tools WHERE client_id = $1', [input.clientId])).rows[0]!.n);
      const plan = planReport(input, String(app.new_tools) as NewToolsPolicy, count, existing, known);
      if (plan.deleted.length > 0) await c.query('DELETE FROM tool_definitions WHERE id = ANY($1::text[])', [plan.deleted]);
      if (plan.definitions.length > 0) await c.query(UPSERT_DEFINITIONS_SQL, columns(plan.definitions.map(definitionValues), 10));
      if (plan.tools.length > 0) await c.query(UPSERT_TOOLS_SQL, columns(plan.tools.map(toolValues), 6));
      for (const a of input.audit(plan)) await appendAuditTx(c, this.db.auditKey, a);
      await insertDeliveriesTx(c, input.deliveries(plan.changes), this.outboxLimit);
      return { verdicts: plan.verdicts, pinned: plan.pinned, changes: plan.changes };
    });
  }

  async decide(input: DecideToolInput): Promise<DecideToolResult> {
    return this.db.tx(async (c): Promise<DecideToolResult> => {
      await lockApps(c, [input.clientId]);
      const r = (await c.query(DEFINITION_SQL, [input.definitionId, input.clientId])).rows[0] as Row | undefined;
      if (r === undefined) return { ok: false, reason: 'not_found' };
      const definition = toToolDefinition(r);
      if (decisionRefused(definition.status, input.status)) return { ok: false, reason: 'decided', definition };
      const tool = toToolRecord((await c.query(TOOL_SQL, [input.clientId, definition.name])).rows[0] as Row);
      const pinnedRow = tool.pinnedId === null ? undefined : ((await c.query(DEFINITION_BY_ID_SQL, [tool.pinnedId])).rows[0] as Row | undefined);
      const pinned = pinnedRow === undefined ? null : toToolDefinition(pinnedRow);
      const decided = { ...definition, status: input.status, decidedAt: input.now, decidedBy: input.actor };
      await c.query(UPSERT_DEFINITION_SQL, definitionValues(decided));
      if (input.status === 'approved') {
        if (pinned !== null) await c.query(UPSERT_DEFINITION_SQL, definitionValues({ ...pinned, status: 'superseded' }));
        await c.query(PIN_TOOL_SQL, [decided.id, input.clientId, definition.name]);
      }
      await appendAuditTx(c, this.db.auditKey, input.audit(decided, pinned));
      return { ok: true, definition: decided, previous: pinned !== null && input.status === 'approved' ? { ...pinned, status: 'superseded' } : pinned };
    });
  }

  async list(clientId: string) {
    return {
      tools: (await this.db.q(LIST_TOOLS_SQL, [clientId])).map(toToolRecord),
      definitions: (await this.db.q(LIST_DEFINITIONS_SQL, [clientId])).map(toToolDefinition),
    };
  }

  async getDefinition(clientId: string, definitionId: string) {
    const [r] = await this.db.q(DEFINITION_SQL, [definitionId, clientId]);
    return r === undefined ? null : toToolDefinition(r);
  }

  async callCounts(clientId: string, sinceUs: number) {
    const rows = await this.db.q(CALL_COUNTS_SQL, [clientId, sinceUs]);
    return new Map(rows.map((r) => [String(r.tool), Number(r.n)]));
  }

  async newToolsPolicy(clientId: string) {
    const [r] = await this.db.q(NEW_TOOLS_POLICY_SQL, [clientId]);
    return r === undefined ? null : (String(r.new_tools) as NewToolsPolicy);
  }

  async setNewToolsPolicy(clientId: string, policy: NewToolsPolicy, audit: (before: NewToolsPolicy) => AuditInput) {
    return this.db.tx(async (c) => {
      const r = (await c.query('SELECT new_tools FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [clientId])).rows[0] as Row;
      const before = String(r.new_tools) as NewToolsPolicy;
      if (before !== policy) {
        await c.query(SET_NEW_TOOLS_SQL, [policy, clientId]);
        await appendAuditTx(c, this.db.auditKey, audit(before));
      }
      return before;
    });
  }
}
