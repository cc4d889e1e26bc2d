/**
 * Storage for MCP tool pinning (`store.tools`): every tool an application's MCP server listed, the
 * definitions it was seen with, and which one is pinned (trusted). Each engine implements it in
 * `sqlite/tools.ts` / `postgres/tools.ts`; `tools.contract.test.ts` runs one suite on both.
 *
 * A definition is identified by (app, tool name, hash of its canonical JSON). The first definition
 * of a new name is pinned at once, or waits for an operator when the app says new tools need
 * approval; a later, different definition of a pinned name is quarantined (`pending`) until an
 * operator approves it (it becomes the pin; the old pin is `superseded`) or rejects it. Every change
 * carries its audit entries, and the quarantines their webhook deliveries, in the same transaction.
 */
import type { AuditInput } from './audit.js';
import type { NewDelivery } from './webhooks.js';

export type DefinitionStatus = 'pending' | 'approved' | 'rejected' | 'superseded';

/** What the first definition of a tool name gets: pinned at once, or quarantined until approved. */
export type NewToolsPolicy = 'allow' | 'require_approval';

/** Tool names one application keeps; a report naming more new ones is answered `pending`, unstored. */
export const MAX_TOOLS_PER_APP = 1000;
/** Undecided definitions one tool keeps; past it the oldest are dropped (the newest is what the server shows now). */
export const MAX_PENDING_PER_TOOL = 10;

export interface ToolRecord {
  clientId: string;
  name: string;
  /** The approved definition calls may use; null while a new tool waits for its first approval. */
  pinnedId: string | null;
  /** The definition the last report showed. */
  lastSeenId: string;
  firstSeenAt: number;
  lastSeenAt: number;
}

export interface ToolDefinition {
  id: string;
  clientId: string;
  name: string;
  /** Hex SHA-256 of `definition`. */
  hash: string;
  /** Canonical JSON of the definition (src/tools/definition.ts). */
  definition: string;
  status: DefinitionStatus;
  firstSeenAt: number;
  lastSeenAt: number;
  decidedAt: number | null;
  /** `account:<id>` of the operator, or `pak:<key id>` for a definition pinned on first sight. */
  decidedBy: string | null;
}

/** One tool of a report: its name, and its definition as canonical JSON with that JSON's hash. */
export interface ReportedTool {
  name: string;
  hash: string;
  definition: string;
}

/**
 * What a reported definition may do: `approved` (the pin: shown and callable), `pending` (new or
 * changed, waiting for an operator), `rejected`. `definitionId` is null only for a new name over
 * MAX_TOOLS_PER_APP, which is not stored.
 */
export interface ToolVerdict {
  name: string;
  hash: string;
  status: 'approved' | 'pending' | 'rejected';
  definitionId: string | null;
  /** The tool's pinned definition (the reported one when approved); null for a tool never approved. */
  pinnedHash: string | null;
}

/** A definition this report quarantined: a tool not seen before (`new`), or another definition of a known one. */
export interface ToolChange {
  kind: 'new' | 'changed';
  definition: ToolDefinition;
  /** The pinned definition it would replace; null for a tool never approved. */
  pinned: ToolDefinition | null;
}

export interface ReportEffects {
  /** Definitions pinned on first sight (the app lets new tools in). */
  pinned: ToolDefinition[];
  changes: ToolChange[];
}

export interface ReportInput {
  clientId: string;
  now: number;
  /** Who reported (`pak:<key id>`): the pins on first sight are decided by it. */
  actor: string;
  /** Distinct names (the route refuses duplicates). */
  tools: readonly ReportedTool[];
  newId: () => string;
  /** The audit entries of what the report changed, built in its transaction. */
  audit: (effects: ReportEffects) => AuditInput[];
  /** The webhook deliveries (`tool.changed`) of its quarantines, written in the same transaction. */
  deliveries: (changes: readonly ToolChange[]) => NewDelivery[];
}

export interface ReportResult extends ReportEffects {
  /** One per reported tool, in order. */
  verdicts: ToolVerdict[];
}

export interface DecideToolInput {
  clientId: string;
  definitionId: string;
  status: 'approved' | 'rejected';
  now: number;
  actor: string;
  /** Built from the definition decided and the pin it replaces (approve) or keeps (reject). */
  audit: (definition: ToolDefinition, pinned: ToolDefinition | null) => AuditInput;
}

export type DecideToolResult =
  /** `previous`: the pin before, as it is now (superseded by an approval; still the pin after a rejection). */
  | { ok: true; definition: ToolDefinition; previous: ToolDefinition | null }
  | { ok: false; reason: 'not_found' }
  /** Only `pending` and `rejected` definitions can be approved, only `pending` ones rejected. */
  | { ok: false; reason: 'decided'; definition: ToolDefinition };

export interface ToolStore {
  /**
   * Records what an MCP server listed and answers, per tool, what the proxy may do with it. Atomic
   * per app across nodes (two reports of a new tool pin it once). Reporting the same list again
   * changes nothing but the last-seen times.
   */
  report(input: ReportInput): Promise<ReportResult>;
  /** Approves (pins) or rejects a definition of the app. */
  decide(input: DecideToolInput): Promise<DecideToolResult>;
  /** Every tool of the app by name, and its definitions that are pinned, pending or rejected (not superseded). */
  list(clientId: string): Promise<{ tools: ToolRecord[]; definitions: ToolDefinition[] }>;
  getDefinition(clientId: string, definitionId: string): Promise<ToolDefinition | null>;
  /** Traces per tool name of the app started at or after `sinceUs`. */
  callCounts(clientId: string, sinceUs: number): Promise<Map<string, number>>;
  /** Null when the app does not exist. */
  newToolsPolicy(clientId: string): Promise<NewToolsPolicy | null>;
  /** Sets the policy with its audit entry; returns the previous one (nothing written when unchanged). */
  setNewToolsPolicy(clientId: string, policy: NewToolsPolicy, audit: (before: NewToolsPolicy) => AuditInput): Promise<NewToolsPolicy>;
}
