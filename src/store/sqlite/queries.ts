/** Running the shared `$n` statements (src/store/sql/) on a better-sqlite3 connection. */
import type Database from 'better-sqlite3';
import { numbered } from '../sql/params.js';
import type { Row } from '../sql/row.js';

export function sqliteQueries(db: Database.Database) {
  return {
    /** The first row, or undefined. */
    one(sql: string, params: readonly unknown[] = []): Row | undefined {
      return db.prepare(sql).get(numbered(params)) as Row | undefined;
    },
    all(sql: string, params: readonly unknown[] = []): Row[] {
      return db.prepare(sql).all(numbered(params)) as Row[];
    },
  };
}
