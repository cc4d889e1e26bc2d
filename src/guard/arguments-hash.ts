/**
 * What a check keeps of its arguments when the app does not keep them: a hash, so a remembered
 * approval (a grant) can match the same call again, and an operator can tell two calls apart.
 *
 * A plain SHA-256 would let anyone who reads the database guess low-entropy arguments by hashing
 * candidates (`{}`, `{"amount":100}`, an e-mail address), so the hash is an HMAC-SHA-256 under a
 * key of the app's own, derived (HKDF) from the server's secret key, which the database does not
 * hold. The same arguments hash the same within one app on every node (they share the secret key),
 * and differently in two apps.
 */
import crypto from 'node:crypto';
import { canonicalJson } from './evaluate.js';

const HKDF_INFO = 'panopticon/arguments-hash/v1';
/** Derived keys kept in memory; beyond this many apps the cache starts again (a derivation is ~10 us). */
const MAX_CACHED_KEYS = 10_000;

export class ArgumentHasher {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly serverKey: Buffer) {}

  /** Hex HMAC-SHA-256 of the canonical JSON of `args` (keys sorted at every level; none means `{}`). */
  hash(clientId: string, args: unknown): string {
    return crypto.createHmac('sha256', this.keyOf(clientId)).update(canonicalJson(args ?? {})).digest('hex');
  }

  private keyOf(clientId: string): Buffer {
    let key = this.keys.get(clientId);
    if (key === undefined) {
      key = Buffer.from(crypto.hkdfSync('sha256', this.serverKey, Buffer.from(clientId, 'utf8'), HKDF_INFO, 32));
      if (this.keys.size >= MAX_CACHED_KEYS) this.keys.clear();
      this.keys.set(clientId, key);
    }
    return key;
  }
}
