/** Sign-up, sign-in and operator tokens. Expected failures are values; the routes map them to codes. */
import type { ServerConfig } from '../config.js';
import type { Account, Store } from '../store/types/store.js';
import { displayPrefix, generateToken, hashSecret, newId, OPERATOR_TOKEN_PREFIX } from '../keys/tokens.js';
import { decoyHash, hashPassword, verifyPassword } from './passwords.js';

export type SignUpResult = { ok: true; account: Account } | { ok: false; code: 'signup_closed' | 'email_taken' };

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export async function signUp(store: Store, config: Pick<ServerConfig, 'signup'>, email: string, password: string, now: number, scryptN: number): Promise<SignUpResult> {
  const closed = config.signup === 'closed';
  // Answered before the (deliberately slow) password hash; the store decides again atomically.
  if (closed && (await store.accounts.count()) > 0) return { ok: false, code: 'signup_closed' };
  const passwordHash = await hashPassword(password, scryptN);
  const created = await store.accounts.create({ id: newId('acct'), email: normaliseEmail(email), passwordHash, now, onlyIfFirst: closed });
  return created.ok ? created : { ok: false, code: created.reason };
}

export async function checkCredentials(store: Store, email: string, password: string, scryptN: number): Promise<Account | null> {
  const account = await store.accounts.findByEmail(normaliseEmail(email));
  // Verify against a decoy when the account is unknown, so response time does not reveal which emails exist.
  const ok = await verifyPassword(password, account?.passwordHash ?? (await decoyHash(scryptN)));
  return ok && account ? account : null;
}

export async function issueOperatorToken(store: Store, accountId: string, name: string, now: number) {
  const token = generateToken(OPERATOR_TOKEN_PREFIX);
  const record = await store.accounts.createToken({
    id: newId('tok'),
    tokenHash: hashSecret(token),
    accountId,
    prefix: displayPrefix(OPERATOR_TOKEN_PREFIX, token),
    name,
    now,
  });
  return { token, record };
}
