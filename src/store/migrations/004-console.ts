import type { EngineMigration } from './migration.js';

/**
 * Version 4, the console (3 is reserved for a concurrent branch). The live stream reads "this
 * app's traces after seq X" on every commit; without (client_id, seq) that query walks the app's
 * whole timeline index and sorts it.
 */
const CONSOLE_SQL = `
      CREATE INDEX traces_by_app_seq ON traces(client_id, seq);
`;

export const console: EngineMigration = {
  version: 4,
  name: 'console: live stream index',
  sqlite: CONSOLE_SQL,
  postgres: CONSOLE_SQL,
};
