/**
 * A versioned migration. Each is applied once, in order, inside a transaction, and recorded in
 * `schema_migrations`; never edit one that has shipped, add the next (a file NNN-name.ts, listed in
 * index.ts). Most are written once for both engines (integers for times and flags, TEXT for JSON).
 */
export interface EngineMigration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
  /**
   * After the SQL, in the same transaction: close every unkeyed audit chain with a keyed
   * `audit.keyed` entry (src/store/sql/guard.ts, sealUnkeyedInput). Needs the audit key, so it is
   * code the engines run, not SQL.
   */
  sealUnkeyedAudit?: boolean;
}

/** One engine's view of a migration. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  sealUnkeyedAudit?: boolean;
}
