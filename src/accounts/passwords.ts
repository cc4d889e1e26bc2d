/**
 * Password hashing with scrypt at OWASP's recommended parameters (N=2^17, r=8, p=1). The
 * parameters are stored with each hash, so they can be raised later without locking anyone out.
 */
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { OWASP_SCRYPT_N } from '../config.js';

const scrypt = promisify(crypto.scrypt) as (password: string, salt: Buffer, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;

const SCRYPT_R = 8;
const SCRYPT_P = 1;
const KEY_LENGTH = 32;

function maxmem(N: number, r: number, p: number): number {
  return 128 * N * r * p + 32 * 1024 * 1024;
}

export async function hashPassword(password: string, N: number = OWASP_SCRYPT_N): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, { N, r: SCRYPT_R, p: SCRYPT_P, maxmem: maxmem(N, SCRYPT_R, SCRYPT_P) });
  return `scrypt$${N}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const N = Number(n), R = Number(r), P = Number(p);
  const actual = await scrypt(password.normalize('NFKC'), Buffer.from(salt, 'base64url'), expected.length, { N, r: R, p: P, maxmem: maxmem(N, R, P) });
  return crypto.timingSafeEqual(actual, expected);
}

/**
 * A hash of a random password, verified against when the email is unknown so timing does not tell;
 * at the cost real hashes are made with, or the timing would tell after all.
 */
const decoys = new Map<number, Promise<string>>();
export function decoyHash(N: number = OWASP_SCRYPT_N): Promise<string> {
  let decoy = decoys.get(N);
  if (decoy === undefined) {
    decoy = hashPassword(crypto.randomBytes(16).toString('hex'), N);
    decoys.set(N, decoy);
  }
  return decoy;
}
