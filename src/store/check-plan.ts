/**
 * What a group commit of guard checks writes, decided inside its transaction by both engines
 * alike: the engine reads the apps' pending approvals and stored answers under its lock (SQLite:
 * the immediate transaction; PostgreSQL: the app rows), `planChecks` decides in memory, in record
 * order, and the engine writes the plan. Records earlier in the batch count for later ones, so a
 * batch holding many identical checks opens one approval, and a batch of a flood stops at the cap.
 *
 * Per record, in this order:
 *   1. Idempotency keys: the first key holding an unexpired answer decides. The same request hash
 *      is a replay (nothing written; the record's other keys are bound to that answer), another
 *      hash is `key_reused` (nothing written).
 *   2. An approval to open: an unexpired pending approval of the same app, tool, scope, user,
 *      session and arguments hash answers it instead (the check is written pointing at it; nothing
 *      opened, no delivery, no HITL count). Else, with `maxPending` unexpired pending approvals,
 *      the check is written as a deny (`too_many_pending_approvals`) and opens nothing.
 *   3. The answer is stored under every key of the record.
 */
import {
  TOO_MANY_PENDING, type CheckRecord, type RecordedCheck, type RecordOutcome, type StoredAnswer,
} from './types/guard.js';
import type { NewDelivery } from './types/webhooks.js';

/** A pending approval as the plan needs it. */
export interface PendingApproval {
  id: string;
  clientId: string;
  tool: string;
  scope: string;
  userSub: string | null;
  sessionId: string | null;
  argumentsHash: string;
  createdAt: number;
  expiresAt: number;
}

/** One guard_checks row to write, with what comes with it. */
export interface CheckWrite {
  record: CheckRecord;
  /** The approval the check names: the one it opens, or the pending one it was answered with. */
  approvalId: string | null;
  /** It opens `record.approval`: insert it, its deliveries, and count a HITL request. */
  opens: boolean;
}

export interface AnswerRow extends StoredAnswer {
  clientId: string;
  createdAt: number;
}

export interface CheckPlan {
  outcomes: RecordOutcome[];
  writes: CheckWrite[];
  answers: AnswerRow[];
  deliveries: NewDelivery[];
}

/** Apps whose state the plan reads, and so must be locked first: those opening approvals or carrying keys. */
export function appsToLock(records: readonly CheckRecord[]): string[] {
  const apps = new Set<string>();
  for (const r of records) if (r.approval !== null || (r.idempotency?.keys.length ?? 0) > 0) apps.add(r.clientId);
  return [...apps].sort();
}

/** The keys the plan must look up, per app. */
export function keysByApp(records: readonly CheckRecord[]): Map<string, string[]> {
  const byApp = new Map<string, Set<string>>();
  for (const r of records) {
    for (const k of r.idempotency?.keys ?? []) {
      let set = byApp.get(r.clientId);
      if (set === undefined) byApp.set(r.clientId, (set = new Set()));
      set.add(k.key);
    }
  }
  return new Map([...byApp].map(([app, keys]) => [app, [...keys]]));
}

/** Apps whose pending approvals the plan needs. */
export function appsOpening(records: readonly CheckRecord[]): string[] {
  return [...new Set(records.filter((r) => r.approval !== null).map((r) => r.clientId))].sort();
}

/** The earliest check time of the batch: rows expired by then cannot matter to any record. */
export function earliest(records: readonly CheckRecord[]): number {
  return records.reduce((min, r) => Math.min(min, r.createdAt), Infinity);
}

const answerKey = (clientId: string, key: string) => `${clientId}\u0000${key}`;

const sameCall = (a: PendingApproval, r: CheckRecord) =>
  a.tool === r.tool && a.scope === r.scope && a.userSub === r.userSub && a.sessionId === r.sessionId && a.argumentsHash === r.argumentsHash;

export function planChecks(records: readonly CheckRecord[], pending: readonly PendingApproval[], stored: readonly (StoredAnswer & { clientId: string })[]): CheckPlan {
  const open = new Map<string, PendingApproval[]>();
  for (const a of pending) {
    const list = open.get(a.clientId);
    if (list === undefined) open.set(a.clientId, [a]);
    else list.push(a);
  }
  const answers = new Map<string, StoredAnswer>();
  for (const s of stored) answers.set(answerKey(s.clientId, s.key), s);

  const plan: CheckPlan = { outcomes: [], writes: [], answers: [], deliveries: [] };
  const store = (r: CheckRecord, keys: readonly { key: string; expiresAt: number }[], value: Omit<StoredAnswer, 'key' | 'expiresAt'>) => {
    for (const k of keys) {
      const row: AnswerRow = { ...value, key: k.key, expiresAt: k.expiresAt, clientId: r.clientId, createdAt: r.createdAt };
      answers.set(answerKey(r.clientId, k.key), row);
      plan.answers.push(row);
    }
  };

  for (const r of records) {
    const claim = r.idempotency ?? null;
    if (claim !== null && claim.keys.length > 0) {
      const live = (k: { key: string }) => {
        const found = answers.get(answerKey(r.clientId, k.key));
        return found !== undefined && found.expiresAt > r.createdAt ? found : undefined;
      };
      const first = claim.keys.map(live).find((a) => a !== undefined);
      if (first !== undefined) {
        if (first.requestHash !== claim.requestHash) {
          plan.outcomes.push({ kind: 'key_reused' });
          continue;
        }
        store(r, claim.keys.filter((k) => live(k) === undefined), { requestHash: first.requestHash, checkId: first.checkId, answer: first.answer });
        plan.outcomes.push({ kind: 'replayed', checkId: first.checkId, answer: first.answer });
        continue;
      }
    }

    let outcome: RecordedCheck;
    if (r.approval === null) {
      plan.writes.push({ record: r, approvalId: null, opens: false });
      plan.deliveries.push(...(r.deliveries ?? []));
      outcome = { kind: 'recorded', approval: null };
    } else {
      const live = (open.get(r.clientId) ?? []).filter((a) => a.expiresAt > r.createdAt);
      const same = live.filter((a) => sameCall(a, r)).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))[0];
      if (same !== undefined) {
        plan.writes.push({ record: r, approvalId: same.id, opens: false });
        outcome = { kind: 'recorded', approval: { id: same.id, expiresAt: same.expiresAt, opened: false } };
      } else if (live.length >= r.approval.maxPending) {
        const firstExpiry = Math.min(...live.map((a) => a.expiresAt));
        plan.writes.push({ record: { ...r, decision: 'deny', reason: TOO_MANY_PENDING, approval: null }, approvalId: null, opens: false });
        outcome = { kind: 'refused', retryAfterMs: Math.max(0, firstExpiry - r.createdAt) };
      } else {
        const a = r.approval;
        const opened: PendingApproval = {
          id: a.id, clientId: r.clientId, tool: r.tool, scope: r.scope, userSub: r.userSub, sessionId: r.sessionId,
          argumentsHash: r.argumentsHash, createdAt: r.createdAt, expiresAt: a.expiresAt,
        };
        const list = open.get(r.clientId);
        if (list === undefined) open.set(r.clientId, [opened]);
        else list.push(opened);
        plan.writes.push({ record: r, approvalId: a.id, opens: true });
        plan.deliveries.push(...(r.deliveries ?? []));
        outcome = { kind: 'recorded', approval: { id: a.id, expiresAt: a.expiresAt, opened: true } };
      }
    }
    if (claim !== null && claim.keys.length > 0) store(r, claim.keys, { requestHash: claim.requestHash, checkId: r.id, answer: claim.answer(outcome) });
    plan.outcomes.push(outcome);
  }
  return plan;
}
