/**
 * The SQLite commit worker: a thread with its own connection that runs the trace group commits.
 * better-sqlite3 is synchronous, so on the main thread every commit (its page writes and its
 * fsync) would stop the event loop; here it only stops this thread, and the main thread keeps
 * parsing and validating the requests that will ride the next commit.
 *
 * Protocol: { id, rows } in; { id, isNew } or { id, error } out, one answer per message, in order.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { configureSqlite, traceCommitter } from './sqlite-traces.js';
import type { TraceRow } from './types.js';

export interface CommitRequest {
  id: number;
  rows: readonly TraceRow[];
}

export type CommitReply = { id: number; isNew: boolean[] } | { id: number; error: string; code?: string };

/** About 40 MB of WAL at 4 KB pages. */
const WAL_PAGES_PER_CHECKPOINT = 10_000;
const CACHE_KIB = 16 * 1024;

const port = parentPort;
if (port === null) throw new Error('sqlite-worker.js runs as a worker thread only');

const { file, lockTimeoutMs } = workerData as { file: string; lockTimeoutMs: number };
const db = new Database(file);
configureSqlite(db, lockTimeoutMs);
// This connection does the checkpoints (the main one stops), so they never stall the event loop.
// A larger WAL between checkpoints copies a page once however often its rows changed: with random
// event_ids nearly every row dirties its own index page, and the copy was a large part of a commit.
db.pragma(`wal_autocheckpoint = ${WAL_PAGES_PER_CHECKPOINT}`);
// Each insert descends the event_id index at a random leaf; a bigger page cache keeps those pages
// in memory instead of reading them back from the file.
db.pragma(`cache_size = -${CACHE_KIB}`);
const commit = traceCommitter(db);

port.on('message', (msg: CommitRequest | 'close') => {
  if (msg === 'close') {
    db.close();
    port.close();
    return;
  }
  let reply: CommitReply;
  try {
    reply = { id: msg.id, isNew: commit(msg.rows) };
  } catch (err) {
    reply = { id: msg.id, error: err instanceof Error ? err.message : String(err), code: (err as { code?: string }).code };
  }
  port.postMessage(reply);
});
