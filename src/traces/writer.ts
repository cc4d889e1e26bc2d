/**
 * Trace ingest's group commit (src/store/group-commit.ts): a request's rows are one item, weighing
 * as many rows as it holds; a commit takes the rows of every request queued, up to
 * PANOPTICON_COMMIT_BATCH rows, and writes them in one durable transaction. A request is answered
 * only after its own commit returned, with whether each of its rows was new.
 *
 * The rows of one request are never split across commits: either all of them are durable or the
 * request fails with `store_unavailable` (every failure of a commit is reported as that).
 */
import { GroupCommit } from '../store/group-commit.js';
import { StoreUnavailableError } from '../store/errors.js';
import type { Store, TraceRow } from '../store/types/store.js';

/**
 * What trace ingest writes through: TraceWriter below, or a replacement given to buildServer (the
 * benchmark's naive baseline, bench/naive-writer.ts).
 */
export interface TraceSink {
  /** Commits and rows written, for the benchmark's "where the time goes". */
  readonly stats: { commits: number; rows: number };
  /** Resolves with, per row, whether it was new; rejects with StoreUnavailableError. */
  write(rows: readonly TraceRow[]): Promise<boolean[]>;
  /** Waits until every queued row is committed (or failed). */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** Called after each commit with the apps that got new traces (live views); must not throw. */
export type CommittedListener = (clientIds: ReadonlySet<string>) => void;

export class TraceWriter implements TraceSink {
  private readonly commits: GroupCommit<readonly TraceRow[], boolean[]>;
  private closed = false;
  /** Commits and rows written, for the benchmark's "where the time goes". */
  readonly stats = { commits: 0, rows: 0 };

  constructor(
    private readonly store: Store,
    maxBatchRows: number,
    maxInFlight = 1,
    maxQueuedRows = 100_000,
    private readonly onCommitted?: CommittedListener,
  ) {
    this.commits = new GroupCommit((groups) => this.commitGroups(groups), {
      maxBatch: maxBatchRows,
      maxInFlight,
      maxQueued: maxQueuedRows,
      weight: (rows) => rows.length,
    });
  }

  private committed(rows: readonly TraceRow[], isNew: readonly boolean[]): void {
    if (this.onCommitted === undefined) return;
    const apps = new Set<string>();
    for (let i = 0; i < rows.length; i++) if (isNew[i]) apps.add(rows[i]!.clientId);
    if (apps.size > 0) this.onCommitted(apps);
  }

  /** Resolves with, per row, whether it was new; rejects with StoreUnavailableError. */
  write(rows: readonly TraceRow[]): Promise<boolean[]> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('writer is shutting down'));
    return this.commits.write(rows);
  }

  private async commitGroups(groups: Array<readonly TraceRow[]>): Promise<boolean[][]> {
    try {
      const rows = groups.length === 1 ? groups[0]! : groups.flat();
      const isNew = await this.store.traces.insert(rows);
      this.stats.commits++;
      this.stats.rows += rows.length;
      this.committed(rows, isNew);
      if (groups.length === 1) return [isNew];
      const answers: boolean[][] = [];
      let offset = 0;
      for (const g of groups) {
        answers.push(isNew.slice(offset, offset + g.length));
        offset += g.length;
      }
      return answers;
    } catch (err) {
      throw new StoreUnavailableError(err instanceof Error ? err.message : String(err), { cause: err });
    }
  }

  /** Waits until every queued row is committed (or failed). */
  drain(): Promise<void> {
    return this.commits.drain();
  }

  async close(): Promise<void> {
    await this.commits.close();
    this.closed = true;
  }
}
