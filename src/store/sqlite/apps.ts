/** Applications on SQLite; every change is one immediate transaction with its audit entries. */
import type Database from 'better-sqlite3';
import type { AuditKey } from '../../crypto/audit-key.js';
import { FIND_APP_SQL, INSERT_APP_SQL, LIST_APPS_SQL, toApp, UPDATE_APP_SQL } from '../sql/apps.js';
import type { App, AppPatch, AppStore } from '../types/apps.js';
import type { AuditInput } from '../types/audit.js';
import { appendAuditSync } from './audit.js';
import { sqliteQueries } from './queries.js';

export class SqliteAppStore implements AppStore {
  private readonly sql: ReturnType<typeof sqliteQueries>;

  constructor(private readonly db: Database.Database, private readonly auditKey: AuditKey) {
    this.sql = sqliteQueries(db);
  }

  async create(input: { clientId: string; accountId: string; name: string; now: number }, audit: AuditInput) {
    return this.db.transaction(() => {
      const r = this.sql.one(INSERT_APP_SQL, [input.clientId, input.accountId, input.name, input.now]);
      appendAuditSync(this.db, this.auditKey, audit);
      return toApp(r!);
    }).immediate();
  }

  async list(accountId: string) {
    return this.sql.all(LIST_APPS_SQL, [accountId]).map(toApp);
  }

  async find(accountId: string, clientId: string) {
    const r = this.sql.one(FIND_APP_SQL, [accountId, clientId]);
    return r ? toApp(r) : null;
  }

  async update(accountId: string, clientId: string, patch: AppPatch, audit: (before: App, after: App) => AuditInput[]) {
    return this.db.transaction(() => {
      const before = this.sql.one(FIND_APP_SQL, [accountId, clientId]);
      if (before === undefined) return null;
      const enabled = patch.panopticonEnabled === undefined ? null : patch.panopticonEnabled ? 1 : 0;
      const after = toApp(this.sql.one(UPDATE_APP_SQL, [patch.name ?? null, enabled, accountId, clientId])!);
      for (const entry of audit(toApp(before), after)) appendAuditSync(this.db, this.auditKey, entry);
      return after;
    }).immediate();
  }
}
