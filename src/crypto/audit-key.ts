/**
 * The audit log's keys, derived from the server key (PANOPTICON_SECRET_KEY or the key file) with
 * HKDF-SHA256 under labels of their own, so they are independent of the key that seals stored
 * secrets and of each other:
 *
 * - the chain key: every entry's hash is HMAC-SHA256 under it (src/crypto/audit-chain.ts), so someone who
 *   can write the database but does not hold the server key cannot recompute a valid chain;
 * - the head key: tags the signed heads operators keep outside the database (src/audit/head.ts).
 *
 * Neither is ever stored or logged: the bytes live in private fields, and printing the object
 * (JSON, util.inspect, a log line) shows a placeholder.
 */
import crypto from 'node:crypto';
import util from 'node:util';

const CHAIN_LABEL = 'panopticon/audit-chain/v2';
const HEAD_LABEL = 'panopticon/audit-head/v1';

function derive(serverKey: Buffer, label: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', serverKey, Buffer.alloc(0), label, 32));
}

export class AuditKey {
  readonly #chain: Buffer;
  readonly #head: Buffer;

  private constructor(chain: Buffer, head: Buffer) {
    this.#chain = chain;
    this.#head = head;
  }

  /** `serverKey`: the 32-byte server key (the one SecretBox uses). */
  static fromServerKey(serverKey: Buffer): AuditKey {
    if (serverKey.length !== 32) throw new Error('AuditKey needs the 32-byte server key');
    return new AuditKey(derive(serverKey, CHAIN_LABEL), derive(serverKey, HEAD_LABEL));
  }

  /** HMAC-SHA256 of `text` under the chain key, hex. */
  chainMac(text: string): string {
    return crypto.createHmac('sha256', this.#chain).update(text).digest('hex');
  }

  /** HMAC-SHA256 of `text` under the head key. */
  headTag(text: string): Buffer {
    return crypto.createHmac('sha256', this.#head).update(text).digest();
  }

  toJSON(): string {
    return 'AuditKey([redacted])';
  }

  [util.inspect.custom](): string {
    return 'AuditKey([redacted])';
  }
}
