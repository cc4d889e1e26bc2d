/** The guard sub-store on PostgreSQL. */
import type pg from 'pg';
import type { AuditInput, CheckRecord, GuardStore, IdempotencyKey, KillSwitch, RecordOutcome, StoredAnswer } from '../types/guard.js';
import { answerValues, approvalValues, asWritten, byAppThenKey, CHECK_COLUMNS, checkValues, guardUsageIncrements, HIT_RATE_SQL, PENDING_APPROVALS_SQL, toCheck, toGrant, toKillSwitch, toPendingApproval, toPolicy, toStoredAnswer, ACTIVE_GRANTS_SQL, CHECK_SQL, DELETE_KILL_SWITCH_SQL, KEEP_ARGUMENTS_SQL, KILL_SWITCHES_SQL, KILL_SWITCH_SQL, POLICY_SQL, POLICY_VERSION_SQL, PRUNE_RATE_COUNTERS_SQL, RECENT_CHECKS_SQL, SET_KEEP_ARGUMENTS_SQL, UPSERT_KILL_SWITCH_SQL, UPSERT_POLICY_SQL } from '../sql/guard.js';
import { appsOpening, appsToLock, earliest, keysByApp, planChecks, type AnswerRow, type CheckWrite } from '../check-plan.js';
import { appendAuditTx } from './audit.js';
import { lockApps, type PgDb } from './db.js';
import { insertDeliveriesTx } from './outbox.js';

import type { NewDelivery } from '../types/webhooks.js';

type Row = Record<string, unknown>;

const CHECK_TYPES = ['text', 'text', 'bigint', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'text', 'text', 'text'];
const APPROVAL_TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'bigint'];
const arrays = (types: readonly string[], from: number) => types.map((t, i) => `$${from + i}::${t}[]`).join(', ');
const A = CHECK_TYPES.length + 1;
const G = A + APPROVAL_TYPES.length;
const U = G + 1;
const RECORD_CHECKS_SQL = `
  WITH checks AS (
    INSERT INTO guard_checks (${CHECK_COLUMNS.join(', ')}) SELECT * FROM unnest(${arrays(CHECK_TYPES, 1)})
  ), opened AS (
    INSERT INTO approvals (id, client_id, check_id, rule_id, tool, scope, user_sub, session_id, arguments_hash, reason, created_at, expires_at, status)
    SELECT *, 'pending' FROM unnest(${arrays(APPROVAL_TYPES, A)})
  ), used AS (
    UPDATE grants g SET uses = g.uses + u.n FROM (SELECT id, count(*) AS n FROM unnest($${G}::text[]) AS id GROUP BY id) u WHERE g.id = u.id
  ), counted AS (
    INSERT INTO usage_daily (client_id, day, hitl_requests, kill_switch)
    SELECT * FROM unnest($${U}::text[], $${U + 1}::text[], $${U + 2}::bigint[], $${U + 3}::bigint[])
    ON CONFLICT (client_id, day) DO UPDATE SET hitl_requests = usage_daily.hitl_requests + excluded.hitl_requests,
      kill_switch = usage_daily.kill_switch + excluded.kill_switch
  )
  SELECT 1`;

/** The column arrays of RECORD_CHECKS_SQL: checks, the approvals they open, grants used, usage counters. */
function recordParams(writes: readonly CheckWrite[]): unknown[] {
  const columns: unknown[][] = CHECK_COLUMNS.map(() => []);
  for (const w of writes) checkValues(w).forEach((v, i) => columns[i]!.push(v));
  const approvals: unknown[][] = Array.from({ length: APPROVAL_TYPES.length }, () => []);
  for (const w of writes) if (w.opens) approvalValues(w.record).forEach((v, i) => approvals[i]!.push(v));
  const grantIds = writes.flatMap((w) => (w.record.grantId === null ? [] : [w.record.grantId]));
  const usage: unknown[][] = [[], [], [], []];
  for (const inc of guardUsageIncrements(writes)) inc.forEach((v, i) => usage[i]!.push(v));
  return [...columns, ...approvals, grantIds, ...usage];
}

const UPSERT_ANSWERS_SQL = `
  INSERT INTO idempotency_keys (client_id, key, request_hash, check_id, answer, created_at, expires_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
  ON CONFLICT (client_id, key) DO UPDATE SET request_hash = excluded.request_hash, check_id = excluded.check_id,
    answer = excluded.answer, created_at = excluded.created_at, expires_at = excluded.expires_at
  WHERE idempotency_keys.expires_at <= excluded.created_at`;

/** One row per key (the last planned wins), in lock order: one statement cannot touch a row twice. */
async function upsertAnswers(client: pg.PoolClient, rows: readonly AnswerRow[]): Promise<void> {
  if (rows.length === 0) return;
  const unique = new Map<string, AnswerRow>();
  for (const r of rows) unique.set(`${r.clientId}\u0000${r.key}`, r);
  const columns: unknown[][] = [[], [], [], [], [], [], []];
  for (const r of [...unique.values()].sort(byAppThenKey)) answerValues(r).forEach((v, i) => columns[i]!.push(v));
  await client.query(UPSERT_ANSWERS_SQL, columns);
}

const ANSWERS_SQL = 'SELECT * FROM idempotency_keys WHERE client_id = $1 AND key = ANY($2::text[]) AND expires_at > $3';

export class PostgresGuardStore implements GuardStore {
  private hits = 0;

  constructor(private readonly db: PgDb, private readonly outboxLimit: number) {}

  async getPolicy(clientId: string) {
    const [r] = await this.db.q(POLICY_SQL, [clientId]);
    return r ? toPolicy(r) : null;
  }

  async savePolicy(input: Parameters<GuardStore['savePolicy']>[0]) {
    return this.db.tx(async (c) => {
      // The app row lock serialises every governance change of one app (and its audit append).
      await c.query('SELECT 1 FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [input.clientId]);
      const current = (await c.query(POLICY_VERSION_SQL, [input.clientId])).rows[0] as Row | undefined;
      if (Number(current?.version ?? 0) !== input.expectedVersion) return null;
      const { rows } = await c.query(
        UPSERT_POLICY_SQL,
        [input.clientId, input.expectedVersion + 1, input.document, input.now, input.actor],
      );
      await appendAuditTx(c, this.db.auditKey, input.audit);
      return toPolicy(rows[0] as Row);
    });
  }

  async listKillSwitches(clientId: string) {
    return (await this.db.q(KILL_SWITCHES_SQL, [clientId])).map(toKillSwitch);
  }

  async setKillSwitch(input: KillSwitch & { audit: AuditInput; deliveries: readonly NewDelivery[] }) {
    return this.db.tx(async (c) => {
      await c.query('SELECT 1 FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [input.clientId]);
      const before = (await c.query(KILL_SWITCH_SQL, [input.clientId, input.tool])).rows[0] as Row | undefined;
      await c.query(
        UPSERT_KILL_SWITCH_SQL,
        [input.clientId, input.tool, input.reason, input.createdBy, input.createdAt],
      );
      await appendAuditTx(c, this.db.auditKey, input.audit);
      await insertDeliveriesTx(c, input.deliveries, this.outboxLimit);
      return before ? toKillSwitch(before) : null;
    });
  }

  async removeKillSwitch(input: { clientId: string; tool: string; audit: AuditInput; deliveries: readonly NewDelivery[] }) {
    return this.db.tx(async (c) => {
      const before = (await c.query(DELETE_KILL_SWITCH_SQL, [input.clientId, input.tool])).rows[0] as Row | undefined;
      if (before === undefined) return null;
      await appendAuditTx(c, this.db.auditKey, input.audit);
      await insertDeliveriesTx(c, input.deliveries, this.outboxLimit);
      return toKillSwitch(before);
    });
  }

  /**
   * Checks that open no approval and carry no key (nearly all): one statement, so one round trip
   * and one implicit transaction whatever the group's size. Otherwise a transaction that first
   * locks the apps concerned (so commits on other nodes deciding the same app's cap, coalescing or
   * keys wait for this one and then see it), reads their pending approvals and stored answers,
   * plans, and writes the plan with the same statement.
   */
  async recordChecks(records: readonly CheckRecord[]): Promise<RecordOutcome[]> {
    if (records.length === 0) return [];
    const locked = appsToLock(records);
    if (locked.length === 0) {
      const params = recordParams(records.map(asWritten));
      const deliveries = records.flatMap((r) => r.deliveries ?? []);
      if (deliveries.length === 0) await this.db.q(RECORD_CHECKS_SQL, params);
      else {
        await this.db.tx(async (c) => {
          await c.query(RECORD_CHECKS_SQL, params);
          await insertDeliveriesTx(c, deliveries, this.outboxLimit);
        });
      }
      return records.map(() => ({ kind: 'recorded', approval: null }));
    }
    return this.db.tx(async (c) => {
      await lockApps(c, locked);
      const since = earliest(records);
      const pending = [];
      for (const clientId of appsOpening(records)) pending.push(...((await c.query(PENDING_APPROVALS_SQL, [clientId, since])).rows as Row[]).map(toPendingApproval));
      const stored = [];
      for (const [clientId, keys] of keysByApp(records)) stored.push(...((await c.query(ANSWERS_SQL, [clientId, keys, since])).rows as Row[]).map(toStoredAnswer));
      const plan = planChecks(records, pending, stored);
      if (plan.writes.length > 0) await c.query(RECORD_CHECKS_SQL, recordParams(plan.writes));
      await insertDeliveriesTx(c, plan.deliveries, this.outboxLimit);
      await upsertAnswers(c, plan.answers);
      return plan.outcomes;
    });
  }

  async findAnswers(clientId: string, keys: readonly string[], now: number): Promise<StoredAnswer[]> {
    if (keys.length === 0) return [];
    return (await this.db.q(ANSWERS_SQL, [clientId, [...keys], now])).map(toStoredAnswer);
  }

  async bindAnswers(clientId: string, keys: readonly IdempotencyKey[], answer: Omit<StoredAnswer, 'key' | 'expiresAt'>, now: number) {
    if (keys.length === 0) return;
    await this.db.tx(async (c) => {
      await lockApps(c, [clientId]);
      await upsertAnswers(c, keys.map((k) => ({ ...answer, clientId, key: k.key, expiresAt: k.expiresAt, createdAt: now })));
    });
  }

  async deleteExpiredAnswers(now: number, limit: number) {
    const rows = await this.db.q(
      'DELETE FROM idempotency_keys WHERE (client_id, key) IN (SELECT client_id, key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2) RETURNING 1',
      [now, limit],
    );
    return rows.length;
  }

  async getCheck(clientId: string, checkId: string) {
    const [r] = await this.db.q(CHECK_SQL, [clientId, checkId]);
    return r ? toCheck(r) : null;
  }

  async checksByIds(clientId: string, checkIds: readonly string[]) {
    if (checkIds.length === 0) return [];
    return (await this.db.q('SELECT * FROM guard_checks WHERE client_id = $1 AND id = ANY($2::text[])', [clientId, [...checkIds]])).map(toCheck);
  }

  async recentChecks(clientId: string, sinceMs: number, limit: number) {
    return (await this.db.q(RECENT_CHECKS_SQL, [clientId, sinceMs, limit])).map(toCheck);
  }

  async hitRateCounter(bucket: string, windowStart: number, expiresAt: number) {
    if (++this.hits % 1000 === 0) await this.db.q(PRUNE_RATE_COUNTERS_SQL, [windowStart]);
    const [r] = await this.db.q(HIT_RATE_SQL, [bucket, windowStart, expiresAt]);
    return Number(r!.count);
  }

  async setKeepArguments(clientId: string, keep: boolean, audit: AuditInput) {
    await this.db.tx(async (c) => {
      await c.query(SET_KEEP_ARGUMENTS_SQL, [keep ? 1 : 0, clientId]);
      await appendAuditTx(c, this.db.auditKey, audit);
    });
  }

  async appSettings(clientId: string) {
    const [r] = await this.db.q(KEEP_ARGUMENTS_SQL, [clientId]);
    return r ? { keepArguments: Boolean(r.keep_arguments) } : null;
  }

  async activeGrants(clientId: string, now: number) {
    return (await this.db.q(ACTIVE_GRANTS_SQL, [clientId, now])).map(toGrant);
  }
}
