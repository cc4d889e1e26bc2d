/**
 * Storage for the AI Guard and the audit log, as sub-stores of `Store` (`store.audit`,
 * `store.guard`). Each engine implements them in `sqlite-guard.ts` / `postgres-guard.ts`; the
 * contract suite runs them on both.
 *
 * Governance changes carry an `AuditInput`, appended in the same transaction as the change, so the
 * log cannot miss a change that happened.
 */
import type { NewDelivery } from './webhook-types.js';
import type { ChainEntry } from '../audit/chain.js';

export interface AuditInput {
  clientId: string;
  at: number;
  /** Who: `account:<id>`, `system`, ... */
  actor: string;
  /** What, dotted: `pak.issue`, `policy.rule_add`, `kill.on`, `approval.approve`, ... */
  action: string;
  target: string | null;
  before: unknown;
  after: unknown;
}

export type AuditEntry = ChainEntry;

export interface AuditStore {
  /** Appends a keyed entry (the store holds the chain key it was opened with). */
  append(input: AuditInput): Promise<AuditEntry>;
  /** Entries in seq order, after `afterSeq`, at most `limit`. */
  list(clientId: string, options: { afterSeq?: number | undefined; limit: number; newestFirst?: boolean }): Promise<AuditEntry[]>;
  /** The head hash and count pinned on the app row. */
  pinned(clientId: string): Promise<{ head: string | null; count: number }>;
}

export type Effect = 'allow' | 'deny' | 'require_approval';
export type Decision = Effect;

export interface StoredPolicy {
  clientId: string;
  version: number;
  /** JSON text of the policy document (see src/guard/policy.ts). */
  document: string;
  updatedAt: number;
  updatedBy: string;
}

export interface KillSwitch {
  clientId: string;
  /** `*` for the whole app. */
  tool: string;
  reason: string;
  createdBy: string;
  createdAt: number;
}

/** A remembered approval: the next identical check (tool, user, arguments; same session for `session`) is allowed. */
export interface Grant {
  id: string;
  clientId: string;
  kind: 'session' | 'always';
  tool: string;
  userSub: string | null;
  sessionId: string | null;
  argumentsHash: string;
  approvalId: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  uses: number;
}

export interface NewApproval {
  id: string;
  ruleId: string | null;
  reason: string;
  expiresAt: number;
}

export interface CheckRecord {
  id: string;
  clientId: string;
  createdAt: number;
  tool: string;
  scope: string;
  userSub: string | null;
  sessionId: string | null;
  eventId: string | null;
  argumentsHash: string;
  /** JSON text, only when the app keeps arguments. */
  arguments: string | null;
  decision: Decision;
  reason: string;
  ruleId: string | null;
  policyVersion: number;
  keyId: string;
  grantId: string | null;
  /** Set when the decision asks a human: created in the same transaction (counts as a HITL request). */
  approval: NewApproval | null;
  /**
   * Webhook deliveries of the approval this check opens (`approval.requested`), written in the same
   * transaction: a crash after the commit cannot lose the notification. Absent: none.
   */
  deliveries?: readonly NewDelivery[];
  /** The kill switch blocked it: counts in that day's kill-switch usage. */
  killed: boolean;
}

export interface StoredCheck extends Omit<CheckRecord, 'approval' | 'killed'> {
  approvalId: string | null;
}

export interface GuardStore {
  getPolicy(clientId: string): Promise<StoredPolicy | null>;
  /**
   * Compare-and-set: writes `document` as version `expectedVersion + 1` only if the stored version
   * is still `expectedVersion` (0 = none yet). Null when another change got there first.
   */
  savePolicy(input: { clientId: string; expectedVersion: number; document: string; now: number; actor: string; audit: AuditInput }): Promise<StoredPolicy | null>;

  listKillSwitches(clientId: string): Promise<KillSwitch[]>;
  /** Turns a kill switch on (or updates its reason); returns the previous state. */
  setKillSwitch(input: KillSwitch & { audit: AuditInput; deliveries: readonly NewDelivery[] }): Promise<KillSwitch | null>;
  /** Null when it was not on. */
  removeKillSwitch(input: { clientId: string; tool: string; audit: AuditInput; deliveries: readonly NewDelivery[] }): Promise<KillSwitch | null>;

  /** One durable commit for many decisions: checks, the approvals they open, usage counters. */
  recordChecks(records: readonly CheckRecord[]): Promise<void>;
  getCheck(clientId: string, checkId: string): Promise<StoredCheck | null>;
  /** The app's checks among these ids (a page of traces' check_ids); unknown ids are left out. */
  checksByIds(clientId: string, checkIds: readonly string[]): Promise<StoredCheck[]>;
  recentChecks(clientId: string, sinceMs: number, limit: number): Promise<StoredCheck[]>;

  /** Adds one hit to a fixed window and returns the count including it; old windows are pruned. */
  hitRateCounter(bucket: string, windowStart: number, expiresAt: number): Promise<number>;

  setKeepArguments(clientId: string, keep: boolean, audit: AuditInput): Promise<void>;
  /** What the per-node guard cache needs besides the policy and kill switches; null when the app does not exist. */
  appSettings(clientId: string): Promise<{ keepArguments: boolean } | null>;
  /** Grants neither revoked nor expired at `now`. */
  activeGrants(clientId: string, now: number): Promise<Grant[]>;
}
