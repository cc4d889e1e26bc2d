/** Accounts, sessions and operator tokens on SQLite. */
import type Database from 'better-sqlite3';
import {
  ACCOUNT_BY_EMAIL_SQL, ACCOUNT_BY_ID_SQL, ANY_ACCOUNT_SQL, COUNT_ACCOUNTS_SQL, DELETE_SESSION_SQL, FIND_SESSION_SQL, FIND_TOKEN_SQL,
  INSERT_ACCOUNT_SQL, INSERT_SESSION_SQL, INSERT_TOKEN_SQL, REVOKE_TOKEN_SQL, toAccount, toOperatorToken,
} from '../sql/accounts.js';
import { numbered } from '../sql/params.js';
import type { AccountStore, CreateAccountResult, NewAccount } from '../types/accounts.js';
import { sqliteQueries } from './queries.js';

export class SqliteAccountStore implements AccountStore {
  private readonly sql: ReturnType<typeof sqliteQueries>;

  constructor(private readonly db: Database.Database) {
    this.sql = sqliteQueries(db);
  }

  async create(input: NewAccount): Promise<CreateAccountResult> {
    // Immediate: the "is there an account yet" read and the insert hold the write lock together.
    return this.db.transaction((): CreateAccountResult => {
      if (this.sql.one(ACCOUNT_BY_EMAIL_SQL, [input.email])) return { ok: false, reason: 'email_taken' };
      const isOwner = this.sql.one(ANY_ACCOUNT_SQL) === undefined;
      if (input.onlyIfFirst && !isOwner) return { ok: false, reason: 'signup_closed' };
      const row = this.sql.one(INSERT_ACCOUNT_SQL, [input.id, input.email, input.passwordHash, isOwner ? 1 : 0, input.now]);
      return { ok: true, account: toAccount(row!) };
    }).immediate();
  }

  async count() {
    return Number(this.sql.one(COUNT_ACCOUNTS_SQL)!.n);
  }

  async findByEmail(email: string) {
    const r = this.sql.one(ACCOUNT_BY_EMAIL_SQL, [email]);
    return r ? toAccount(r) : null;
  }

  async findById(id: string) {
    const r = this.sql.one(ACCOUNT_BY_ID_SQL, [id]);
    return r ? toAccount(r) : null;
  }

  async createSession(input: { tokenHash: string; accountId: string; now: number; expiresAt: number }) {
    this.db.prepare(INSERT_SESSION_SQL).run(numbered([input.tokenHash, input.accountId, input.now, input.expiresAt]));
  }

  async findSession(tokenHash: string, now: number) {
    const r = this.sql.one(FIND_SESSION_SQL, [tokenHash, now]);
    return r ? { accountId: String(r.account_id), expiresAt: Number(r.expires_at) } : null;
  }

  async deleteSession(tokenHash: string) {
    this.db.prepare(DELETE_SESSION_SQL).run(numbered([tokenHash]));
  }

  async createToken(input: { id: string; tokenHash: string; accountId: string; prefix: string; name: string; now: number }) {
    return toOperatorToken(this.sql.one(INSERT_TOKEN_SQL, [input.id, input.tokenHash, input.accountId, input.prefix, input.name, input.now])!);
  }

  async findToken(tokenHash: string) {
    const r = this.sql.one(FIND_TOKEN_SQL, [tokenHash]);
    return r ? toOperatorToken(r) : null;
  }

  async revokeToken(tokenHash: string, now: number) {
    return this.sql.all(REVOKE_TOKEN_SQL, [now, tokenHash]).length > 0;
  }
}
