/** Statements and row mapping of applications, shared by both engines. */
import { type Row, num } from './row.js';
import type { App } from '../types/apps.js';

export const toApp = (r: Row): App => ({
  clientId: String(r.client_id),
  accountId: String(r.account_id),
  name: String(r.name),
  panopticonEnabled: Boolean(r.panopticon_enabled),
  hmacEnabled: Boolean(r.hmac_enabled),
  keepArguments: Boolean(r.keep_arguments),
  createdAt: num(r.created_at),
});

export const INSERT_APP_SQL = 'INSERT INTO apps (client_id, account_id, name, panopticon_enabled, created_at) VALUES ($1, $2, $3, FALSE, $4) RETURNING *';
export const LIST_APPS_SQL = 'SELECT * FROM apps WHERE account_id = $1 ORDER BY created_at, client_id';
export const FIND_APP_SQL = 'SELECT * FROM apps WHERE account_id = $1 AND client_id = $2';
/** A null leaves the column as it is; `panopticon_enabled` is bound as 1/0 (see INSERT_ACCOUNT_SQL). */
export const UPDATE_APP_SQL = `UPDATE apps SET name = COALESCE($1, name), panopticon_enabled = COALESCE($2, panopticon_enabled)
  WHERE account_id = $3 AND client_id = $4 RETURNING *`;
