/**
 * Group commit. A request's rows join a queue and wait; one commit at a time takes everything
 * queued (up to a bound) and writes it in one durable transaction. Requests that arrive while a
 * commit is in flight ride the next one, so under load many requests share one fsync and
 * throughput grows with load. A request is answered only after its own commit returned.
 *
 * The rows of one request are never split across commits: either all of them are durable or the
 * request fails with `store_unavailable`.
 */
import { StoreUnavailableError } from '../store/errors.js';
import type { Store, TraceRow } from '../store/types.js';

interface PendingGroup {
  rows: readonly TraceRow[];
  resolve: (isNew: boolean[]) => void;
  reject: (err: unknown) => void;
}

export class TraceWriter {
  private queue: PendingGroup[] = [];
  private queuedRows = 0;
  private inFlight = 0;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  /** Commits and rows written, for the benchmark's "where the time goes". */
  readonly stats = { commits: 0, rows: 0 };

  constructor(
    private readonly store: Store,
    private readonly maxBatchRows: number,
    private readonly maxInFlight = 1,
    private readonly maxQueuedRows = 100_000,
    /** `per-request` is the naive design (one durable commit per row), kept only as the benchmark's baseline. */
    private readonly mode: 'group-commit' | 'per-request' = 'group-commit',
    /** Called after each commit with the apps that got new traces (live views); must not throw. */
    private readonly onCommitted?: (clientIds: ReadonlySet<string>) => void,
  ) {}

  private committed(rows: readonly TraceRow[], isNew: readonly boolean[]): void {
    if (this.onCommitted === undefined) return;
    const apps = new Set<string>();
    for (let i = 0; i < rows.length; i++) if (isNew[i]) apps.add(rows[i]!.clientId);
    if (apps.size > 0) this.onCommitted(apps);
  }

  /** Resolves with, per row, whether it was new; rejects with StoreUnavailableError. */
  write(rows: readonly TraceRow[]): Promise<boolean[]> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('writer is shutting down'));
    if (this.mode === 'per-request') return this.writeUnbatched(rows);
    // Past this much backlog the store is not keeping up; shed load instead of growing memory.
    if (this.queuedRows + rows.length > this.maxQueuedRows) return Promise.reject(new StoreUnavailableError('write queue full'));
    return new Promise<boolean[]>((resolve, reject) => {
      this.queue.push({ rows, resolve, reject });
      this.queuedRows += rows.length;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    // setImmediate lets every request already readable on the sockets join this commit.
    setImmediate(() => {
      this.scheduled = false;
      void this.commitNext();
    });
  }

  private async commitNext(): Promise<void> {
    if (this.queue.length === 0 || this.inFlight >= this.maxInFlight) return;
    const groups: PendingGroup[] = [];
    let count = 0;
    while (this.queue.length > 0 && (groups.length === 0 || count + this.queue[0]!.rows.length <= this.maxBatchRows)) {
      const group = this.queue.shift()!;
      groups.push(group);
      count += group.rows.length;
    }
    this.queuedRows -= count;
    const rows = groups.length === 1 ? groups[0]!.rows : groups.flatMap((g) => g.rows);
    this.inFlight++;
    this.schedule();
    try {
      const isNew = await this.store.insertTraces(rows);
      this.stats.commits++;
      this.stats.rows += rows.length;
      this.committed(rows, isNew);
      let offset = 0;
      for (const g of groups) {
        g.resolve(isNew.slice(offset, offset + g.rows.length));
        offset += g.rows.length;
      }
    } catch (err) {
      const failure = new StoreUnavailableError(err instanceof Error ? err.message : String(err), { cause: err });
      for (const g of groups) g.reject(failure);
    } finally {
      this.inFlight--;
      this.schedule();
      if (this.inFlight === 0 && this.queue.length === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  private async writeUnbatched(rows: readonly TraceRow[]): Promise<boolean[]> {
    const isNew: boolean[] = [];
    try {
      for (const row of rows) {
        isNew.push(await this.store.insertTraceUnbatched(row));
        this.committed([row], [isNew[isNew.length - 1]!]);
        this.stats.commits++;
        this.stats.rows++;
      }
    } catch (err) {
      throw new StoreUnavailableError(err instanceof Error ? err.message : String(err), { cause: err });
    }
    return isNew;
  }

  /** Waits until every queued row is committed (or failed). */
  async drain(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
  }
}
