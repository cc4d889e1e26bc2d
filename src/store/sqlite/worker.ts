/**
 * The SQLite commit worker: a thread with its own connection that runs the trace group commits.
 * better-sqlite3 is synchronous, so on the main thread every commit (its page writes and its
 * fsync) would stop the event loop; here it only stops this thread, and the main thread keeps
 * parsing and validating the requests that will ride the next commit.
 *
 * The worker is where commits group: the main thread posts each group of rows as soon as it has
 * it, without waiting for the commit before; when a commit ends, the worker takes every request
 * that arrived meanwhile (receiveMessageOnPort) into the next one, up to the same bound as every
 * group commit (PANOPTICON_COMMIT_BATCH, taken by group-commit.ts's takeBatch). So the worker never
 * sits idle while rows wait, and no round trip to the main thread separates two commits.
 *
 * Protocol: { id, rows } in; one CommitReply per commit out, answering every request it held (in
 * order). A failed commit fails every request in it; a request's rows are never split.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { configureSqlite, traceCommitter } from './commit.js';
import { takeBatch, type BatchSource } from '../group-commit.js';
import type { TraceRow } from '../types/store.js';

export interface CommitRequest {
  id: number;
  rows: readonly TraceRow[];
}

/** ids[k] was answered by isNew[offsets[k] .. offsets[k+1]); or every id failed with error. */
export type CommitReply =
  | { ids: number[]; isNew: boolean[]; offsets: number[] }
  | { ids: number[]; error: string; code?: string };

/** About 40 MB of WAL at 4 KB pages. */
const WAL_PAGES_PER_CHECKPOINT = 10_000;
/**
 * On a small volume the WAL may hold at most this share of the free space: a checkpoint must copy
 * the WAL into the main file, and it cannot once the WAL has taken the space the copy needs.
 */
const WAL_SHARE_OF_FREE_SPACE = 0.25;
const WAL_FLOOR_BYTES = 256 * 1024;
const FREE_SPACE_REFRESH_MS = 250;
/**
 * What the WAL reaches under wal_autocheckpoint: its pages plus one commit of 2000 (the most
 * PANOPTICON_COMMIT_BATCH allows) large rows.
 */
const WAL_CEILING_BYTES = WAL_PAGES_PER_CHECKPOINT * 4096 + 64 * 1024 * 1024;
const CACHE_KIB = 8 * 1024;

const port = parentPort;
if (port === null) throw new Error('src/store/sqlite/worker.js runs as a worker thread only');

/** `commitBatch`: PANOPTICON_COMMIT_BATCH, the most rows one transaction takes (a request's rows are never split). */
const { file, lockTimeoutMs, commitBatch } = workerData as { file: string; lockTimeoutMs: number; commitBatch: number };
const db = new Database(file);
configureSqlite(db, lockTimeoutMs);
// This connection does the checkpoints (the main one stops), so they never stall the event loop.
// A larger WAL between checkpoints copies a page once however often its rows changed: with random
// event_ids nearly every row dirties its own index page, and the copy was a large part of a commit.
db.pragma(`wal_autocheckpoint = ${WAL_PAGES_PER_CHECKPOINT}`);
// The inserts' index pages stay cached between commits; a larger cache measured no faster (the
// cost of a commit is its WAL writes and fsync), and every megabyte here is resident memory.
db.pragma(`cache_size = -${CACHE_KIB}`);
const commit = traceCommitter(db);

const walFile = `${file}-wal`;
let freeBytes = Infinity;
let freeCheckedAt = 0;

/**
 * Truncates the WAL once it outgrows its share of the free space (the automatic checkpoint,
 * PASSIVE, copies the WAL but leaves its file at full size), and after a failed commit, when
 * copying what the WAL holds into the main file is what may give a full disk room again.
 */
function boundWal(failed: boolean): void {
  const now = Date.now();
  if (now - freeCheckedAt >= FREE_SPACE_REFRESH_MS) {
    freeCheckedAt = now;
    try {
      const fsStats = fs.statfsSync(path.dirname(walFile));
      freeBytes = fsStats.bavail * fsStats.bsize;
    } catch {
      freeBytes = Infinity;
    }
  }
  const walBudget = Math.max(WAL_FLOOR_BYTES, freeBytes * WAL_SHARE_OF_FREE_SPACE);
  // With room for more than the automatic checkpoint ever lets the WAL grow to, skip the stat.
  if (!failed && walBudget > WAL_CEILING_BYTES) return;
  const walBytes = fs.statSync(walFile, { throwIfNoEntry: false })?.size ?? 0;
  if (!failed && walBytes <= walBudget) return;
  if (walBytes === 0) return;
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch {
    // Still full, or a reader holds the WAL: the next commit tries again.
  }
}

let closing = false;
/** A request taken from the port that did not fit in the commit it was drained for: the next one's first. */
let carried: CommitRequest | undefined;
/** The port as a queue: the message after the carried one is only received when looked at. */
const arrived: BatchSource<CommitRequest> = {
  peek() {
    if (carried === undefined && !closing) {
      const next = receiveMessageOnPort(port!);
      if (next !== undefined) {
        const msg = next.message as CommitRequest | 'close';
        if (msg === 'close') closing = true;
        else carried = msg;
      }
    }
    return carried;
  },
  shift() {
    const first = carried!;
    carried = undefined;
    return first;
  },
};
const rowsOf = (r: CommitRequest) => r.rows.length;

function commitPending(requests: CommitRequest[]): void {
  const ids = requests.map((r) => r.id);
  let reply: CommitReply;
  try {
    const all = requests.length === 1 ? requests[0]!.rows : requests.flatMap((r) => r.rows);
    const offsets = [0];
    for (const r of requests) offsets.push(offsets[offsets.length - 1]! + r.rows.length);
    reply = { ids, isNew: commit(all), offsets };
  } catch (err) {
    reply = { ids, error: err instanceof Error ? err.message : String(err), code: (err as { code?: string }).code };
  }
  port!.postMessage(reply);
  // After a lock timeout a checkpoint would only wait for the same lock again.
  boundWal('error' in reply && !reply.code?.startsWith('SQLITE_BUSY'));
}

function shutdown(): void {
  db.close();
  port!.close();
}

port.on('message', (msg: CommitRequest | 'close') => {
  if (msg === 'close') return shutdown();
  carried = msg;
  while (arrived.peek() !== undefined) commitPending(takeBatch(arrived, rowsOf, commitBatch));
  // 'close' was drained behind the requests above: they are answered, now stop.
  if (closing) shutdown();
});
