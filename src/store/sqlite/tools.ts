/** MCP tool pinning on SQLite. Each change is one immediate transaction, so reports and decisions of an app apply one at a time. */
import type Database from 'better-sqlite3';
import type { AuditKey } from '../../crypto/audit-key.js';
import { numbered } from '../sql/params.js';
import { appendAuditSync } from './audit.js';
import { insertDeliveriesSync } from './outbox.js';
import { CALL_COUNTS_SQL, decisionRefused, definitionValues, LIST_DEFINITIONS_SQL, LIST_TOOLS_SQL, planReport, toolValues, toToolDefinition, toToolRecord, UPSERT_DEFINITION_SQL, UPSERT_TOOL_SQL, DEFINITION_BY_ID_SQL, DEFINITION_SQL, NEW_TOOLS_POLICY_SQL, PIN_TOOL_SQL, SET_NEW_TOOLS_SQL, TOOL_SQL } from '../sql/tools.js';
import type { DecideToolInput, DecideToolResult, NewToolsPolicy, ReportInput, ReportResult, ToolStore } from '../types/tools.js';
import type { AuditInput } from '../types/audit.js';

type Row = Record<string, unknown>;

export class SqliteToolStore implements ToolStore {
  constructor(private readonly db: Database.Database, private readonly key: AuditKey, private readonly outboxLimit: number) {}

  async report(input: ReportInput): Promise<ReportResult> {
    return this.db.transaction(() => {
      const app = this.db.prepare(NEW_TOOLS_POLICY_SQL).get(numbered([input.clientId])) as Row | undefined;
      if (app === undefined) throw new Error(`tools: no app ${input.clientId}`);
      const names = input.tools.map((t) => t.name);
      const inList = names.map(() => '?').join(', ');
      const existing = names.length === 0 ? [] : (this.db.prepare(`SELECT * FROM tools WHERE client_id = ? AND name IN (${inList})`).all(input.clientId, ...names) as Row[]).map(toToolRecord);
      const known = names.length === 0 ? [] : (this.db.prepare(`SELECT * FROM tool_definitions WHERE client_id = ? AND name IN (${inList})`).all(input.clientId, ...names) as Row[]).map(toToolDefinition);
      const count = Number(this.db.prepare('SELECT count(*) FROM tools WHERE client_id = ?').pluck().get(input.clientId));
      const plan = planReport(input, String(app.new_tools) as NewToolsPolicy, count, existing, known);
      const remove = this.db.prepare('DELETE FROM tool_definitions WHERE id = ?');
      for (const id of plan.deleted) remove.run(id);
      const upsertDefinition = this.db.prepare(UPSERT_DEFINITION_SQL);
      for (const d of plan.definitions) upsertDefinition.run(numbered(definitionValues(d)));
      const upsertTool = this.db.prepare(UPSERT_TOOL_SQL);
      for (const t of plan.tools) upsertTool.run(numbered(toolValues(t)));
      for (const a of input.audit(plan)) appendAuditSync(this.db, this.key, a);
      insertDeliveriesSync(this.db, input.deliveries(plan.changes), this.outboxLimit);
      return { verdicts: plan.verdicts, pinned: plan.pinned, changes: plan.changes };
    }).immediate();
  }

  async decide(input: DecideToolInput): Promise<DecideToolResult> {
    return this.db.transaction((): DecideToolResult => {
      const r = this.db.prepare(DEFINITION_SQL).get(numbered([input.definitionId, input.clientId])) as Row | undefined;
      if (r === undefined) return { ok: false, reason: 'not_found' };
      const definition = toToolDefinition(r);
      if (decisionRefused(definition.status, input.status)) return { ok: false, reason: 'decided', definition };
      const tool = toToolRecord(this.db.prepare(TOOL_SQL).get(numbered([input.clientId, definition.name])) as Row);
      const pinnedRow = tool.pinnedId === null ? undefined : (this.db.prepare(DEFINITION_BY_ID_SQL).get(numbered([tool.pinnedId])) as Row | undefined);
      const pinned = pinnedRow === undefined ? null : toToolDefinition(pinnedRow);
      const decided = { ...definition, status: input.status, decidedAt: input.now, decidedBy: input.actor };
      const upsert = this.db.prepare(UPSERT_DEFINITION_SQL);
      upsert.run(numbered(definitionValues(decided)));
      if (input.status === 'approved') {
        if (pinned !== null) upsert.run(numbered(definitionValues({ ...pinned, status: 'superseded' })));
        this.db.prepare(PIN_TOOL_SQL).run(numbered([decided.id, input.clientId, definition.name]));
      }
      appendAuditSync(this.db, this.key, input.audit(decided, pinned));
      return { ok: true, definition: decided, previous: pinned !== null && input.status === 'approved' ? { ...pinned, status: 'superseded' } : pinned };
    }).immediate();
  }

  async list(clientId: string) {
    return {
      tools: (this.db.prepare(LIST_TOOLS_SQL).all(numbered([clientId])) as Row[]).map(toToolRecord),
      definitions: (this.db.prepare(LIST_DEFINITIONS_SQL).all(numbered([clientId])) as Row[]).map(toToolDefinition),
    };
  }

  async getDefinition(clientId: string, definitionId: string) {
    const r = this.db.prepare(DEFINITION_SQL).get(numbered([definitionId, clientId])) as Row | undefined;
    return r === undefined ? null : toToolDefinition(r);
  }

  async callCounts(clientId: string, sinceUs: number) {
    const rows = this.db.prepare(CALL_COUNTS_SQL).all(numbered([clientId, sinceUs])) as Row[];
    return new Map(rows.map((r) => [String(r.tool), Number(r.n)]));
  }

  async newToolsPolicy(clientId: string) {
    const r = this.db.prepare(NEW_TOOLS_POLICY_SQL).get(numbered([clientId])) as Row | undefined;
    return r === undefined ? null : (String(r.new_tools) as NewToolsPolicy);
  }

  async setNewToolsPolicy(clientId: string, policy: NewToolsPolicy, audit: (before: NewToolsPolicy) => AuditInput) {
    return this.db.transaction(() => {
      const before = String(this.db.prepare(NEW_TOOLS_POLICY_SQL).pluck().get(numbered([clientId]))) as NewToolsPolicy;
      if (before !== policy) {
        this.db.prepare(SET_NEW_TOOLS_SQL).run(numbered([policy, clientId]));
        appendAuditSync(this.db, this.key, audit(before));
      }
      return before;
    }).immediate();
  }
}
