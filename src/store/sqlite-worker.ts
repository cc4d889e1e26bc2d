/**
 * The SQLite commit worker: a thread with its own connection that runs the trace group commits.
 * better-sqlite3 is synchronous, so on the main thread every commit (its page writes and its
 * fsync) would stop the event loop; here it only stops this thread, and the main thread keeps
 * parsing and validating the requests that will ride the next commit.
 *
 * The worker is where commits group: the main thread posts each group of rows as soon as it has
 * it, without waiting for the commit before; when a commit ends, the worker takes every request
 * that arrived meanwhile (receiveMessageOnPort, up to MAX_ROWS_PER_COMMIT) into the next one. So
 * the worker never sits idle while rows wait, and no round trip to the main thread separates two
 * commits.
 *
 * The worker's connection does not fsync at COMMIT: each commit's fsync runs on the thread pool
 * while the worker writes the next transaction, and a request is answered only after an fsync that
 * started after its commit (sync-pipeline.ts has the argument why that is durable).
 *
 * Protocol: { id, rows } in; one CommitReply per fsync out, answering every request it made
 * durable. A failed commit fails every request in it at once; a request's rows are never split.
 */
import Database from 'better-sqlite3';
import { closeSync, fdatasync, openSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { configureSqlite, traceCommitter } from './sqlite-traces.js';
import { SyncPipeline } from './sync-pipeline.js';
import type { TraceRow } from './types.js';

export interface CommitRequest {
  id: number;
  rows: readonly TraceRow[];
}

/**
 * ids[k] was answered by isNew[offsets[k] .. offsets[k+1]), durable in `transactions` transactions
 * under one fsync; or every id failed with error.
 */
export type CommitReply =
  | { ids: number[]; isNew: boolean[]; offsets: number[]; transactions: number }
  | { ids: number[]; error: string; code?: string };

type Committed = Extract<CommitReply, { isNew: boolean[] }>;

/** About 40 MB of WAL at 4 KB pages. */
const WAL_PAGES_PER_CHECKPOINT = 10_000;
const CACHE_KIB = 8 * 1024;
/** A bound on one transaction, so one commit's latency (and the WAL it writes) stays bounded. */
const MAX_ROWS_PER_COMMIT = 2_000;
/**
 * fdatasyncs of the WAL at once. One: two or three at once measured no faster on this box (the
 * disk serves the flushes in turn), and each extra one is another pass of the kernel's writeback.
 */
const SYNCS_IN_FLIGHT = 1;

const port = parentPort;
if (port === null) throw new Error('sqlite-worker.js runs as a worker thread only');

const { file, lockTimeoutMs } = workerData as { file: string; lockTimeoutMs: number };
const db = new Database(file);
configureSqlite(db, lockTimeoutMs);
// This connection does the checkpoints (the main one stops), so they never stall the event loop.
// A larger WAL between checkpoints copies a page once however often its rows changed: with random
// event_ids nearly every row dirties its own index page, and the copy was a large part of a commit.
db.pragma(`wal_autocheckpoint = ${WAL_PAGES_PER_CHECKPOINT}`);
// The inserts' index pages stay cached between commits; a larger cache measured no faster (the
// cost of a commit is its WAL writes and fsync), and every megabyte here is resident memory.
db.pragma(`cache_size = -${CACHE_KIB}`);
// Durability comes from the pipeline's fdatasync of the WAL below, not from COMMIT. Checkpoints
// still sync the WAL before copying it, and a WAL restart still syncs its header.
db.pragma('synchronous = NORMAL');
const commit = traceCommitter(db);
// Reading once makes sure the WAL file exists before it is opened. It stays the same file while
// this connection is open: SQLite deletes it only when the last connection closes, and a restart
// after a checkpoint rewrites it in place. fsync flushes the file, whichever descriptor wrote it.
db.prepare('SELECT count(*) FROM schema_migrations').get();
const walFd = openSync(`${file}-wal`, 'r');

const pipeline = new SyncPipeline<Committed>({
  sync: (done) => fdatasync(walFd, (err) => done(err)),
  durable: (replies) => port.postMessage(mergeReplies(replies)),
  syncFailed: (replies, err) => {
    for (const r of replies) port.postMessage({ ids: r.ids, error: `fsync of the WAL failed: ${err.message}`, code: (err as NodeJS.ErrnoException).code });
    // The kernel may have dropped the pages that failed to write; nothing after this is provably
    // durable. Ending the worker fails what waits on it, and the store starts a new one.
    process.exit(1);
  },
  maxSyncsInFlight: SYNCS_IN_FLIGHT,
  idle: () => {
    if (closing) shutdown();
  },
});

function mergeReplies(replies: Committed[]): CommitReply {
  if (replies.length === 1) return replies[0]!;
  const merged: Committed = { ids: [], isNew: [], offsets: [0], transactions: 0 };
  for (const r of replies) {
    const base = merged.isNew.length;
    for (const id of r.ids) merged.ids.push(id);
    for (const b of r.isNew) merged.isNew.push(b);
    for (let k = 1; k < r.offsets.length; k++) merged.offsets.push(base + r.offsets[k]!);
    merged.transactions += r.transactions;
  }
  return merged;
}

let closing = false;
/** A request taken from the port that did not fit in the commit it was drained for. */
let carried: CommitRequest | null = null;

function commitPending(first: CommitRequest): void {
  const requests = [first];
  let rows = first.rows.length;
  while (carried === null && rows < MAX_ROWS_PER_COMMIT) {
    const next = receiveMessageOnPort(port!);
    if (next === undefined) break;
    const msg = next.message as CommitRequest | 'close';
    if (msg === 'close') {
      closing = true;
      break;
    }
    if (rows + msg.rows.length > MAX_ROWS_PER_COMMIT) {
      carried = msg;
      break;
    }
    requests.push(msg);
    rows += msg.rows.length;
  }
  const ids = requests.map((r) => r.id);
  let isNew: boolean[];
  try {
    isNew = commit(requests.length === 1 ? first.rows : requests.flatMap((r) => r.rows));
  } catch (err) {
    // Rolled back: nothing of it reached the WAL, so there is nothing to wait for.
    port!.postMessage({ ids, error: err instanceof Error ? err.message : String(err), code: (err as { code?: string }).code } satisfies CommitReply);
    return;
  }
  const offsets = [0];
  for (const r of requests) offsets.push(offsets[offsets.length - 1]! + r.rows.length);
  pipeline.committed({ ids, isNew, offsets, transactions: 1 });
}

let shutDown = false;
function shutdown(): void {
  if (shutDown) return;
  shutDown = true;
  closeSync(walFd);
  db.close();
  port!.close();
}

port.on('message', (msg: CommitRequest | 'close') => {
  if (msg === 'close') {
    closing = true;
    if (!pipeline.busy) shutdown();
    return;
  }
  commitPending(msg);
  while (carried !== null) {
    const next = carried;
    carried = null;
    commitPending(next);
  }
  // 'close' was drained behind the requests above: stop once their fsync has answered them.
  if (closing && !pipeline.busy) shutdown();
});
