/**
 * Traces on SQLite. Group commits run on a worker thread with a second connection (worker.ts),
 * because a commit's page writes and fsync would otherwise stop the event loop for every request
 * in flight. SQLite serialises the two connections' writes itself (WAL, one writer at a time,
 * busy_timeout). An in-memory database cannot be shared with a thread, so there the commit stays on
 * the store's own connection. commit.ts holds the one commit both run.
 */
import type Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import type { CommitReply, CommitRequest } from './worker.js';
import { sqliteQueries } from './queries.js';
import type { WriteHealth } from '../write-health.js';
import { COUNT_TRACES_SQL, MAX_TRACE_SEQ_SQL, toTrace, toUsage, traceListQuery, TRACES_AFTER_SQL, USAGE_SQL } from '../sql/traces.js';
import type { TraceQuery, TraceRow, TraceStore } from '../types/traces.js';
import { traceCommitter, type TraceCommit } from './commit.js';

/**
 * The commit worker's rows are short-lived (cloned in, bound, dropped); V8's default young
 * generation grew to tens of megabytes of resident memory for them under batch load.
 */
const WORKER_YOUNG_GENERATION_MB = 4;

export class SqliteTraceStore implements TraceStore {
  readonly commitStats = { commits: 0, rows: 0 };
  private readonly sql: ReturnType<typeof sqliteQueries>;
  private localCommit: TraceCommit | undefined;
  private worker: Worker | null = null;
  private readonly pending = new Map<number, { resolve: (isNew: boolean[]) => void; reject: (err: Error) => void }>();
  private nextCommitId = 1;
  private closed = false;

  /** `commitBatch`: PANOPTICON_COMMIT_BATCH, the most rows the commit worker merges into one transaction. */
  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly lockTimeoutMs: number,
    private readonly commitBatch: number,
    private readonly writeHealth: WriteHealth,
  ) {
    this.sql = sqliteQueries(db);
  }

  async insert(rows: readonly TraceRow[]): Promise<boolean[]> {
    if (rows.length === 0) return [];
    if (this.closed) throw new Error('store is closed');
    if (this.file === ':memory:') {
      this.localCommit ??= traceCommitter(this.db);
      const isNew = this.localCommit(rows);
      this.commitStats.commits++;
      this.commitStats.rows += rows.length;
      return isNew;
    }
    const worker = this.commitWorker();
    const id = this.nextCommitId++;
    const done = new Promise<boolean[]>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    worker.postMessage({ id, rows } satisfies CommitRequest);
    return done;
  }

  private commitWorker(): Worker {
    if (this.worker !== null) return this.worker;
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { file: this.file, lockTimeoutMs: this.lockTimeoutMs, commitBatch: this.commitBatch }, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
    worker.on('message', (reply: CommitReply) => {
      const failure = 'error' in reply ? Object.assign(new Error(reply.error), { code: reply.code }) : null;
      if (failure !== null) this.writeHealth.failed(failure);
      else this.writeHealth.succeeded();
      if ('isNew' in reply) {
        this.commitStats.commits++;
        this.commitStats.rows += reply.isNew.length;
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

  /** Ends the commit worker (after the commits it holds); the store closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (worker === null) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('close');
    const timer = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }

  async list(query: TraceQuery) {
    const { sql, params } = traceListQuery(query);
    return this.sql.all(sql, params).map(toTrace);
  }

  async count(clientId: string) {
    return Number(this.sql.one(COUNT_TRACES_SQL, [clientId])!.n);
  }

  async after(clientId: string, afterSeq: number, limit: number) {
    return this.sql.all(TRACES_AFTER_SQL, [clientId, afterSeq, limit]).map(toTrace);
  }

  async maxSeq(clientId: string) {
    return Number(this.sql.one(MAX_TRACE_SEQ_SQL, [clientId])!.m);
  }

  async usage(clientId: string, sinceDay: string, untilDay: string) {
    return this.sql.all(USAGE_SQL, [clientId, sinceDay, untilDay]).map(toUsage);
  }
}
