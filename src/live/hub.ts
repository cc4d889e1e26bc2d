/**
 * The live trace hub of one node. Ingestion publishes `traces_committed` after each durable group
 * commit (on PostgreSQL through NOTIFY, so every node hears every node's commits); the hub then
 * reads the app's new traces from the store, once per app however many streams watch it, and hands
 * each stream the rows it has not had yet.
 *
 * Why reads overlap: on PostgreSQL several commits are in flight at once (two per node, several
 * nodes), and `seq` is taken at insert time, not at commit time, so seq 105 can become visible
 * before seq 103. Reading only `seq > last seen` would skip 103 for good. So each read starts below
 * the last seen seq, at the highest seq that was already visible `overlapMs` ago: a row still
 * invisible after that long would be a commit stuck longer than the lock timeout, which fails
 * instead. Rows of the overlap are filtered out per stream by seq, so nothing is sent twice.
 * SQLite commits one at a time in seq order, so its overlap is zero.
 */
import type { Store, StoredTrace, TraceStatus, TraceStore } from '../store/types/store.js';

/** What the hub reads: the signals, and the traces after a seq. */
export type LiveStore = Pick<Store, 'subscribe'> & { traces: Pick<TraceStore, 'after' | 'maxSeq'> };

/** How often every watched app is read while other nodes' commit signals cannot arrive. */
const DEAF_POLL_MS = 250;

export interface LiveFilter {
  tool?: string | undefined;
  status?: TraceStatus | undefined;
  userSub?: string | undefined;
}

export interface LiveSubscriber {
  /** Rows new to this stream that match its filter, ascending by seq except for late commits. */
  send(rows: StoredTrace[]): void;
  /** The store failed while reading for this stream; it should end so the client resumes. */
  fail(err: unknown): void;
}

interface Stream {
  subscriber: LiveSubscriber;
  filter: LiveFilter;
  /** Rows at or below this seq are never sent (the client had them, or asked to start after). */
  start: number;
  /** Seqs above the app's read floor that this stream has already been given (or filtered out). */
  seen: Set<number>;
  /** Highest seq this stream has been given or skipped. */
  cursor: number;
}

interface AppFeed {
  streams: Set<Stream>;
  /** (time of a read, highest seq visible then), oldest first: where overlapping reads start. */
  history: Array<{ at: number; maxSeq: number }>;
  reading: boolean;
  dirty: boolean;
  timer: NodeJS.Timeout | undefined;
  lastReadAt: number;
}

export interface LiveHubOptions {
  /** How far back (ms) a read re-reads to catch commits that became visible out of seq order. */
  overlapMs: number;
  /** At most one read per app per this many ms, however many commits arrive. */
  coalesceMs?: number;
  /** Rows per store read; a read pages until it has everything. */
  pageSize?: number;
  now?: () => number;
}

export class LiveHub {
  private readonly feeds = new Map<string, AppFeed>();
  private readonly unsubscribe: () => void;
  private readonly coalesceMs: number;
  private readonly pageSize: number;
  private readonly now: () => number;
  private closed = false;
  private deafTimer: NodeJS.Timeout | undefined;

  constructor(private readonly store: LiveStore, private readonly options: LiveHubOptions) {
    this.coalesceMs = options.coalesceMs ?? 100;
    this.pageSize = options.pageSize ?? 500;
    this.now = options.now ?? Date.now;
    this.unsubscribe = store.subscribe((signal) => {
      if (signal.kind === 'signals_lost') this.pollWhileDeaf();
      if (signal.kind === 'signals_restored') this.stopPolling();
      if (signal.kind !== 'traces_committed') return;
      if (signal.clientIds.includes('*')) for (const id of this.feeds.keys()) this.poke(id);
      else for (const id of signal.clientIds) this.poke(id);
    });
  }

  /**
   * Other nodes' commits are not signalled while the listener is down: read every watched app on
   * a short period instead, so streams keep showing them (late, never lost).
   */
  private pollWhileDeaf(): void {
    if (this.deafTimer !== undefined || this.closed) return;
    this.deafTimer = setInterval(() => {
      for (const id of this.feeds.keys()) this.poke(id);
    }, DEAF_POLL_MS);
    this.deafTimer.unref();
  }

  private stopPolling(): void {
    if (this.deafTimer !== undefined) clearInterval(this.deafTimer);
    this.deafTimer = undefined;
  }

  /** Streams open on this node (for tests and shutdown). */
  get size(): number {
    let n = 0;
    for (const f of this.feeds.values()) n += f.streams.size;
    return n;
  }

  /**
   * Starts a stream of the app's traces after `after` (null: from now on). Resolves with the seq the
   * stream starts after, once the stream is registered; rows after it follow through `send`.
   */
  async subscribe(clientId: string, after: number | null, filter: LiveFilter, subscriber: LiveSubscriber): Promise<{ start: number; close: () => void }> {
    const start = after ?? (await this.store.traces.maxSeq(clientId));
    const stream: Stream = { subscriber, filter, start, seen: new Set(), cursor: start };
    let feed = this.feeds.get(clientId);
    if (feed === undefined) {
      feed = { streams: new Set(), history: [], reading: false, dirty: false, timer: undefined, lastReadAt: 0 };
      this.feeds.set(clientId, feed);
    }
    feed.streams.add(stream);
    // A resumed stream may have missed rows while it was away; a fresh one may race a commit.
    this.poke(clientId);
    const close = () => {
      const f = this.feeds.get(clientId);
      if (f === undefined) return;
      f.streams.delete(stream);
      if (f.streams.size === 0) {
        if (f.timer !== undefined) clearTimeout(f.timer);
        this.feeds.delete(clientId);
      }
    };
    return { start, close };
  }

  /** Asks for a read of the app soon (coalesced); called on every commit signal. */
  poke(clientId: string): void {
    const feed = this.feeds.get(clientId);
    if (feed === undefined || this.closed) return;
    if (feed.reading) {
      feed.dirty = true;
      return;
    }
    if (feed.timer !== undefined) return;
    const wait = Math.max(0, feed.lastReadAt + this.coalesceMs - this.now());
    feed.timer = setTimeout(() => {
      feed.timer = undefined;
      void this.read(clientId, feed);
    }, wait);
  }

  /**
   * Where overlapping reads start: the highest seq visible at the newest read that is at least
   * overlapMs old (-Infinity when there is none yet, i.e. each stream's start). Null: no overlap.
   */
  private floorOf(feed: AppFeed, now: number): number | null {
    if (this.options.overlapMs <= 0) return null;
    let floor = -Infinity;
    let keepFrom = 0;
    for (let i = 0; i < feed.history.length; i++) {
      const h = feed.history[i]!;
      if (h.at > now - this.options.overlapMs) break;
      floor = h.maxSeq;
      keepFrom = i;
    }
    feed.history.splice(0, keepFrom);
    return floor;
  }

  private async read(clientId: string, feed: AppFeed): Promise<void> {
    if (feed.streams.size === 0 || this.closed) return;
    feed.reading = true;
    feed.dirty = false;
    const now = this.now();
    feed.lastReadAt = now;
    const floor = this.floorOf(feed, now);
    const streams = [...feed.streams];
    const fromOf = (s: Stream) => Math.max(s.start, floor === null ? s.cursor : Math.min(s.cursor, floor));
    const froms = new Map(streams.map((s) => [s, fromOf(s)]));
    let from = Math.min(...froms.values());
    let maxSeq = feed.history.at(-1)?.maxSeq ?? from;
    try {
      for (;;) {
        const rows = await this.store.traces.after(clientId, from, this.pageSize);
        for (const stream of streams) {
          if (!feed.streams.has(stream)) continue;
          const streamFrom = froms.get(stream)!;
          const fresh: StoredTrace[] = [];
          for (const row of rows) {
            if (row.seq <= streamFrom || stream.seen.has(row.seq)) continue;
            stream.seen.add(row.seq);
            if (row.seq > stream.cursor) stream.cursor = row.seq;
            if (matches(row, stream.filter)) fresh.push(row);
          }
          if (fresh.length > 0) stream.subscriber.send(fresh);
        }
        if (rows.length > 0) {
          from = rows[rows.length - 1]!.seq;
          maxSeq = Math.max(maxSeq, from);
        }
        if (rows.length < this.pageSize) break;
      }
      feed.history.push({ at: now, maxSeq });
      // Later reads start at or above this read's start (the floor only rises), so seqs at or below
      // it can never be read again: forget them, keeping `seen` to about one overlap window.
      for (const stream of streams) {
        const gone = floor === null ? stream.cursor : froms.get(stream)!;
        for (const seq of stream.seen) if (seq <= gone) stream.seen.delete(seq);
      }
    } catch (err) {
      for (const stream of streams) if (feed.streams.has(stream)) stream.subscriber.fail(err);
    } finally {
      feed.reading = false;
      if (feed.dirty) this.poke(clientId);
    }
  }

  close(): void {
    this.closed = true;
    this.stopPolling();
    this.unsubscribe();
    for (const feed of this.feeds.values()) if (feed.timer !== undefined) clearTimeout(feed.timer);
    this.feeds.clear();
  }
}

function matches(row: StoredTrace, f: LiveFilter): boolean {
  return (f.tool === undefined || row.tool === f.tool) && (f.status === undefined || row.status === f.status) && (f.userSub === undefined || row.userSub === f.userSub);
}
