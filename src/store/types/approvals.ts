/**
 * Storage for human-in-the-loop approvals and the grants that remember an answer (`store.approvals`).
 * Approvals are opened by the guard check (`GuardStore.recordChecks`); this sub-store decides,
 * expires and lists them. A decision is a compare-and-set on `status = 'pending'` that also checks
 * `expires_at`, so two operators (or two nodes) deciding at once get exactly one winner, and an
 * approval that has expired can no longer be approved.
 */
import type { AuditInput, Grant } from './guard.js';
import type { NewDelivery } from './webhooks.js';

/** Stored states; a `pending` row past `expires_at` is reported as `expired` (see `effectiveStatus`). */
export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';
export type Remember = 'once' | 'session' | 'always';

export interface Approval {
  id: string;
  clientId: string;
  checkId: string;
  ruleId: string | null;
  tool: string;
  scope: string;
  userSub: string | null;
  sessionId: string | null;
  argumentsHash: string;
  reason: string;
  status: ApprovalStatus;
  createdAt: number;
  expiresAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
  comment: string | null;
  remember: Remember | null;
  grantId: string | null;
}

/** Expiry means denied: once `expires_at` has passed, a still-pending row is as good as expired. */
export function effectiveStatus(a: Approval, now: number): ApprovalStatus {
  return a.status === 'pending' && a.expiresAt <= now ? 'expired' : a.status;
}

export interface NewGrant {
  id: string;
  kind: Grant['kind'];
  expiresAt: number | null;
}

export interface DecideInput {
  clientId: string;
  approvalId: string;
  status: 'approved' | 'denied';
  now: number;
  decidedBy: string;
  comment: string | null;
  remember: Remember | null;
  /** Created in the same transaction from the approval's tool, user, session and arguments hash. */
  grant: NewGrant | null;
  /** Appended in the same transaction, only when the decision wins. */
  audit: AuditInput[];
  /** Webhook deliveries of `approval.decided`: written in the same transaction, only when the decision wins. */
  deliveries: readonly NewDelivery[];
}

/** What expiring one approval writes with it: its audit entry and its `approval.expired` webhook deliveries. */
export interface ExpiryEffects {
  audit: AuditInput;
  deliveries: readonly NewDelivery[];
}

export type DecideResult =
  | { ok: true; approval: Approval; grant: Grant | null }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'decided'; approval: Approval };

export interface ApprovalQuery {
  clientId: string;
  /** Effective status at `now`. */
  status?: ApprovalStatus | undefined;
  now: number;
  limit: number;
  /** Keyset cursor: strictly older than this (created_at, id) pair. */
  before?: { createdAt: number; id: string } | undefined;
}

export interface ApprovalStore {
  /** By id alone: the operator API resolves the owning app afterwards. */
  get(approvalId: string): Promise<Approval | null>;
  list(query: ApprovalQuery): Promise<Approval[]>;
  decide(input: DecideInput): Promise<DecideResult>;
  /**
   * Marks up to `limit` pending approvals whose `expires_at` is not after `now` as expired, each
   * with what `effects` gives (written in the same transaction); returns them. Several nodes may
   * sweep at once: each row is expired by exactly one of them.
   */
  expireDue(now: number, limit: number, effects: (a: Approval) => ExpiryEffects): Promise<Approval[]>;
  /** The apps that have a pending approval due at `now` (what a sweep at `now` may expire). */
  appsWithDue(now: number): Promise<string[]>;

  listGrants(clientId: string, options: { includeRevoked: boolean }): Promise<Grant[]>;
  /** Null when the app has no such grant; `changed` false when it was already revoked (no audit then). */
  revokeGrant(input: { clientId: string; grantId: string; now: number; audit: AuditInput }): Promise<{ grant: Grant; changed: boolean } | null>;
}
