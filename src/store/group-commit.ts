/**
 * Group commit, the one implementation every durable write queue uses (trace ingest's TraceWriter,
 * the guard's check records, and the SQLite commit worker's drain through `takeBatch`).
 *
 * A caller's item joins a queue and waits; when a commit slot is free, one commit takes everything
 * queued, in order, up to one bound (`maxBatch`, PANOPTICON_COMMIT_BATCH), and writes it in one
 * durable transaction. Items that arrive while commits are in flight ride the next one, so under
 * load many callers share one fsync and throughput grows with load.
 *
 * - An item is never split: a commit takes whole items, the first one even when it alone is
 *   heavier than the bound (it then commits alone).
 * - Each item is answered only after the commit holding it returned: with its own result (the
 *   commit answers one per item, in order), or with the commit's error, which every item of that
 *   commit gets.
 * - At most `maxInFlight` commits run at once (1: one after the other; more where the engine
 *   overlaps them).
 * - Backpressure: past `maxQueued` waiting weight, `write` refuses at once with
 *   StoreUnavailableError (a 503 store_unavailable), rather than growing memory.
 * - `drain` waits until nothing is queued or in flight; `close` drains, then refuses new writes.
 */
import { StoreUnavailableError } from './errors.js';

/** Where `takeBatch` takes from: look at the next item without taking it, then take it. */
export interface BatchSource<T> {
  peek(): T | undefined;
  shift(): T;
}

/**
 * The next commit's items: the first always, then the following ones in order while their total
 * weight stays within `maxBatch`. Stops at the first item that does not fit (it leads the next
 * batch), so order is kept and no item is split.
 */
export function takeBatch<T>(source: BatchSource<T>, weight: (item: T) => number, maxBatch: number): T[] {
  const batch: T[] = [];
  let total = 0;
  for (let next = source.peek(); next !== undefined; next = source.peek()) {
    const w = weight(next);
    if (batch.length > 0 && total + w > maxBatch) break;
    batch.push(source.shift());
    total += w;
  }
  return batch;
}

/** Waiting weight past which `write` refuses, unless the owner sets its own. */
export const DEFAULT_MAX_QUEUED = 100_000;

export interface GroupCommitOptions<T> {
  /** Most weight one commit takes (PANOPTICON_COMMIT_BATCH). */
  maxBatch: number;
  /** Commits running at once; default 1. */
  maxInFlight?: number;
  /** Most weight waiting for a commit; default DEFAULT_MAX_QUEUED. */
  maxQueued?: number;
  /** An item's weight (a trace request: its rows); default 1. */
  weight?: (item: T) => number;
}

interface Pending<T, R> {
  item: T;
  weight: number;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

const ONE = () => 1;
const weightOf = (p: { weight: number }) => p.weight;

export class GroupCommit<T, R = void> {
  private readonly queue: Array<Pending<T, R>> = [];
  private readonly source: BatchSource<Pending<T, R>> = {
    peek: () => this.queue[0],
    shift: () => this.queue.shift()!,
  };
  private readonly weight: (item: T) => number;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private queuedWeight = 0;
  private inFlight = 0;
  private scheduled = false;
  private closed = false;
  private idle: Array<() => void> = [];

  /** `commit` writes the items durably and answers one result per item, in order; or throws. */
  constructor(private readonly commit: (items: T[]) => Promise<R[]>, options: GroupCommitOptions<T>) {
    this.weight = options.weight ?? ONE;
    this.maxBatch = options.maxBatch;
    this.maxInFlight = options.maxInFlight ?? 1;
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  }

  /** Resolves with the item's result once its commit returned; rejects with that commit's error. */
  write(item: T): Promise<R> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('group commit is closed'));
    const weight = this.weight(item);
    // Past this much backlog the store is not keeping up: shed load instead of growing memory.
    if (this.queuedWeight + weight > this.maxQueued) return Promise.reject(new StoreUnavailableError('write queue full'));
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, weight, resolve, reject });
      this.queuedWeight += weight;
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
    const batch = takeBatch(this.source, weightOf, this.maxBatch);
    for (const p of batch) this.queuedWeight -= p.weight;
    this.inFlight++;
    this.schedule();
    try {
      const results = await this.commit(batch.map((p) => p.item));
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i] as R);
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.inFlight--;
      this.schedule();
      if (this.inFlight === 0 && this.queue.length === 0) for (const w of this.idle.splice(0)) w();
    }
  }

  /** Waits until every queued item is committed (or failed), those queued meanwhile included. */
  async drain(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /** Drains, then refuses new writes with StoreUnavailableError. */
  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
  }
}
