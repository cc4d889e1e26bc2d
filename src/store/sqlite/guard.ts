/** The guard sub-store on SQLite. Every method is synchronous inside, so a transaction never yields. */
import type Database from 'better-sqlite3';
import type { AuditKey } from '../../crypto/audit-key.js';
import type { AuditInput, CheckRecord, GuardStore, IdempotencyKey, KillSwitch, RecordOutcome, StoredAnswer } from '../types/guard.js';
import { answerValues, approvalValues, byAppThenKey, CHECK_COLUMNS, checkValues, GUARD_USAGE_SQL, guardUsageIncrements, HIT_RATE_SQL, INSERT_APPROVAL_SQL, PENDING_APPROVALS_SQL, toCheck, toGrant, toKillSwitch, toPendingApproval, toPolicy, toStoredAnswer, UPSERT_ANSWER_SQL, ACTIVE_GRANTS_SQL, CHECK_SQL, DELETE_KILL_SWITCH_SQL, KEEP_ARGUMENTS_SQL, KILL_SWITCHES_SQL, KILL_SWITCH_SQL, POLICY_SQL, POLICY_VERSION_SQL, PRUNE_RATE_COUNTERS_SQL, RECENT_CHECKS_SQL, SET_KEEP_ARGUMENTS_SQL, UPSERT_KILL_SWITCH_SQL, UPSERT_POLICY_SQL } from '../sql/guard.js';
import { appsOpening, earliest, keysByApp, planChecks } from '../check-plan.js';
import { numbered, slots } from '../sql/params.js';
import { appendAuditSync } from './audit.js';
import { insertDeliveriesSync } from './outbox.js';

import type { NewDelivery } from '../types/webhooks.js';

type Row = Record<string, unknown>;

export class SqliteGuardStore implements GuardStore {
  private hits = 0;

  constructor(private readonly db: Database.Database, private readonly key: AuditKey, private readonly outboxLimit: number) {}

  async getPolicy(clientId: string) {
    const r = this.db.prepare(POLICY_SQL).get(numbered([clientId])) as Row | undefined;
    return r ? toPolicy(r) : null;
  }

  async savePolicy(input: Parameters<GuardStore['savePolicy']>[0]) {
    return this.db.transaction(() => {
      const current = this.db.prepare(POLICY_VERSION_SQL).pluck().get(numbered([input.clientId])) as number | undefined;
      if ((current ?? 0) !== input.expectedVersion) return null;
      const r = this.db.prepare(UPSERT_POLICY_SQL).get(numbered([input.clientId, input.expectedVersion + 1, input.document, input.now, input.actor])) as Row;
      appendAuditSync(this.db, this.key, input.audit);
      return toPolicy(r);
    }).immediate();
  }

  async listKillSwitches(clientId: string) {
    return (this.db.prepare(KILL_SWITCHES_SQL).all(numbered([clientId])) as Row[]).map(toKillSwitch);
  }

  async setKillSwitch(input: KillSwitch & { audit: AuditInput; deliveries: readonly NewDelivery[] }) {
    return this.db.transaction(() => {
      const before = this.db.prepare(KILL_SWITCH_SQL).get(numbered([input.clientId, input.tool])) as Row | undefined;
      this.db.prepare(UPSERT_KILL_SWITCH_SQL).run(numbered([input.clientId, input.tool, input.reason, input.createdBy, input.createdAt]));
      appendAuditSync(this.db, this.key, input.audit);
      insertDeliveriesSync(this.db, input.deliveries, this.outboxLimit);
      return before ? toKillSwitch(before) : null;
    }).immediate();
  }

  async removeKillSwitch(input: { clientId: string; tool: string; audit: AuditInput; deliveries: readonly NewDelivery[] }) {
    return this.db.transaction(() => {
      const before = this.db.prepare(DELETE_KILL_SWITCH_SQL).get(numbered([input.clientId, input.tool])) as Row | undefined;
      if (before === undefined) return null;
      appendAuditSync(this.db, this.key, input.audit);
      insertDeliveriesSync(this.db, input.deliveries, this.outboxLimit);
      return toKillSwitch(before);
    }).immediate();
  }

  /** One immediate transaction: the plan's reads see every earlier commit, and no other write can interleave. */
  async recordChecks(records: readonly CheckRecord[]): Promise<RecordOutcome[]> {
    if (records.length === 0) return [];
    const insertCheck = this.db.prepare(`INSERT INTO guard_checks (${CHECK_COLUMNS.join(', ')}) VALUES (${slots(CHECK_COLUMNS.length)})`);
    const insertApproval = this.db.prepare(INSERT_APPROVAL_SQL);
    const usage = this.db.prepare(GUARD_USAGE_SQL);
    const useGrant = this.db.prepare('UPDATE grants SET uses = uses + 1 WHERE id = ?');
    const upsertAnswer = this.db.prepare(UPSERT_ANSWER_SQL);
    return this.db.transaction(() => {
      const since = earliest(records);
      const pending = appsOpening(records).flatMap((clientId) =>
        (this.db.prepare(PENDING_APPROVALS_SQL).all(numbered([clientId, since])) as Row[]).map(toPendingApproval));
      const stored = [...keysByApp(records)].flatMap(([clientId, keys]) => this.answersSync(clientId, keys, since));
      const plan = planChecks(records, pending, stored);
      for (const w of plan.writes) {
        insertCheck.run(numbered(checkValues(w)));
        if (w.opens) insertApproval.run(numbered(approvalValues(w.record)));
        if (w.record.grantId !== null) useGrant.run(w.record.grantId);
      }
      insertDeliveriesSync(this.db, plan.deliveries, this.outboxLimit);
      for (const inc of guardUsageIncrements(plan.writes)) usage.run(numbered(inc));
      for (const a of [...plan.answers].sort(byAppThenKey)) upsertAnswer.run(numbered(answerValues(a)));
      return plan.outcomes;
    }).immediate();
  }

  private answersSync(clientId: string, keys: readonly string[], now: number) {
    if (keys.length === 0) return [];
    return (this.db.prepare(`SELECT * FROM idempotency_keys WHERE client_id = ? AND key IN (${keys.map(() => '?').join(', ')}) AND expires_at > ?`)
      .all(clientId, ...keys, now) as Row[]).map(toStoredAnswer);
  }

  async findAnswers(clientId: string, keys: readonly string[], now: number): Promise<StoredAnswer[]> {
    return this.answersSync(clientId, keys, now);
  }

  async bindAnswers(clientId: string, keys: readonly IdempotencyKey[], answer: Omit<StoredAnswer, 'key' | 'expiresAt'>, now: number) {
    if (keys.length === 0) return;
    const upsert = this.db.prepare(UPSERT_ANSWER_SQL);
    this.db.transaction(() => {
      for (const k of [...keys].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
        upsert.run(numbered(answerValues({ ...answer, clientId, key: k.key, expiresAt: k.expiresAt, createdAt: now })));
      }
    }).immediate();
  }

  async deleteExpiredAnswers(now: number, limit: number) {
    return this.db.prepare('DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)').run(now, limit).changes;
  }

  async getCheck(clientId: string, checkId: string) {
    const r = this.db.prepare(CHECK_SQL).get(numbered([clientId, checkId])) as Row | undefined;
    return r ? toCheck(r) : null;
  }

  async checksByIds(clientId: string, checkIds: readonly string[]) {
    if (checkIds.length === 0) return [];
    return (this.db.prepare(`SELECT * FROM guard_checks WHERE client_id = ? AND id IN (${checkIds.map(() => '?').join(', ')})`).all(clientId, ...checkIds) as Row[]).map(toCheck);
  }

  async recentChecks(clientId: string, sinceMs: number, limit: number) {
    return (this.db.prepare(RECENT_CHECKS_SQL).all(numbered([clientId, sinceMs, limit])) as Row[]).map(toCheck);
  }

  async hitRateCounter(bucket: string, windowStart: number, expiresAt: number) {
    const count = this.db.transaction(() => {
      if (++this.hits % 1000 === 0) this.db.prepare(PRUNE_RATE_COUNTERS_SQL).run(numbered([windowStart]));
      return this.db.prepare(HIT_RATE_SQL).pluck().get(numbered([bucket, windowStart, expiresAt])) as number;
    }).immediate();
    return Number(count);
  }

  async setKeepArguments(clientId: string, keep: boolean, audit: AuditInput) {
    this.db.transaction(() => {
      this.db.prepare(SET_KEEP_ARGUMENTS_SQL).run(numbered([keep ? 1 : 0, clientId]));
      appendAuditSync(this.db, this.key, audit);
    }).immediate();
  }

  async appSettings(clientId: string) {
    const r = this.db.prepare(KEEP_ARGUMENTS_SQL).get(numbered([clientId])) as Row | undefined;
    return r ? { keepArguments: Boolean(r.keep_arguments) } : null;
  }

  async activeGrants(clientId: string, now: number) {
    return (this.db.prepare(ACTIVE_GRANTS_SQL).all(numbered([clientId, now])) as Row[]).map(toGrant);
  }
}
