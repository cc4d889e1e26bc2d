/** Accounts, sessions and operator tokens on PostgreSQL. */
import {
  ACCOUNT_BY_EMAIL_SQL, ACCOUNT_BY_ID_SQL, ANY_ACCOUNT_SQL, COUNT_ACCOUNTS_SQL, DELETE_SESSION_SQL, FIND_SESSION_SQL, FIND_TOKEN_SQL,
  INSERT_ACCOUNT_SQL, INSERT_SESSION_SQL, INSERT_TOKEN_SQL, REVOKE_TOKEN_SQL, toAccount, toOperatorToken,
} from '../sql/accounts.js';
import type { AccountStore, CreateAccountResult, NewAccount } from '../types/accounts.js';
import type { PgDb } from './db.js';

type Row = Record<string, unknown>;

export class PostgresAccountStore implements AccountStore {
  constructor(private readonly db: PgDb) {}

  async create(input: NewAccount): Promise<CreateAccountResult> {
    return this.db.tx(async (c): Promise<CreateAccountResult> => {
      // Taken before either check, so "is there an account yet" cannot change before the insert.
      await c.query('LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE');
      if ((await c.query(ACCOUNT_BY_EMAIL_SQL, [input.email])).rowCount) return { ok: false, reason: 'email_taken' };
      const isOwner = (await c.query(ANY_ACCOUNT_SQL)).rowCount === 0;
      if (input.onlyIfFirst && !isOwner) return { ok: false, reason: 'signup_closed' };
      const { rows } = await c.query(INSERT_ACCOUNT_SQL, [input.id, input.email, input.passwordHash, isOwner ? 1 : 0, input.now]);
      return { ok: true, account: toAccount(rows[0] as Row) };
    });
  }

  async count() {
    return Number((await this.db.q(COUNT_ACCOUNTS_SQL))[0]!.n);
  }

  async findByEmail(email: string) {
    const [r] = await this.db.q(ACCOUNT_BY_EMAIL_SQL, [email]);
    return r ? toAccount(r) : null;
  }

  async findById(id: string) {
    const [r] = await this.db.q(ACCOUNT_BY_ID_SQL, [id]);
    return r ? toAccount(r) : null;
  }

  async createSession(input: { tokenHash: string; accountId: string; now: number; expiresAt: number }) {
    await this.db.q(INSERT_SESSION_SQL, [input.tokenHash, input.accountId, input.now, input.expiresAt]);
  }

  async findSession(tokenHash: string, now: number) {
    const [r] = await this.db.q(FIND_SESSION_SQL, [tokenHash, now]);
    return r ? { accountId: String(r.account_id), expiresAt: Number(r.expires_at) } : null;
  }

  async deleteSession(tokenHash: string) {
    await this.db.q(DELETE_SESSION_SQL, [tokenHash]);
  }

  async createToken(input: { id: string; tokenHash: string; accountId: string; prefix: string; name: string; now: number }) {
    const [r] = await this.db.q(INSERT_TOKEN_SQL, [input.id, input.tokenHash, input.accountId, input.prefix, input.name, input.now]);
    return toOperatorToken(r!);
  }

  async findToken(tokenHash: string) {
    const [r] = await this.db.q(FIND_TOKEN_SQL, [tokenHash]);
    return r ? toOperatorToken(r) : null;
  }

  async revokeToken(tokenHash: string, now: number) {
    return (await this.db.q(REVOKE_TOKEN_SQL, [now, tokenHash])).length > 0;
  }
}
