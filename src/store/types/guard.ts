/**
 * Storage for the AI Guard, the `store.guard` sub-store (the audit log's is in audit.ts). Each
 * engine implements it in `sqlite/guard.ts` / `postgres/guard.ts`; the contract suite runs it on
 * both.
 *
 * Governance changes carry an `AuditInput`, appended in the same transaction as the change, so the
 * log cannot miss a change that happened.
 */
import type { NewDelivery } from './webhooks.js';
import type { AuditInput } from './audit.js';

export type { AuditEntry, AuditInput, AuditStore } from './audit.js';


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
  /**
   * The app's cap on pending approvals. Decided in the commit's transaction: a pending approval for
   * the same tool, scope, user, session and arguments hash answers this check instead (nothing
   * opened); otherwise, with `maxPending` already pending, the check is recorded as a deny with
   * reason `too_many_pending_approvals` and opens nothing.
   */
  maxPending: number;
}

/** The check's reason when the app's cap on pending approvals refused to open another. */
export const TOO_MANY_PENDING = 'too_many_pending_approvals';

/** What committing one check did (`GuardStore.recordChecks`, one per record, in order). */
export type RecordedCheck =
  /** Written. `approval`: the one it opened (`opened`) or the identical pending one it was answered with. */
  | { kind: 'recorded'; approval: { id: string; expiresAt: number; opened: boolean } | null }
  /** Written as a deny (`too_many_pending_approvals`): the cap was reached. `retryAfterMs`: until the first pending one expires. */
  | { kind: 'refused'; retryAfterMs: number };

export type RecordOutcome =
  | RecordedCheck
  /** An idempotency key of the record already answered this request: nothing written, the stored answer instead. */
  | { kind: 'replayed'; checkId: string; answer: string }
  /** The record's `Idempotency-Key` answered another request (another body): nothing written. */
  | { kind: 'key_reused' };

/** One key a check's answer is stored under: `key:<Idempotency-Key>` or `sig:<digest of the signed request>`. */
export interface IdempotencyKey {
  key: string;
  expiresAt: number;
}

export interface StoredAnswer {
  key: string;
  requestHash: string;
  checkId: string;
  /** The answer as sent (JSON text), opaque to the store. */
  answer: string;
  expiresAt: number;
}

/**
 * Binds a check to its idempotency keys, in the commit's transaction. The first key (in order)
 * that already holds an unexpired answer decides: the same `requestHash` is a replay (answered,
 * and the record's other keys bound to the same answer), another hash is `key_reused`. Otherwise
 * the check is written and `answer` (called once, with what was written) is stored under every key.
 */
export interface IdempotencyClaim {
  keys: readonly IdempotencyKey[];
  requestHash: string;
  answer: (outcome: RecordedCheck) => string;
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
  /** The request's idempotency keys (Idempotency-Key, signature); absent: none. */
  idempotency?: IdempotencyClaim | null;
}

export interface StoredCheck extends Omit<CheckRecord, 'approval' | 'killed' | 'deliveries' | 'idempotency'> {
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

  /**
   * One durable commit for many decisions: checks, the approvals they open (or the pending ones they
   * are answered with, under each app's cap), usage counters, webhook deliveries, idempotency keys.
   * Atomic per app across nodes: two commits deciding the same app's cap or keys run one after the
   * other. One outcome per record, in order.
   */
  recordChecks(records: readonly CheckRecord[]): Promise<RecordOutcome[]>;
  /** Unexpired stored answers of these keys of the app. */
  findAnswers(clientId: string, keys: readonly string[], now: number): Promise<StoredAnswer[]>;
  /** Stores `answer` under the keys that hold no unexpired answer yet (a replay's new keys); the others are left alone. */
  bindAnswers(clientId: string, keys: readonly IdempotencyKey[], answer: Omit<StoredAnswer, 'key' | 'expiresAt'>, now: number): Promise<void>;
  /** Deletes up to `limit` answers expired at `now`; returns how many. */
  deleteExpiredAnswers(now: number, limit: number): Promise<number>;
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
