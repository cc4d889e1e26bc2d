import type { EngineMigration } from './migration.js';

/**
 * Version 5: the row /healthz writes to find out whether the store takes writes (after a write
 * failed: a full disk, a held lock, a read-only database).
 */
const HEALTH_SQL = `
      CREATE TABLE health_probe (id INTEGER PRIMARY KEY, at BIGINT NOT NULL);
`;

export const healthProbe: EngineMigration = {
  version: 5,
  name: 'health probe',
  sqlite: HEALTH_SQL,
  postgres: HEALTH_SQL,
};
