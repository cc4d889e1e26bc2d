/**
 * The embedded engine: better-sqlite3 in WAL mode with synchronous=FULL, so a commit that returned
 * is on disk (it survives a crash of the process and of the machine). better-sqlite3 is
 * synchronous, so every method runs its statements (and its transaction) without yielding: no other
 * request can interleave inside a transaction, and no lock is needed. Each area is a sub-store in
 * this directory, all on one connection; trace group commits are the exception (traces.ts: a
 * worker thread with its own connection).
 *
 * One process owns the file; several Panopticon nodes need the PostgreSQL engine.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { sqliteMigrations } from '../migrations/index.js';
import { numbered } from '../sql/params.js';
import { configureSqlite } from './commit.js';
import { SqliteTraceStore } from './traces.js';
import type { SignalHealth, Store, StoreSignal } from '../types/store.js';
import type { AuditKey } from '../../crypto/audit-key.js';
import { SqliteGuardStore } from './guard.js';
import { appendAuditSync, SqliteAuditStore } from './audit.js';
import { sealUnkeyedInput, UNKEYED_TAILS_SQL } from '../sql/audit.js';
import { SqliteAccountStore } from './accounts.js';
import { SqliteAppStore } from './apps.js';
import { SqliteKeyStore } from './keys.js';
import { SqliteApprovalStore } from './approvals.js';
import { SqliteWebhookStore } from './webhooks.js';
import { DEFAULT_WEBHOOK_OUTBOX_LIMIT } from '../types/webhooks.js';
import { SqliteSecretStore } from './secrets.js';
import { SqliteToolStore } from './tools.js';
import { withoutLockWaits } from './locks.js';
import { storeError } from '../errors.js';
import { PROBE_SQL, WriteHealth } from '../write-health.js';
import { DEFAULT_COMMIT_BATCH } from '../../config.js';

type Row = Record<string, unknown>;

/**
 * The file holds password hashes, emails and every trace: a directory we create is 0700 and the
 * database 0600 (SQLite gives its -wal and -shm files the database file's mode). An existing
 * directory is left as the operator set it up.
 */
function createPrivately(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600));
}

export class SqliteStore implements Store {
  readonly engine = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly listeners = new Set<(signal: StoreSignal) => void>();
  private readonly openedAt = Date.now();
  private readonly writeHealth = new WriteHealth();
  readonly accounts: SqliteAccountStore;
  readonly apps: SqliteAppStore;
  readonly keys: SqliteKeyStore;
  readonly traces: SqliteTraceStore;
  readonly audit: SqliteAuditStore;
  readonly guard: SqliteGuardStore;
  readonly approvals: SqliteApprovalStore;
  readonly webhooks: SqliteWebhookStore;
  readonly secrets: SqliteSecretStore;
  readonly tools: SqliteToolStore;

  /**
   * `auditKey`: what audit entries are chained with (derived from the server key, never stored).
   * `lockTimeoutMs`: how long a statement waits for another connection's lock (SQLITE_BUSY after).
   * `webhookOutboxLimit`: most undelivered deliveries one webhook endpoint keeps.
   * `commitBatch`: PANOPTICON_COMMIT_BATCH, the most rows the commit worker merges into one transaction.
   */
  constructor(file: string, private readonly auditKey: AuditKey, lockTimeoutMs = 5000, webhookOutboxLimit = DEFAULT_WEBHOOK_OUTBOX_LIMIT, commitBatch = DEFAULT_COMMIT_BATCH) {
    if (file !== ':memory:') createPrivately(file);
    this.db = new Database(file);
    // This connection runs on the event loop: it never waits for a lock (see locks.ts).
    configureSqlite(this.db, 0);
    const guarded = <T extends object>(subStore: T, except: string[] = []): T => withoutLockWaits(subStore, lockTimeoutMs, except, this.writeHealth);
    this.accounts = guarded(new SqliteAccountStore(this.db));
    this.apps = guarded(new SqliteAppStore(this.db, auditKey));
    this.keys = guarded(new SqliteKeyStore(this.db, auditKey));
    // Trace commits run on the worker, whose connection may wait for locks; its failures reach the writer.
    this.traces = guarded(new SqliteTraceStore(this.db, file, lockTimeoutMs, commitBatch, this.writeHealth), ['insert', 'close']);
    this.audit = guarded(new SqliteAuditStore(this.db, auditKey));
    this.guard = guarded(new SqliteGuardStore(this.db, auditKey, webhookOutboxLimit));
    this.approvals = guarded(new SqliteApprovalStore(this.db, auditKey, webhookOutboxLimit));
    this.webhooks = guarded(new SqliteWebhookStore(this.db, auditKey, webhookOutboxLimit));
    this.secrets = guarded(new SqliteSecretStore(this.db, auditKey));
    this.tools = guarded(new SqliteToolStore(this.db, auditKey, webhookOutboxLimit));
    guarded(this, ['close', 'publish', 'writable']);
  }

  async migrate(): Promise<void> {
    this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
    const applied = new Set(this.db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
    for (const m of sqliteMigrations) {
      if (applied.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        if (m.sealUnkeyedAudit) {
          const now = Date.now();
          for (const r of this.db.prepare(UNKEYED_TAILS_SQL).all() as Row[]) appendAuditSync(this.db, this.auditKey, sealUnkeyedInput(r, now));
        }
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      }).immediate();
    }
  }

  async close(): Promise<void> {
    await this.traces.close();
    if (this.db.open) this.db.close();
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async writable() {
    // One attempt, without the lock retry: a held lock is reported now, not after the lock timeout.
    return this.writeHealth.check(async () => {
      try {
        this.db.prepare(PROBE_SQL).run(numbered([Date.now()]));
      } catch (err) {
        throw storeError(err);
      }
    });
  }

  async publish(signal: StoreSignal) {
    for (const listener of this.listeners) listener(signal);
  }

  signalHealth(): SignalHealth {
    return { live: true, mode: 'in_process', since: this.openedAt, reconnects: 0, lastError: null };
  }

  subscribe(listener: (signal: StoreSignal) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
