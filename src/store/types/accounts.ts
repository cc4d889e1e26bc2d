/** Operator accounts, their console sessions and their API tokens (hashes only: the store never sees a secret). */

export interface Account {
  id: string;
  email: string;
  passwordHash: string;
  isOwner: boolean;
  createdAt: number;
}

export interface Session {
  accountId: string;
  expiresAt: number;
}

export interface OperatorToken {
  id: string;
  accountId: string;
  prefix: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

export interface NewAccount {
  id: string;
  email: string;
  passwordHash: string;
  now: number;
  onlyIfFirst?: boolean;
}

export type CreateAccountResult = { ok: true; account: Account } | { ok: false; reason: 'email_taken' | 'signup_closed' };

export interface AccountStore {
  /**
   * Creates the account; the first one on an install becomes its owner. With `onlyIfFirst`, only
   * while there is no account yet, decided in the same transaction, so concurrent sign-ups on a
   * closed install cannot both become "the first".
   */
  create(input: NewAccount): Promise<CreateAccountResult>;
  count(): Promise<number>;
  findByEmail(email: string): Promise<Account | null>;
  findById(id: string): Promise<Account | null>;
  createSession(input: { tokenHash: string; accountId: string; now: number; expiresAt: number }): Promise<void>;
  findSession(tokenHash: string, now: number): Promise<Session | null>;
  deleteSession(tokenHash: string): Promise<void>;
  createToken(input: { id: string; tokenHash: string; accountId: string; prefix: string; name: string; now: number }): Promise<OperatorToken>;
  findToken(tokenHash: string): Promise<OperatorToken | null>;
  revokeToken(tokenHash: string, now: number): Promise<boolean>;
}
