/**
 * Secrets that identify a caller: PAKs (`pano_pak_…`) and operator tokens (`pano_op_…`), and the
 * HMAC signing secrets of apps that enforce signatures (`pano_sec_…`).
 * Format: prefix + 32 base62 characters (~190 bits) + a 6-character base62 CRC32 checksum, so
 * secret scanners can recognise a real key and a typo is rejected without touching the store.
 * Of PAKs and operator tokens only a SHA-256 hash and a short display prefix are ever stored;
 * signing secrets must be read back to verify, so they are stored sealed (src/crypto/secret-box.ts).
 */
import crypto from 'node:crypto';
import zlib from 'node:zlib';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;

export const PAK_PREFIX = 'pano_pak_';
export const OPERATOR_TOKEN_PREFIX = 'pano_op_';
export const SECRET_PREFIX = 'pano_sec_';

export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of crypto.randomBytes(length * 2)) {
      // 248 = 62 * 4: bytes at or above it would bias the alphabet, so they are skipped.
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function base62Fixed(value: number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

function checksum(prefix: string, body: string): string {
  return base62Fixed(zlib.crc32(prefix + body), CHECKSUM_LENGTH);
}

export function generateToken(prefix: string): string {
  const body = randomBase62(RANDOM_LENGTH);
  return prefix + body + checksum(prefix, body);
}

/** True when `value` has the shape and a valid checksum for `prefix`; says nothing of whether it exists. */
export function isWellFormedToken(prefix: string, value: string): boolean {
  if (value.length !== prefix.length + RANDOM_LENGTH + CHECKSUM_LENGTH || !value.startsWith(prefix)) return false;
  const body = value.slice(prefix.length, prefix.length + RANDOM_LENGTH);
  const sum = value.slice(prefix.length + RANDOM_LENGTH);
  if (!BASE62_ONLY.test(value.slice(prefix.length))) return false;
  return checksum(prefix, body) === sum;
}

const BASE62_ONLY = /^[0-9A-Za-z]*$/;

// PAKs are hashed on every trace request: the one-shot crypto.hash (Node >= 20.12) skips the Hash
// object a createHash() call allocates.
const sha256Hex: (value: string) => string =
  typeof crypto.hash === 'function'
    ? (value) => crypto.hash('sha256', value, 'hex')
    : (value) => crypto.createHash('sha256').update(value).digest('hex');

export function hashSecret(value: string): string {
  return sha256Hex(value);
}

/** Enough of a secret to recognise it in a list, never enough to use it. */
export function displayPrefix(prefix: string, value: string): string {
  return value.slice(0, prefix.length + 6);
}

export function constantTimeEqualHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export function newId(kind: string): string {
  return `${kind}_${randomBase62(16)}`;
}
