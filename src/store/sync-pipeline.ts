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

export interface SyncPipelineOptions<Reply> {
  sync: Sync;
  /** Replies an fsync made durable, in commit order; each reply is delivered once. */
  durable: (replies: Reply[]) => void;
  /**
   * An fsync failed: these replies are not known to be durable. After a failed fsync the kernel
   * may have dropped the dirty pages, so a retry proves nothing; the caller must stop writing.
   */
  syncFailed: (replies: Reply[], err: Error) => void;
  /**
   * fsyncs allowed at once. A commit made while one runs need not wait for it to end before its
   * own starts: every fsync makes durable all that was written before it was called, so whichever
   * ends first answers everything it covers.
   */
  maxSyncsInFlight?: number;
  /** Called when the last fsync in flight ended and nothing waits (for a clean shutdown). */
  idle?: () => void;
}

export class SyncPipeline<Reply> {
  /** Committed and not yet answered, oldest first, with their commit sequence numbers. */
  private waiting: Array<{ seq: number; reply: Reply }> = [];
  private nextSeq = 0;
  /** The newest commit an fsync already started for covers (-1: none). */
  private coveredUpTo = -1;
  private syncsInFlight = 0;
  private failed: Error | null = null;
  private readonly maxSyncsInFlight: number;

  constructor(private readonly options: SyncPipelineOptions<Reply>) {
    this.maxSyncsInFlight = options.maxSyncsInFlight ?? 1;
  }

  /** A transaction's COMMIT returned (its WAL frames are written, not yet synced). */
  committed(reply: Reply): void {
    if (this.failed !== null) return this.options.syncFailed([reply], this.failed);
    this.waiting.push({ seq: this.nextSeq++, reply });
    this.startSync();
  }

  /** Whether a commit is unanswered or an fsync still runs. */
  get busy(): boolean {
    return this.waiting.length > 0 || this.syncsInFlight > 0;
  }

  private startSync(): void {
    if (this.failed !== null || this.syncsInFlight >= this.maxSyncsInFlight) return;
    const upTo = this.nextSeq - 1;
    if (upTo <= this.coveredUpTo) return;
    this.coveredUpTo = upTo;
    this.syncsInFlight++;
    this.options.sync((err) => {
      this.syncsInFlight--;
      if (err !== null) {
        if (this.failed === null) this.failed = err;
        const lost = this.waiting.map((w) => w.reply);
        this.waiting = [];
        if (lost.length > 0) this.options.syncFailed(lost, err);
      } else {
        let n = 0;
        while (n < this.waiting.length && this.waiting[n]!.seq <= upTo) n++;
        if (n > 0) this.options.durable(this.waiting.splice(0, n).map((w) => w.reply));
        this.startSync();
      }
      if (!this.busy) this.options.idle?.();
    });
  }
}
