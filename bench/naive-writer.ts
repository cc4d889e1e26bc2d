/**
 * The benchmark's NAIVE baseline: trace ingest without group commit, one durable single-row
 * transaction per trace, awaited before the next. It lives here, not in src/, because no
 * deployment should run it; buildServer takes it through BuildOptions.traceSink.
 *
 * On SQLite it commits on the main thread with a connection of its own (as the simplest design
 * would: no worker); on PostgreSQL each row is its own insert statement, so its own commit.
 */
import Database from 'better-sqlite3';
import type { StoreLocation } from '../src/config.js';
import { StoreUnavailableError } from '../src/store/errors.js';
import { configureSqlite, traceCommitter } from '../src/store/sqlite/commit.js';
import type { Store, TraceRow } from '../src/store/types/store.js';
import type { CommittedListener, TraceSink } from '../src/traces/writer.js';

export function naiveTraceSink(location: StoreLocation, lockTimeoutMs: number): (store: Store, onCommitted: CommittedListener) => TraceSink {
  return (store, onCommitted) => {
    let commitOne: (row: TraceRow) => Promise<boolean>;
    let closeConnection = async () => {};
    if (location.engine === 'sqlite') {
      const db = new Database(location.file);
      configureSqlite(db, lockTimeoutMs);
      const commit = traceCommitter(db);
      commitOne = async (row) => commit([row])[0] === true;
      closeConnection = async () => void db.close();
    } else {
      commitOne = async (row) => (await store.traces.insert([row]))[0] === true;
    }
    const stats = { commits: 0, rows: 0 };
    let closed = false;
    return {
      stats,
      async write(rows) {
        if (closed) throw new StoreUnavailableError('writer is shutting down');
        const isNew: boolean[] = [];
        try {
          for (const row of rows) {
            const fresh = await commitOne(row);
            isNew.push(fresh);
            stats.commits++;
            stats.rows++;
            if (fresh) onCommitted(new Set([row.clientId]));
          }
        } catch (err) {
          throw new StoreUnavailableError(err instanceof Error ? err.message : String(err), { cause: err });
        }
        return isNew;
      },
      // Every write is committed before it resolves: nothing is ever queued.
      async drain() {},
      async close() {
        closed = true;
        await closeConnection();
      },
    };
  };
}
