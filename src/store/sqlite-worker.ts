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

const port = parentPort;
if (port === null) throw new Error('sqlite-worker.js runs as a worker thread only');

const db = new Database((workerData as { file: string }).file);
configureSqlite(db);
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
