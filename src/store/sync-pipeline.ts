/**
 * Commits overlapped with the fsync that makes them durable.
 *
 * The SQLite commit worker writes each transaction into the WAL without syncing it
 * (synchronous=NORMAL on its connection), then makes it durable with an fdatasync of the WAL file
 * that runs on libuv's thread pool. While that fsync waits on the disk, the worker already writes
 * the next transaction; the next fsync covers every transaction written before it started. A
 * transaction's requests are answered only once an fsync that *started after its COMMIT returned*
 * has finished, so a 202 still means the row is on disk: a WAL frame is written (by write(2)) before
 * COMMIT returns, and fsync flushes everything written to the file before it was called.
 *
 * Recovery after a power loss replays the WAL up to the last valid commit frame (frames carry
 * chained checksums), so a transaction whose frames were only partly on disk is dropped whole, and
 * it was never acknowledged.
 *
 * Pure logic: the worker passes the real fdatasync; tests pass one they control.
 */
export type Sync = (done: (err: Error | null) => void) => void;

export class SyncPipeline<Reply> {
  /** Committed, waiting for an fsync that has not started yet. */
  private waiting: Reply[] = [];
  private syncing = false;
  private failed: Error | null = null;

  constructor(
    private readonly sync: Sync,
    /** Every reply an fsync made durable, in commit order, once per fsync. */
    private readonly durable: (replies: Reply[]) => void,
    /**
     * The fsync failed: these replies are not known to be durable. After a failed fsync the kernel
     * may have dropped the dirty pages, so a retry proves nothing; the caller must stop writing.
     */
    private readonly syncFailed: (replies: Reply[], err: Error) => void,
  ) {}

  /** A transaction's COMMIT returned (its WAL frames are written, not yet synced). */
  committed(reply: Reply): void {
    if (this.failed !== null) return this.syncFailed([reply], this.failed);
    this.waiting.push(reply);
    if (!this.syncing) this.startSync();
  }

  /** Whether any committed transaction still waits for its fsync. */
  get busy(): boolean {
    return this.syncing || this.waiting.length > 0;
  }

  private startSync(): void {
    const covered = this.waiting;
    this.waiting = [];
    this.syncing = true;
    this.sync((err) => {
      this.syncing = false;
      if (err !== null) {
        this.failed = err;
        const all = covered.concat(this.waiting);
        this.waiting = [];
        this.syncFailed(all, err);
        return;
      }
      this.durable(covered);
      if (this.waiting.length > 0) this.startSync();
    });
  }
}
