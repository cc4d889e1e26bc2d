/**
 * Human-in-the-loop decisions: the agent's long poll, the operator's approve / deny (optionally
 * remembered as a grant), the expiry sweeper, and grant revocation.
 *
 * Cross-node: a decision or expiry publishes the store signal `approval_decided`, so a long poll
 * waiting on another node re-reads at once; a grant change publishes `guard_changed`, so every
 * node's guard cache reloads its grants.
 */
import type { GuardEvent, GuardEvents } from '../guard/events.js';
import { newId } from '../keys/tokens.js';
import { effectiveStatus, type Approval, type Remember } from '../store/types/approvals.js';
import type { AuditInput, Grant } from '../store/types/guard.js';
import type { Store } from '../store/types/store.js';
import type { WebhookEndpoint } from '../store/types/webhooks.js';
import { deliveriesTo, webhookDeliveries } from '../webhooks/service.js';

export const MAX_WAIT_SECONDS = 30;
export const MAX_REMEMBER_SECONDS = 365 * 24 * 3600;
/** How often a long poll re-reads its approval while this node cannot hear other nodes' decisions. */
const DEAF_POLL_MS = 200;

export interface HitlSettings {
  /** How often this node looks for pending approvals past their expiry. */
  sweepIntervalMs: number;
  sweepBatch: number;
}

export const DEFAULT_HITL_SETTINGS: HitlSettings = { sweepIntervalMs: 5_000, sweepBatch: 500 };

export interface DecisionRequest {
  approval: Approval;
  status: 'approved' | 'denied';
  actor: string;
  comment: string | null;
  remember: Remember | null;
  rememberForSeconds: number | null;
}

export type DecisionResult =
  | { ok: true; approval: Approval; grant: Grant | null }
  | { ok: false; code: 'approval_decided'; approval: Approval }
  | { ok: false; code: 'approval_not_found' }
  | { ok: false; code: 'validation_failed'; fields: Array<{ field: string; message: string }> };

export class ApprovalService {
  /** Long polls of this node, by approval id: each entry wakes one waiting request. */
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly unsubscribe: () => void;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private sweepQueue: Promise<void> = Promise.resolve();
  private closed = false;
  /** Decisions made on other nodes are not signalled now: long polls re-read on a short period instead. */
  private deaf = false;

  constructor(
    private readonly store: Store,
    private readonly events: GuardEvents,
    private readonly now: () => number,
    private readonly settings: HitlSettings,
    private readonly onError: (err: unknown) => void,
  ) {
    this.unsubscribe = store.subscribe((signal) => {
      if (signal.kind === 'signals_lost' || signal.kind === 'signals_restored') this.deaf = signal.kind === 'signals_lost';
      if (signal.kind !== 'approval_decided') return;
      if (signal.clientId === '*') for (const id of this.waiting.keys()) this.wake(id);
      else this.wake(signal.approvalId);
    });
  }

  private wake(approvalId: string): void {
    for (const w of this.waiting.get(approvalId) ?? []) w();
  }

  /**
   * The approval as the owning app sees it, after waiting up to `waitMs` for it to stop being
   * pending (decided on any node, or expired). Null when the app has no such approval.
   */
  async poll(clientId: string, approvalId: string, waitMs: number, aborted: () => boolean): Promise<Approval | null> {
    const deadline = Date.now() + waitMs;
    let signalled = false;
    let notify: (() => void) | undefined;
    const waiter = () => {
      signalled = true;
      notify?.();
    };
    // Registered before the first read, so a decision landing between the read and the wait still wakes us.
    let set = this.waiting.get(approvalId);
    if (set === undefined) this.waiting.set(approvalId, (set = new Set()));
    set.add(waiter);
    try {
      for (;;) {
        signalled = false;
        const approval = await this.store.approvals.get(approvalId);
        if (approval === null || approval.clientId !== clientId) return null;
        const now = this.now();
        const remaining = deadline - Date.now();
        if (effectiveStatus(approval, now) !== 'pending' || remaining <= 0 || this.closed || aborted()) return approval;
        if (signalled) continue;
        // Wake at the deadline, or just after the expiry so the re-read reports `expired`.
        const delay = Math.max(1, Math.min(remaining, approval.expiresAt - now + 1, this.deaf ? DEAF_POLL_MS : Infinity));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          notify = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        notify = undefined;
      }
    } finally {
      set.delete(waiter);
      if (set.size === 0 && this.waiting.get(approvalId) === set) this.waiting.delete(approvalId);
    }
  }

  async decide(req: DecisionRequest): Promise<DecisionResult> {
    const { approval } = req;
    const fields = decisionProblems(req);
    if (fields.length > 0) return { ok: false, code: 'validation_failed', fields };
    const now = this.now();
    const grant =
      req.status === 'approved' && (req.remember === 'session' || req.remember === 'always')
        ? { id: newId('grt'), kind: req.remember, expiresAt: req.rememberForSeconds === null ? null : now + req.rememberForSeconds * 1000 }
        : null;
    const audit: AuditInput[] = [{
      clientId: approval.clientId, at: now, actor: req.actor, action: req.status === 'approved' ? 'approval.approve' : 'approval.deny', target: approval.id,
      before: { status: 'pending' }, after: { status: req.status, comment: req.comment, remember: req.remember, grant_id: grant?.id ?? null },
    }];
    if (grant !== null) {
      audit.push({
        clientId: approval.clientId, at: now, actor: req.actor, action: 'grant.create', target: grant.id, before: null,
        after: {
          kind: grant.kind, tool: approval.tool, user_sub: approval.userSub, session_id: grant.kind === 'session' ? approval.sessionId : null,
          arguments_hash: approval.argumentsHash, approval_id: approval.id, expires_at: grant.expiresAt,
        },
      });
    }
    const event: GuardEvent = { type: 'approval.decided', clientId: approval.clientId, approvalId: approval.id, status: req.status, decidedBy: req.actor, comment: req.comment };
    const result = await this.store.approvals.decide({
      clientId: approval.clientId, approvalId: approval.id, status: req.status, now, decidedBy: req.actor,
      comment: req.comment, remember: req.status === 'approved' ? (req.remember ?? 'once') : null, grant, audit,
      deliveries: await webhookDeliveries(this.store, event, now),
    });
    if (!result.ok) return result.reason === 'not_found' ? { ok: false, code: 'approval_not_found' } : { ok: false, code: 'approval_decided', approval: result.approval };
    await this.store.publish({ kind: 'approval_decided', clientId: approval.clientId, approvalId: approval.id });
    if (result.grant !== null) await this.store.publish({ kind: 'guard_changed', clientId: approval.clientId });
    this.events.publish(event);
    return { ok: true, approval: result.approval, grant: result.grant };
  }

  async revokeGrant(clientId: string, grantId: string, actor: string): Promise<Grant | null> {
    const now = this.now();
    const result = await this.store.approvals.revokeGrant({
      clientId, grantId, now, audit: { clientId, at: now, actor, action: 'grant.revoke', target: grantId, before: { revoked_at: null }, after: { revoked_at: now } },
    });
    if (result === null) return null;
    if (result.changed) await this.store.publish({ kind: 'guard_changed', clientId });
    return result.grant;
  }

  /** Expires what is due now; several nodes may run this at once (each row expires once). */
  /**
   * Expires every due approval. Sweeps of one node run one after another: an overlapping sweep
   * would skip the rows the other holds (SKIP LOCKED, meant for other nodes) and return before
   * their expiry committed.
   */
  sweep(): Promise<Approval[]> {
    const run = this.sweepQueue.then(() => this.sweepDue());
    this.sweepQueue = run.then(() => undefined, () => undefined);
    return run;
  }

  private async sweepDue(): Promise<Approval[]> {
    const all: Approval[] = [];
    for (;;) {
      const now = this.now();
      // The expiry's webhook deliveries commit with it, and the transaction cannot wait on a query:
      // read first the endpoints of every app this sweep may touch (no approval can become due at
      // `now` after this read, since a new one expires after it was created).
      const due = await this.store.approvals.appsWithDue(now);
      // Nothing due: no write transaction, which is what nearly every sweep of an idle install finds.
      if (due.length === 0) return all;
      const endpoints = new Map<string, WebhookEndpoint[]>();
      for (const clientId of due) endpoints.set(clientId, await this.store.webhooks.list(clientId));
      const expiredEvent = (a: Approval): GuardEvent => ({ type: 'approval.expired', clientId: a.clientId, approvalId: a.id });
      const expired = await this.store.approvals.expireDue(now, this.settings.sweepBatch, (a) => ({
        audit: { clientId: a.clientId, at: now, actor: 'system', action: 'approval.expire', target: a.id, before: { status: 'pending' }, after: { status: 'expired' } },
        deliveries: deliveriesTo(endpoints.get(a.clientId) ?? [], expiredEvent(a), now),
      }));
      for (const a of expired) {
        await this.store.publish({ kind: 'approval_decided', clientId: a.clientId, approvalId: a.id });
        this.events.publish(expiredEvent(a));
      }
      all.push(...expired);
      if (expired.length < this.settings.sweepBatch || this.closed) return all;
    }
  }

  start(): void {
    this.sweeper = setInterval(() => {
      if (this.sweeping !== undefined) return;
      this.sweeping = this.sweep()
        .then(() => undefined, this.onError)
        .finally(() => (this.sweeping = undefined));
    }, this.settings.sweepIntervalMs);
    this.sweeper.unref();
  }

  /** Stops the sweeper and answers every waiting long poll with the current state. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const id of this.waiting.keys()) this.wake(id);
    this.unsubscribe();
    await this.sweeping;
  }
}

function decisionProblems(req: DecisionRequest): Array<{ field: string; message: string }> {
  const problems: Array<{ field: string; message: string }> = [];
  if (req.status === 'denied' && req.remember !== null) problems.push({ field: 'remember', message: 'applies only to approve' });
  if (req.remember === 'session' && req.approval.sessionId === null) {
    problems.push({ field: 'remember', message: 'session needs a request that carried a session_id; use once or always' });
  }
  if (req.rememberForSeconds !== null && req.remember !== 'session' && req.remember !== 'always') {
    problems.push({ field: 'remember_for_seconds', message: 'applies only with remember session or always' });
  }
  return problems;
}
