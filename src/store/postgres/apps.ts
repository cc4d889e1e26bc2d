/** Applications on PostgreSQL; a change holds the app row, which orders it with the app's other governance changes. */
import { FIND_APP_SQL, INSERT_APP_SQL, LIST_APPS_SQL, toApp, UPDATE_APP_SQL } from '../sql/apps.js';
import type { App, AppPatch, AppStore } from '../types/apps.js';
import type { AuditInput } from '../types/audit.js';
import { appendAuditTx } from './audit.js';
import { type PgDb } from './db.js';

type Row = Record<string, unknown>;

export class PostgresAppStore implements AppStore {
  constructor(private readonly db: PgDb) {}

  async create(input: { clientId: string; accountId: string; name: string; now: number }, audit: AuditInput) {
    return this.db.tx(async (c) => {
      const { rows } = await c.query(INSERT_APP_SQL, [input.clientId, input.accountId, input.name, input.now]);
      await appendAuditTx(c, this.db.auditKey, audit);
      return toApp(rows[0] as Row);
    });
  }

  async list(accountId: string) {
    return (await this.db.q(LIST_APPS_SQL, [accountId])).map(toApp);
  }

  async find(accountId: string, clientId: string) {
    const [r] = await this.db.q(FIND_APP_SQL, [accountId, clientId]);
    return r ? toApp(r) : null;
  }

  async update(accountId: string, clientId: string, patch: AppPatch, audit: (before: App, after: App) => AuditInput[]) {
    return this.db.tx(async (c) => {
      const before = (await c.query(`${FIND_APP_SQL} FOR NO KEY UPDATE`, [accountId, clientId])).rows[0] as Row | undefined;
      if (before === undefined) return null;
      const enabled = patch.panopticonEnabled === undefined ? null : patch.panopticonEnabled ? 1 : 0;
      const after = toApp((await c.query(UPDATE_APP_SQL, [patch.name ?? null, enabled, accountId, clientId])).rows[0] as Row);
      for (const entry of audit(toApp(before), after)) await appendAuditTx(c, this.db.auditKey, entry);
      return after;
    });
  }
}
