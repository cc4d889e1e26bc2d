/**
 * The embedded engine: better-sqlite3 in WAL mode with synchronous=FULL, so a commit that returned
 * is on disk (it survives a crash of the process and of the machine). better-sqlite3 is
 * synchronous, so every method runs its statements (and its transaction) without yielding: no other
 * request can interleave inside a transaction, and no lock is needed.
 *
 * Trace group commits are the exception: they run on a worker thread with a second connection
 * (sqlite-worker.ts), because a commit's page writes and fsync would otherwise stop the event loop
 * for every request in flight. SQLite serialises the two connections' writes itself (WAL, one
 * writer at a time, busy_timeout). An in-memory database cannot be shared with a thread, so there
 * the commit stays on this connection.
 *
 * One process owns the file; several Panopticon nodes need the PostgreSQL engine.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { sqliteMigrations } from '../migrations/index.js';
import { EXPIRE_PAKS_SQL, INSERT_PAK_SQL, numbered, traceListQuery, USAGE_SQL } from '../sql/common.js';
import { toAccount, toApp, toOperatorToken, toPak, toPakAuth, toTrace, toUsage } from '../sql/rows.js';
import { configureSqlite, traceCommitter, type TraceCommit } from './traces.js';
import type { CommitReply, CommitRequest } from './worker.js';
import type { App, NewAccount, NewPak, Pak, SignalHealth, Store, StoreSignal, TraceRow } from '../types/store.js';
import type { AuditKey } from '../../crypto/audit-key.js';
import type { AuditInput } from '../types/guard.js';
import { appendAuditSync, SqliteAuditStore, SqliteGuardStore } from './guard.js';
import { sealUnkeyedInput, UNKEYED_TAILS_SQL } from '../sql/guard.js';
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
 * The commit worker's rows are short-lived (cloned in, bound, dropped); V8's default young
 * generation grew to tens of megabytes of resident memory for them under batch load.
 */
const WORKER_YOUNG_GENERATION_MB = 4;

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
  readonly traceCommitStats = { commits: 0, rows: 0 };
  private readonly db: Database.Database;
  private readonly listeners = new Set<(signal: StoreSignal) => void>();
  private readonly openedAt = Date.now();
  private localCommit: TraceCommit | undefined;
  private worker: Worker | null = null;
  private readonly pending = new Map<number, { resolve: (isNew: boolean[]) => void; reject: (err: Error) => void }>();
  private nextCommitId = 1;
  private closed = false;
  private readonly writeHealth = new WriteHealth();
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
  constructor(private readonly file: string, private readonly auditKey: AuditKey, private readonly lockTimeoutMs = 5000, webhookOutboxLimit = DEFAULT_WEBHOOK_OUTBOX_LIMIT, private readonly commitBatch = DEFAULT_COMMIT_BATCH) {
    if (file !== ':memory:') createPrivately(file);
    this.db = new Database(file);
    // This connection runs on the event loop: it never waits for a lock (see sqlite-locks.ts).
    configureSqlite(this.db, 0);
    this.audit = withoutLockWaits(new SqliteAuditStore(this.db, auditKey), lockTimeoutMs, [], this.writeHealth);
    this.guard = withoutLockWaits(new SqliteGuardStore(this.db, auditKey, webhookOutboxLimit), lockTimeoutMs, [], this.writeHealth);
    this.approvals = withoutLockWaits(new SqliteApprovalStore(this.db, auditKey, webhookOutboxLimit), lockTimeoutMs, [], this.writeHealth);
    this.webhooks = withoutLockWaits(new SqliteWebhookStore(this.db, auditKey, webhookOutboxLimit), lockTimeoutMs, [], this.writeHealth);
    this.secrets = withoutLockWaits(new SqliteSecretStore(this.db, auditKey), lockTimeoutMs, [], this.writeHealth);
    this.tools = withoutLockWaits(new SqliteToolStore(this.db, auditKey, webhookOutboxLimit), lockTimeoutMs, [], this.writeHealth);
    // Trace commits run on the worker, whose connection may wait for locks; its failures reach the writer.
    withoutLockWaits(this, lockTimeoutMs, ['close', 'publish', 'insertTraces', 'writable'], this.writeHealth);
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
          for (const r of this.all(UNKEYED_TAILS_SQL)) appendAuditSync(this.db, this.auditKey, sealUnkeyedInput(r, now));
        }
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      }).immediate();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (worker !== null) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage('close');
      const timer = setTimeout(() => void worker.terminate(), 5000);
      await exited;
      clearTimeout(timer);
    }
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

  private one(sql: string, ...params: unknown[]): Row | undefined {
    return this.db.prepare(sql).get(...params) as Row | undefined;
  }

  private all(sql: string, ...params: unknown[]): Row[] {
    return this.db.prepare(sql).all(...params) as Row[];
  }

  async createAccount(input: NewAccount) {
    return this.db.transaction(() => {
      if (this.one('SELECT 1 FROM accounts WHERE email = ?', input.email)) return { ok: false as const, reason: 'email_taken' as const };
      const isOwner = this.one('SELECT 1 FROM accounts LIMIT 1') === undefined;
      if (input.onlyIfFirst && !isOwner) return { ok: false as const, reason: 'signup_closed' as const };
      const row = this.one(
        'INSERT INTO accounts (id, email, password_hash, is_owner, created_at) VALUES (?, ?, ?, ?, ?) RETURNING *',
        input.id, input.email, input.passwordHash, isOwner ? 1 : 0, input.now,
      );
      return { ok: true as const, account: toAccount(row!) };
    }).immediate();
  }

  async countAccounts() {
    return Number(this.one('SELECT count(*) AS n FROM accounts')!.n);
  }

  async findAccountByEmail(email: string) {
    const r = this.one('SELECT * FROM accounts WHERE email = ?', email);
    return r ? toAccount(r) : null;
  }

  async findAccountById(id: string) {
    const r = this.one('SELECT * FROM accounts WHERE id = ?', id);
    return r ? toAccount(r) : null;
  }

  async createSession(input: { tokenHash: string; accountId: string; now: number; expiresAt: number }) {
    this.db.prepare('INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run(input.tokenHash, input.accountId, input.now, input.expiresAt);
  }

  async findSession(tokenHash: string, now: number) {
    const r = this.one('SELECT account_id, expires_at FROM sessions WHERE token_hash = ? AND expires_at > ?', tokenHash, now);
    return r ? { accountId: String(r.account_id), expiresAt: Number(r.expires_at) } : null;
  }

  async deleteSession(tokenHash: string) {
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash);
  }

  async createOperatorToken(input: { id: string; tokenHash: string; accountId: string; prefix: string; name: string; now: number }) {
    const r = this.one(
      'INSERT INTO operator_tokens (id, token_hash, account_id, prefix, name, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *',
      input.id, input.tokenHash, input.accountId, input.prefix, input.name, input.now,
    );
    return toOperatorToken(r!);
  }

  async findOperatorToken(tokenHash: string) {
    const r = this.one('SELECT * FROM operator_tokens WHERE token_hash = ? AND revoked_at IS NULL', tokenHash);
    return r ? toOperatorToken(r) : null;
  }

  async revokeOperatorToken(tokenHash: string, now: number) {
    return this.db.prepare('UPDATE operator_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL').run(now, tokenHash).changes > 0;
  }

  async createApp(input: { clientId: string; accountId: string; name: string; now: number }, audit: AuditInput) {
    return this.db.transaction(() => {
      const r = this.one(
        'INSERT INTO apps (client_id, account_id, name, panopticon_enabled, created_at) VALUES (?, ?, ?, 0, ?) RETURNING *',
        input.clientId, input.accountId, input.name, input.now,
      );
      appendAuditSync(this.db, this.auditKey, audit);
      return toApp(r!);
    }).immediate();
  }

  async listApps(accountId: string) {
    return this.all('SELECT * FROM apps WHERE account_id = ? ORDER BY created_at, client_id', accountId).map(toApp);
  }

  async findApp(accountId: string, clientId: string) {
    const r = this.one('SELECT * FROM apps WHERE account_id = ? AND client_id = ?', accountId, clientId);
    return r ? toApp(r) : null;
  }

  async updateApp(accountId: string, clientId: string, patch: { name?: string | undefined; panopticonEnabled?: boolean | undefined }, audit: (before: App, after: App) => AuditInput[]) {
    return this.db.transaction(() => {
      const before = this.one('SELECT * FROM apps WHERE account_id = ? AND client_id = ?', accountId, clientId);
      if (before === undefined) return null;
      const r = this.one(
        `UPDATE apps SET name = COALESCE(?, name), panopticon_enabled = COALESCE(?, panopticon_enabled)
         WHERE account_id = ? AND client_id = ? RETURNING *`,
        patch.name ?? null, patch.panopticonEnabled === undefined ? null : patch.panopticonEnabled ? 1 : 0, accountId, clientId,
      );
      const after = toApp(r!);
      for (const entry of audit(toApp(before), after)) appendAuditSync(this.db, this.auditKey, entry);
      return after;
    }).immediate();
  }

  async insertPak(input: NewPak, audit?: AuditInput) {
    return this.db.transaction(() => {
      const r = this.one(INSERT_PAK_SQL, numbered([input.id, input.clientId, input.keyHash, input.prefix, input.now]));
      if (r && audit) appendAuditSync(this.db, this.auditKey, audit);
      return r ? toPak(r) : null;
    }).immediate();
  }

  async rotatePak(input: NewPak & { expiresAt: number }, audit?: AuditInput) {
    return this.db.transaction(() => {
      const previous = this.all(EXPIRE_PAKS_SQL, numbered([input.expiresAt, input.now, input.clientId])).map(toPak);
      const r = this.one(INSERT_PAK_SQL, numbered([input.id, input.clientId, input.keyHash, input.prefix, input.now]));
      if (audit) appendAuditSync(this.db, this.auditKey, audit);
      return { pak: toPak(r!), previous };
    }).immediate();
  }

  async listPaks(clientId: string) {
    return this.all('SELECT * FROM paks WHERE client_id = ? ORDER BY created_at DESC, id', clientId).map(toPak);
  }

  async activePaks(clientId: string, now: number) {
    return this.all(
      'SELECT * FROM paks WHERE client_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at DESC',
      clientId, now,
    ).map(toPak);
  }

  async revokePaks(clientId: string, now: number, keyId?: string, audit?: (revoked: Pak[]) => AuditInput) {
    return this.db.transaction(() => {
      const revoked = this.all(
        `UPDATE paks SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL AND (? IS NULL OR id = ?) RETURNING *`,
        now, clientId, keyId ?? null, keyId ?? null,
      ).map(toPak);
      if (revoked.length > 0 && audit) appendAuditSync(this.db, this.auditKey, audit(revoked));
      return revoked;
    }).immediate();
  }

  async findPakForAuth(keyHash: string) {
    const r = this.one(
      `SELECT p.id, p.key_hash, p.client_id, p.expires_at, p.revoked_at, a.panopticon_enabled, a.hmac_enabled
       FROM paks p JOIN apps a ON a.client_id = p.client_id WHERE p.key_hash = ?`,
      keyHash,
    );
    return r ? toPakAuth(r) : null;
  }

  async touchPaks(lastUsed: ReadonlyMap<string, number>) {
    const update = this.db.prepare('UPDATE paks SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?');
    this.db.transaction(() => {
      for (const [id, at] of lastUsed) update.run(at, id);
    })();
  }

  async insertTraces(rows: readonly TraceRow[]): Promise<boolean[]> {
    if (rows.length === 0) return [];
    if (this.closed) throw new Error('store is closed');
    if (this.file === ':memory:') return this.commitHere(rows);
    const worker = this.commitWorker();
    const id = this.nextCommitId++;
    const done = new Promise<boolean[]>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    worker.postMessage({ id, rows } satisfies CommitRequest);
    return done;
  }

  /** The naive baseline's commit: on the main connection, as the simplest design would do it. */
  async insertTraceUnbatched(row: TraceRow): Promise<boolean> {
    const isNew = this.commitHere([row])[0] === true;
    this.traceCommitStats.commits++;
    this.traceCommitStats.rows++;
    return isNew;
  }

  private commitHere(rows: readonly TraceRow[]): boolean[] {
    this.localCommit ??= traceCommitter(this.db);
    return this.localCommit(rows);
  }

  private commitWorker(): Worker {
    if (this.worker !== null) return this.worker;
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { file: this.file, lockTimeoutMs: this.lockTimeoutMs, commitBatch: this.commitBatch }, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
    worker.on('message', (reply: CommitReply) => {
      const failure = 'error' in reply ? Object.assign(new Error(reply.error), { code: reply.code }) : null;
      if (failure !== null) this.writeHealth.failed(failure);
      else this.writeHealth.succeeded();
      if ('isNew' in reply) {
        this.traceCommitStats.commits++;
        this.traceCommitStats.rows += reply.isNew.length;
      }
      reply.ids.forEach((id, k) => {
        const waiter = this.pending.get(id);
        if (waiter === undefined) return;
        this.pending.delete(id);
        if (failure !== null) waiter.reject(failure);
        else if ('isNew' in reply) waiter.resolve(reply.isNew.slice(reply.offsets[k], reply.offsets[k + 1]));
      });
    });
    const fail = (err: Error) => {
      if (this.worker !== worker) return;
      // The next commit starts a new worker; the ones waiting on this one failed with it.
      this.worker = null;
      const waiters = [...this.pending.values()];
      this.pending.clear();
      for (const w of waiters) w.reject(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`SQLite commit worker exited (code ${code})`)));
    // The worker keeps the process alive until close() ends it, like the store's other handles
    // (PostgreSQL's pool): unref'ing it between commits let the event loop look empty while a
    // commit's reply was still on its way.
    // The worker's connection checkpoints from now on; here one would block the event loop.
    this.db.pragma('wal_autocheckpoint = 0');
    this.worker = worker;
    return worker;
  }

  async listTraces(query: Parameters<Store['listTraces']>[0]) {
    const { sql, params } = traceListQuery(query);
    return this.all(sql, numbered(params)).map(toTrace);
  }

  async countTraces(clientId: string) {
    return Number(this.one('SELECT count(*) AS n FROM traces WHERE client_id = ?', clientId)!.n);
  }

  async tracesAfter(clientId: string, afterSeq: number, limit: number) {
    return this.all('SELECT * FROM traces WHERE client_id = ? AND seq > ? ORDER BY seq LIMIT ?', clientId, afterSeq, limit).map(toTrace);
  }

  async maxTraceSeq(clientId: string) {
    return Number(this.one('SELECT coalesce(max(seq), 0) AS m FROM traces WHERE client_id = ?', clientId)!.m);
  }

  async usage(clientId: string, sinceDay: string, untilDay: string) {
    return this.all(USAGE_SQL, numbered([clientId, sinceDay, untilDay])).map(toUsage);
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
