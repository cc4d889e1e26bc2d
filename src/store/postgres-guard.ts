/** The guard and audit sub-stores on PostgreSQL. Audit appends lock the app row, so one app's chain grows one entry at a time across nodes. */
import type pg from 'pg';
import type { AuditKey } from '../audit/key.js';
import type { AuditEntry, AuditInput, AuditStore, CheckRecord, GuardStore, KillSwitch } from './guard-types.js';
import {
  approvalValues, auditValues, CHECK_COLUMNS, checkValues, guardUsageIncrements, HIT_RATE_SQL,
  INSERT_AUDIT_SQL, nextAuditEntry, PIN_AUDIT_SQL, toAuditEntry, toCheck, toGrant, toKillSwitch, toPolicy, ACTIVE_GRANTS_SQL,
} from './guard-sql.js';
import { postgresPlaceholder as ph } from './queries.js';
import { deliveryValues, INSERT_DELIVERY_SQL } from './webhook-sql.js';
import type { NewDelivery } from './webhook-types.js';

type Row = Record<string, unknown>;

/**
 * What the sub-stores need of the engine: plain queries and transactions on one pooled client, and
 * the key audit entries are chained with.
 */
export interface PgDb {
  q(sql: string, params?: unknown[]): Promise<Row[]>;
  tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  readonly auditKey: AuditKey;
}

/** Appends a keyed entry to the app's chain inside the caller's transaction. */
export async function appendAuditTx(client: pg.PoolClient, key: AuditKey, input: AuditInput): Promise<AuditEntry> {
  const { rows } = await client.query('SELECT audit_head, audit_count FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [input.clientId]);
  const app = rows[0] as Row | undefined;
  if (app === undefined) throw new Error(`audit: no app ${input.clientId}`);
  const entry = nextAuditEntry(key, input, { head: (app.audit_head as string | null) ?? null, count: Number(app.audit_count) });
  await client.query(INSERT_AUDIT_SQL(ph), auditValues(entry));
  await client.query(PIN_AUDIT_SQL(ph), [entry.hash, entry.seq, entry.clientId]);
  return entry;
}

/** Webhook outbox rows written inside the caller's transaction, so the event and its notification commit together. */
export async function insertDeliveriesTx(client: pg.PoolClient, deliveries: readonly NewDelivery[]): Promise<void> {
  for (const d of deliveries) await client.query(INSERT_DELIVERY_SQL(ph), deliveryValues(d));
}

export class PostgresAuditStore implements AuditStore {
  constructor(private readonly db: PgDb) {}

  async append(input: AuditInput): Promise<AuditEntry> {
    return this.db.tx((c) => appendAuditTx(c, this.db.auditKey, input));
  }

  async list(clientId: string, options: { afterSeq?: number | undefined; limit: number; newestFirst?: boolean }): Promise<AuditEntry[]> {
    const rows = options.newestFirst
      ? await this.db.q('SELECT * FROM audit_log WHERE client_id = $1 AND ($2::bigint IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3', [clientId, options.afterSeq ?? null, options.limit])
      : await this.db.q('SELECT * FROM audit_log WHERE client_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3', [clientId, options.afterSeq ?? 0, options.limit]);
    return rows.map(toAuditEntry);
  }

  async pinned(clientId: string) {
    const [r] = await this.db.q('SELECT audit_head, audit_count FROM apps WHERE client_id = $1', [clientId]);
    return { head: (r?.audit_head as string | null | undefined) ?? null, count: Number(r?.audit_count ?? 0) };
  }
}

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

export class PostgresGuardStore implements GuardStore {
  private hits = 0;

  constructor(private readonly db: PgDb) {}

  async getPolicy(clientId: string) {
    const [r] = await this.db.q('SELECT * FROM policies WHERE client_id = $1', [clientId]);
    return r ? toPolicy(r) : null;
  }

  async savePolicy(input: Parameters<GuardStore['savePolicy']>[0]) {
    return this.db.tx(async (c) => {
      // The app row lock serialises every governance change of one app (and its audit append).
      await c.query('SELECT 1 FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [input.clientId]);
      const current = (await c.query('SELECT version FROM policies WHERE client_id = $1', [input.clientId])).rows[0] as Row | undefined;
      if (Number(current?.version ?? 0) !== input.expectedVersion) return null;
      const { rows } = await c.query(
        `INSERT INTO policies (client_id, version, document, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (client_id) DO UPDATE SET version = excluded.version, document = excluded.document,
           updated_at = excluded.updated_at, updated_by = excluded.updated_by RETURNING *`,
        [input.clientId, input.expectedVersion + 1, input.document, input.now, input.actor],
      );
      await appendAuditTx(c, this.db.auditKey, input.audit);
      return toPolicy(rows[0] as Row);
    });
  }

  async listKillSwitches(clientId: string) {
    return (await this.db.q('SELECT * FROM kill_switches WHERE client_id = $1 ORDER BY tool', [clientId])).map(toKillSwitch);
  }

  async setKillSwitch(input: KillSwitch & { audit: AuditInput; deliveries: readonly NewDelivery[] }) {
    return this.db.tx(async (c) => {
      await c.query('SELECT 1 FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [input.clientId]);
      const before = (await c.query('SELECT * FROM kill_switches WHERE client_id = $1 AND tool = $2', [input.clientId, input.tool])).rows[0] as Row | undefined;
      await c.query(
        `INSERT INTO kill_switches (client_id, tool, reason, created_by, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (client_id, tool) DO UPDATE SET reason = excluded.reason, created_by = excluded.created_by, created_at = excluded.created_at`,
        [input.clientId, input.tool, input.reason, input.createdBy, input.createdAt],
      );
      await appendAuditTx(c, this.db.auditKey, input.audit);
      await insertDeliveriesTx(c, input.deliveries);
      return before ? toKillSwitch(before) : null;
    });
  }

  async removeKillSwitch(input: { clientId: string; tool: string; audit: AuditInput; deliveries: readonly NewDelivery[] }) {
    return this.db.tx(async (c) => {
      const before = (await c.query('DELETE FROM kill_switches WHERE client_id = $1 AND tool = $2 RETURNING *', [input.clientId, input.tool])).rows[0] as Row | undefined;
      if (before === undefined) return null;
      await appendAuditTx(c, this.db.auditKey, input.audit);
      await insertDeliveriesTx(c, input.deliveries);
      return toKillSwitch(before);
    });
  }

  /**
   * One statement, so one round trip and one implicit transaction whatever the group's size: the
   * checks, the approvals they open, the grants they used and the usage counters, each from
   * column arrays.
   */
  async recordChecks(records: readonly CheckRecord[]) {
    if (records.length === 0) return;
    const columns: unknown[][] = CHECK_COLUMNS.map(() => []);
    for (const r of records) checkValues(r).forEach((v, i) => columns[i]!.push(v));
    const approvals: unknown[][] = Array.from({ length: 12 }, () => []);
    for (const r of records) if (r.approval !== null) approvalValues(r).forEach((v, i) => approvals[i]!.push(v));
    const grantIds = records.flatMap((r) => (r.grantId === null ? [] : [r.grantId]));
    const usage: unknown[][] = [[], [], [], []];
    for (const inc of guardUsageIncrements(records)) inc.forEach((v, i) => usage[i]!.push(v));
    const params = [...columns, ...approvals, grantIds, ...usage];
    const deliveries = records.flatMap((r) => r.deliveries ?? []);
    if (deliveries.length === 0) {
      await this.db.q(RECORD_CHECKS_SQL, params);
      return;
    }
    await this.db.tx(async (c) => {
      await c.query(RECORD_CHECKS_SQL, params);
      await insertDeliveriesTx(c, deliveries);
    });
  }

  async getCheck(clientId: string, checkId: string) {
    const [r] = await this.db.q('SELECT * FROM guard_checks WHERE client_id = $1 AND id = $2', [clientId, checkId]);
    return r ? toCheck(r) : null;
  }

  async checksByIds(clientId: string, checkIds: readonly string[]) {
    if (checkIds.length === 0) return [];
    return (await this.db.q('SELECT * FROM guard_checks WHERE client_id = $1 AND id = ANY($2::text[])', [clientId, [...checkIds]])).map(toCheck);
  }

  async recentChecks(clientId: string, sinceMs: number, limit: number) {
    return (await this.db.q('SELECT * FROM guard_checks WHERE client_id = $1 AND created_at >= $2 ORDER BY created_at DESC LIMIT $3', [clientId, sinceMs, limit])).map(toCheck);
  }

  async hitRateCounter(bucket: string, windowStart: number, expiresAt: number) {
    if (++this.hits % 1000 === 0) await this.db.q('DELETE FROM rate_counters WHERE expires_at < $1', [windowStart]);
    const [r] = await this.db.q(HIT_RATE_SQL(ph), [bucket, windowStart, expiresAt]);
    return Number(r!.count);
  }

  async setKeepArguments(clientId: string, keep: boolean, audit: AuditInput) {
    await this.db.tx(async (c) => {
      await c.query('UPDATE apps SET keep_arguments = $1 WHERE client_id = $2', [keep ? 1 : 0, clientId]);
      await appendAuditTx(c, this.db.auditKey, audit);
    });
  }

  async appSettings(clientId: string) {
    const [r] = await this.db.q('SELECT keep_arguments FROM apps WHERE client_id = $1', [clientId]);
    return r ? { keepArguments: Boolean(r.keep_arguments) } : null;
  }

  async activeGrants(clientId: string, now: number) {
    return (await this.db.q(ACTIVE_GRANTS_SQL(ph), [clientId, now])).map(toGrant);
  }
}
