/**
 * The production engine: PostgreSQL through a `pg` pool, `synchronous_commit=on` so a commit that
 * returned is durable. Many stateless nodes can share one database; cross-node signals ride
 * LISTEN/NOTIFY on a channel named after the schema, so installs (and test runs) sharing a server
 * do not hear each other.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { postgresMigrations } from '../migrations/index.js';
import type { SignalHealth, Store, StoreSignal } from '../types/store.js';
import type { AuditKey } from '../../crypto/audit-key.js';
import { DEFAULT_LISTENER_OPTIONS, PgListener, type ListenerOptions } from './listener.js';
import { PostgresGuardStore } from './guard.js';
import { appendAuditTx, PostgresAuditStore } from './audit.js';
import { type PgDb } from './db.js';
import { sealUnkeyedInput, UNKEYED_TAILS_SQL } from '../sql/audit.js';
import { PostgresAccountStore } from './accounts.js';
import { PostgresAppStore } from './apps.js';
import { PostgresKeyStore } from './keys.js';
import { PostgresTraceStore } from './traces.js';
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
  readonly accounts: PostgresAccountStore;
  readonly apps: PostgresAppStore;
  readonly keys: PostgresKeyStore;
  readonly traces: PostgresTraceStore;
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
    this.accounts = new PostgresAccountStore(db);
    this.apps = new PostgresAppStore(db);
    this.keys = new PostgresKeyStore(db);
    this.traces = new PostgresTraceStore(db, this.pool, this.writeHealth);
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

