/**
 * The production engine: PostgreSQL through a `pg` pool, `synchronous_commit=on` so a commit that
 * returned is durable. Many stateless nodes can share one database; cross-node signals ride
 * LISTEN/NOTIFY on a channel named after the schema, so installs (and test runs) sharing a server
 * do not hear each other.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { postgresMigrations, TRACE_COLUMNS } from '../migrations/index.js';
import { EXPIRE_PAKS_SQL, INSERT_PAK_SQL, traceListQuery, USAGE_SQL } from '../sql/common.js';
import { toAccount, toApp, toOperatorToken, toPak, toPakAuth, toTrace, toUsage } from '../sql/rows.js';
import type { App, NewAccount, NewPak, Pak, SignalHealth, Store, StoreSignal, TraceRow } from '../types/store.js';
import type { AuditKey } from '../../crypto/audit-key.js';
import { DEFAULT_LISTENER_OPTIONS, PgListener, type ListenerOptions } from './listener.js';
import type { AuditInput } from '../types/guard.js';
import { appendAuditTx, PostgresAuditStore, PostgresGuardStore, type PgDb } from './guard.js';
import { sealUnkeyedInput, UNKEYED_TAILS_SQL } from '../sql/guard.js';
import { PostgresApprovalStore } from './approvals.js';
import { PostgresWebhookStore } from './webhooks.js';
import { DEFAULT_WEBHOOK_OUTBOX_LIMIT } from '../types/webhooks.js';
import { PostgresSecretStore } from './secrets.js';
import { PostgresToolStore } from './tools.js';
import { storeError } from '../errors.js';
import { PROBE_SQL, WriteHealth } from '../write-health.js';

type Row = Record<string, unknown>;

const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** TraceRow's fields, as json_to_recordset reads them, in TRACE_COLUMNS order. */
const TRACE_RECORD_FIELDS: ReadonlyArray<readonly [keyof TraceRow, string]> = [
  ['clientId', 'text'], ['eventId', 'text'], ['tool', 'text'], ['scopeUsed', 'text'], ['status', 'text'],
  ['startedAtUs', 'bigint'], ['day', 'text'], ['durationMs', 'bigint'], ['userSub', 'text'], ['errorMessage', 'text'],
  ['sessionId', 'text'], ['attributes', 'text'], ['keyId', 'text'], ['receivedAt', 'bigint'], ['checkId', 'text'],
];

/**
 * One statement, so one round trip and one implicit transaction: insert the new rows, add them to
 * the daily usage, and report which (app, event_id) pairs were new. The rows arrive as one JSON
 * parameter (JSON.stringify of the TraceRow objects), so the statement is prepared once whatever
 * the batch size; encoding 15 arrays element by element in pg's JavaScript cost more per row than
 * the insert.
 */
const INSERT_TRACES_SQL = `
  WITH input AS (
    SELECT ${TRACE_RECORD_FIELDS.map(([field], i) => `"${field}" AS ${TRACE_COLUMNS[i]}`).join(', ')}
    FROM json_to_recordset($1::json) AS t(${TRACE_RECORD_FIELDS.map(([field, type]) => `"${field}" ${type}`).join(', ')})
  ), ins AS (
    INSERT INTO traces (${TRACE_COLUMNS.join(', ')})
    SELECT ${TRACE_COLUMNS.join(', ')} FROM input
    ON CONFLICT (client_id, event_id) DO NOTHING
    RETURNING client_id, event_id, day, status
  ), usage AS (
    INSERT INTO usage_daily (client_id, day, traces, errors)
    SELECT client_id, day, count(*), count(*) FILTER (WHERE status IN ('error', 'timeout'))
    FROM ins GROUP BY client_id, day ORDER BY client_id, day
    ON CONFLICT (client_id, day) DO UPDATE SET traces = usage_daily.traces + excluded.traces,
      errors = usage_daily.errors + excluded.errors
  )
  SELECT client_id, event_id FROM ins`;

const DEADLOCK = '40P01';

export class PostgresStore implements Store {
  readonly engine = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private readonly channel: string;
  private readonly listeners = new Set<(signal: StoreSignal) => void>();
  private listener: PgListener | undefined;
  private readonly openedAt = Date.now();
  private readonly listenerOptions: ListenerOptions;
  /** Marks this store's own notifications, which it has already delivered locally. */
  private readonly origin = crypto.randomUUID();
  private closed = false;
  private readonly writeHealth = new WriteHealth();
  readonly audit: PostgresAuditStore;
  readonly guard: PostgresGuardStore;
  readonly approvals: PostgresApprovalStore;
  readonly webhooks: PostgresWebhookStore;
  readonly secrets: PostgresSecretStore;
  readonly tools: PostgresToolStore;

  /**
   * `lockTimeoutMs` bounds every lock wait of the pool's sessions: without it an insert queued
   * behind a long lock would hold its requests forever instead of failing them with a 503.
   */
  constructor(
    private readonly url: string,
    schema: string | undefined,
    poolSize: number,
    /** What audit entries are chained with (derived from the server key, never stored). */
    private readonly auditKey: AuditKey,
    lockTimeoutMs = 5000,
    listenerOptions: Partial<ListenerOptions> = {},
    /** Most undelivered deliveries one webhook endpoint keeps. */
    webhookOutboxLimit = DEFAULT_WEBHOOK_OUTBOX_LIMIT,
  ) {
    this.listenerOptions = { ...DEFAULT_LISTENER_OPTIONS, ...listenerOptions };
    this.schema = schema ?? 'public';
    this.channel = `panopticon_${this.schema}`.slice(0, 63);
    this.pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      types,
      options: `-c search_path=${this.schema} -c synchronous_commit=on -c lock_timeout=${Math.trunc(lockTimeoutMs)}`,
      connectionTimeoutMillis: 5000,
      application_name: 'panopticon',
    });
    // An idle client that loses its connection must not crash the process; the next query reconnects.
    this.pool.on('error', () => {});
    const db: PgDb = { q: (sql, params) => this.q(sql, params), tx: (fn) => this.tx(fn), auditKey };
    this.audit = new PostgresAuditStore(db);
    this.guard = new PostgresGuardStore(db, webhookOutboxLimit);
    this.approvals = new PostgresApprovalStore(db, webhookOutboxLimit);
    this.webhooks = new PostgresWebhookStore(db, webhookOutboxLimit);
    this.secrets = new PostgresSecretStore(db);
    this.tools = new PostgresToolStore(db, webhookOutboxLimit);
  }

  private async q(sql: string, params: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query(sql, params)).rows as Row[];
    } catch (err) {
      this.writeHealth.failed(err);
      throw storeError(err);
    }
  }

  private async tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect().catch((err: unknown) => {
      this.writeHealth.failed(err);
      throw storeError(err);
    });
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      this.writeHealth.failed(err);
      const failure = storeError(err);
      // A connection that failed is not handed out again: the pool opens a fresh one.
      if (failure !== err) broken = failure as Error;
      throw failure;
    } finally {
      client.release(broken);
    }
  }

  async migrate(): Promise<void> {
    const admin = new pg.Client({ connectionString: this.url });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
    } finally {
      await admin.end();
    }
    await this.tx(async (c) => {
      // A migration may legitimately wait for another node's migration or for running queries.
      await c.query('SET LOCAL lock_timeout = 0');
      // Nodes booting together take turns; the first applies, the rest find it done.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`panopticon_migrate_${this.schema}`]);
      await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
      const applied = new Set((await c.query('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)));
      for (const m of postgresMigrations) {
        if (applied.has(m.version)) continue;
        await c.query(m.sql);
        if (m.sealUnkeyedAudit) {
          const now = Date.now();
          for (const r of (await c.query(UNKEYED_TAILS_SQL)).rows as Row[]) await appendAuditTx(c, this.auditKey, sealUnkeyedInput(r, now));
        }
        await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      }
    });
    if (this.listener === undefined) await this.listen();
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    this.listener = new PgListener(this.url, this.channel, {
      notification: (payload) => {
        let signal: StoreSignal & { origin?: string };
        try {
          signal = JSON.parse(payload) as StoreSignal & { origin?: string };
        } catch {
          return;
        }
        if (signal.origin === this.origin) return;
        delete signal.origin;
        this.deliver(signal);
      },
      // Both ways, everything may have changed unseen: caches drop what they hold (and, while deaf,
      // read the store instead of caching), waiters re-read, streams catch up.
      lost: () => this.deliverEverythingChanged({ kind: 'signals_lost' }),
      restored: () => this.deliverEverythingChanged({ kind: 'signals_restored' }),
    }, this.listenerOptions);
    try {
      await this.listener.start();
    } catch (err) {
      this.listener = undefined;
      throw err;
    }
  }

  private deliver(signal: StoreSignal): void {
    for (const l of this.listeners) l(signal);
  }

  private deliverEverythingChanged(first: StoreSignal): void {
    this.deliver(first);
    this.deliver({ kind: 'keys_changed', clientId: '*' });
    this.deliver({ kind: 'guard_changed', clientId: '*' });
    this.deliver({ kind: 'traces_committed', clientIds: ['*'] });
    this.deliver({ kind: 'approval_decided', clientId: '*', approvalId: '*' });
  }

  signalHealth(): SignalHealth {
    const state = this.listener?.status;
    if (state === undefined) return { live: false, mode: 'listen_notify', since: this.openedAt, reconnects: 0, lastError: 'not started' };
    return { live: state.listening, mode: 'listen_notify', since: state.since, reconnects: state.reconnects, lastError: state.lastError };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.listener?.close();
    await this.pool.end();
  }

  async ping(): Promise<void> {
    await this.q('SELECT 1');
  }

  async writable() {
    return this.writeHealth.check(async () => {
      await this.q(PROBE_SQL, [Date.now()]);
    });
  }

  /** Drops this store's schema: tests call it to leave the shared server as they found it. */
  async dropSchema(): Promise<void> {
    if (this.schema === 'public') throw new Error('refusing to drop the public schema');
    await this.q(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
  }

  async createAccount(input: NewAccount) {
    return this.tx(async (c) => {
      // Taken before either check, so "is there an account yet" cannot change before the insert.
      await c.query('LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE');
      if ((await c.query('SELECT 1 FROM accounts WHERE email = $1', [input.email])).rowCount) return { ok: false as const, reason: 'email_taken' as const };
      const isOwner = (await c.query('SELECT 1 FROM accounts LIMIT 1')).rowCount === 0;
      if (input.onlyIfFirst && !isOwner) return { ok: false as const, reason: 'signup_closed' as const };
      const { rows } = await c.query(
        'INSERT INTO accounts (id, email, password_hash, is_owner, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *',
        [input.id, input.email, input.passwordHash, isOwner, input.now],
      );
      return { ok: true as const, account: toAccount(rows[0] as Row) };
    });
  }

  async countAccounts() {
    return Number((await this.q('SELECT count(*) AS n FROM accounts'))[0]!.n);
  }

  async findAccountByEmail(email: string) {
    const [r] = await this.q('SELECT * FROM accounts WHERE email = $1', [email]);
    return r ? toAccount(r) : null;
  }

  async findAccountById(id: string) {
    const [r] = await this.q('SELECT * FROM accounts WHERE id = $1', [id]);
    return r ? toAccount(r) : null;
  }

  async createSession(input: { tokenHash: string; accountId: string; now: number; expiresAt: number }) {
    await this.q('INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)', [
      input.tokenHash, input.accountId, input.now, input.expiresAt,
    ]);
  }

  async findSession(tokenHash: string, now: number) {
    const [r] = await this.q('SELECT account_id, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2', [tokenHash, now]);
    return r ? { accountId: String(r.account_id), expiresAt: Number(r.expires_at) } : null;
  }

  async deleteSession(tokenHash: string) {
    await this.q('DELETE FROM sessions WHERE token_hash = $1', [tokenHash]);
  }

  async createOperatorToken(input: { id: string; tokenHash: string; accountId: string; prefix: string; name: string; now: number }) {
    const [r] = await this.q(
      'INSERT INTO operator_tokens (id, token_hash, account_id, prefix, name, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
      [input.id, input.tokenHash, input.accountId, input.prefix, input.name, input.now],
    );
    return toOperatorToken(r!);
  }

  async findOperatorToken(tokenHash: string) {
    const [r] = await this.q('SELECT * FROM operator_tokens WHERE token_hash = $1 AND revoked_at IS NULL', [tokenHash]);
    return r ? toOperatorToken(r) : null;
  }

  async revokeOperatorToken(tokenHash: string, now: number) {
    const rows = await this.q('UPDATE operator_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL RETURNING id', [now, tokenHash]);
    return rows.length > 0;
  }

  async createApp(input: { clientId: string; accountId: string; name: string; now: number }, audit: AuditInput) {
    return this.tx(async (c) => {
      const { rows } = await c.query(
        'INSERT INTO apps (client_id, account_id, name, panopticon_enabled, created_at) VALUES ($1, $2, $3, FALSE, $4) RETURNING *',
        [input.clientId, input.accountId, input.name, input.now],
      );
      await appendAuditTx(c, this.auditKey, audit);
      return toApp(rows[0] as Row);
    });
  }

  async listApps(accountId: string) {
    return (await this.q('SELECT * FROM apps WHERE account_id = $1 ORDER BY created_at, client_id', [accountId])).map(toApp);
  }

  async findApp(accountId: string, clientId: string) {
    const [r] = await this.q('SELECT * FROM apps WHERE account_id = $1 AND client_id = $2', [accountId, clientId]);
    return r ? toApp(r) : null;
  }

  async updateApp(accountId: string, clientId: string, patch: { name?: string | undefined; panopticonEnabled?: boolean | undefined }, audit: (before: App, after: App) => AuditInput[]) {
    return this.tx(async (c) => {
      // The row lock orders this change with the app's other governance changes (and its audit appends).
      const before = (await c.query('SELECT * FROM apps WHERE account_id = $1 AND client_id = $2 FOR NO KEY UPDATE', [accountId, clientId])).rows[0] as Row | undefined;
      if (before === undefined) return null;
      const { rows } = await c.query(
        `UPDATE apps SET name = COALESCE($1, name), panopticon_enabled = COALESCE($2, panopticon_enabled)
         WHERE account_id = $3 AND client_id = $4 RETURNING *`,
        [patch.name ?? null, patch.panopticonEnabled ?? null, accountId, clientId],
      );
      const after = toApp(rows[0] as Row);
      for (const entry of audit(toApp(before), after)) await appendAuditTx(c, this.auditKey, entry);
      return after;
    });
  }

  async insertPak(input: NewPak, audit?: AuditInput) {
    return this.tx(async (c) => {
      const [r] = (await c.query(INSERT_PAK_SQL, [input.id, input.clientId, input.keyHash, input.prefix, input.now])).rows as Row[];
      if (r && audit) await appendAuditTx(c, this.auditKey, audit);
      return r ? toPak(r) : null;
    });
  }

  async rotatePak(input: NewPak & { expiresAt: number }, audit?: AuditInput) {
    return this.tx(async (c) => {
      // Serialise rotations of one app so two at once cannot both become primary.
      await c.query('SELECT 1 FROM apps WHERE client_id = $1 FOR NO KEY UPDATE', [input.clientId]);
      const previous = (await c.query(EXPIRE_PAKS_SQL, [input.expiresAt, input.now, input.clientId])).rows.map(toPak);
      const { rows } = await c.query(INSERT_PAK_SQL, [input.id, input.clientId, input.keyHash, input.prefix, input.now]);
      if (audit) await appendAuditTx(c, this.auditKey, audit);
      return { pak: toPak(rows[0] as Row), previous };
    });
  }

  async listPaks(clientId: string) {
    return (await this.q('SELECT * FROM paks WHERE client_id = $1 ORDER BY created_at DESC, id', [clientId])).map(toPak);
  }

  async activePaks(clientId: string, now: number) {
    return (
      await this.q(
        'SELECT * FROM paks WHERE client_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC',
        [clientId, now],
      )
    ).map(toPak);
  }

  async revokePaks(clientId: string, now: number, keyId?: string, audit?: (revoked: Pak[]) => AuditInput) {
    return this.tx(async (c) => {
      const revoked = (
        await c.query(
          'UPDATE paks SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL AND ($3::text IS NULL OR id = $3) RETURNING *',
          [now, clientId, keyId ?? null],
        )
      ).rows.map((r) => toPak(r as Row));
      if (revoked.length > 0 && audit) await appendAuditTx(c, this.auditKey, audit(revoked));
      return revoked;
    });
  }

  async findPakForAuth(keyHash: string) {
    const [r] = await this.q(
      `SELECT p.id, p.key_hash, p.client_id, p.expires_at, p.revoked_at, a.panopticon_enabled, a.hmac_enabled
       FROM paks p JOIN apps a ON a.client_id = p.client_id WHERE p.key_hash = $1`,
      [keyHash],
    );
    return r ? toPakAuth(r) : null;
  }

  async touchPaks(lastUsed: ReadonlyMap<string, number>) {
    if (lastUsed.size === 0) return;
    await this.q(
      `UPDATE paks p SET last_used_at = GREATEST(COALESCE(p.last_used_at, 0), u.at)
       FROM unnest($1::text[], $2::bigint[]) AS u(id, at) WHERE p.id = u.id`,
      [[...lastUsed.keys()], [...lastUsed.values()]],
    );
  }

  async insertTraces(rows: readonly TraceRow[]): Promise<boolean[]> {
    if (rows.length === 0) return [];
    // Sorted input makes concurrent commits (several nodes) take row locks in one order.
    const sorted = [...rows].sort(compareKey);
    const json = JSON.stringify(sorted);
    let inserted: Row[];
    for (let attempt = 1; ; attempt++) {
      try {
        inserted = (await this.pool.query({ name: 'panopticon_insert_traces', text: INSERT_TRACES_SQL, values: [json] })).rows as Row[];
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== DEADLOCK || attempt >= 3) {
          this.writeHealth.failed(err);
          throw storeError(err);
        }
      }
    }
    this.writeHealth.succeeded();
    const newKeys = new Set(inserted.map((r) => `${r.client_id as string}\u0000${r.event_id as string}`));
    return rows.map((row) => newKeys.delete(`${row.clientId}\u0000${row.eventId}`));
  }

  async insertTraceUnbatched(row: TraceRow): Promise<boolean> {
    const [isNew] = await this.insertTraces([row]);
    return isNew === true;
  }

  async listTraces(query: Parameters<Store['listTraces']>[0]) {
    const { sql, params } = traceListQuery(query);
    return (await this.q(sql, params)).map(toTrace);
  }

  async countTraces(clientId: string) {
    return Number((await this.q('SELECT count(*) AS n FROM traces WHERE client_id = $1', [clientId]))[0]!.n);
  }

  async tracesAfter(clientId: string, afterSeq: number, limit: number) {
    return (await this.q('SELECT * FROM traces WHERE client_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [clientId, afterSeq, limit])).map(toTrace);
  }

  async maxTraceSeq(clientId: string) {
    return Number((await this.q('SELECT coalesce(max(seq), 0) AS m FROM traces WHERE client_id = $1', [clientId]))[0]!.m);
  }

  async usage(clientId: string, sinceDay: string, untilDay: string) {
    return (await this.q(USAGE_SQL, [clientId, sinceDay, untilDay])).map(toUsage);
  }

  async publish(signal: StoreSignal) {
    await this.q('SELECT pg_notify($1, $2)', [this.channel, JSON.stringify({ ...signal, origin: this.origin })]);
    // This node acts before publish returns (a revoke or an HMAC switch holds for the very next
    // request), instead of after its own notification's round trip through the listener.
    this.deliver(signal);
  }

  subscribe(listener: (signal: StoreSignal) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function compareKey(a: TraceRow, b: TraceRow): number {
  if (a.clientId !== b.clientId) return a.clientId < b.clientId ? -1 : 1;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}
