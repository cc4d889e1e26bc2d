/** Statements and row mapping of accounts, sessions and operator tokens, shared by both engines. */
import { type Row, num, numOrNull } from './row.js';
import type { Account, OperatorToken } from '../types/accounts.js';

export const toAccount = (r: Row): Account => ({
  id: String(r.id),
  email: String(r.email),
  passwordHash: String(r.password_hash),
  isOwner: Boolean(r.is_owner),
  createdAt: num(r.created_at),
});

export const toOperatorToken = (r: Row): OperatorToken => ({
  id: String(r.id),
  accountId: String(r.account_id),
  prefix: String(r.prefix),
  name: String(r.name),
  createdAt: num(r.created_at),
  lastUsedAt: numOrNull(r.last_used_at),
});

export const ACCOUNT_BY_EMAIL_SQL = 'SELECT * FROM accounts WHERE email = $1';
export const ACCOUNT_BY_ID_SQL = 'SELECT * FROM accounts WHERE id = $1';
export const ANY_ACCOUNT_SQL = 'SELECT 1 FROM accounts LIMIT 1';
export const COUNT_ACCOUNTS_SQL = 'SELECT count(*) AS n FROM accounts';
/** `is_owner` is bound as 1/0: an INTEGER on SQLite, and PostgreSQL's boolean input reads '1'/'0'. */
export const INSERT_ACCOUNT_SQL = 'INSERT INTO accounts (id, email, password_hash, is_owner, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *';

export const INSERT_SESSION_SQL = 'INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)';
export const FIND_SESSION_SQL = 'SELECT account_id, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2';
export const DELETE_SESSION_SQL = 'DELETE FROM sessions WHERE token_hash = $1';

export const INSERT_TOKEN_SQL = 'INSERT INTO operator_tokens (id, token_hash, account_id, prefix, name, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *';
export const FIND_TOKEN_SQL = 'SELECT * FROM operator_tokens WHERE token_hash = $1 AND revoked_at IS NULL';
export const REVOKE_TOKEN_SQL = 'UPDATE operator_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL RETURNING id';
