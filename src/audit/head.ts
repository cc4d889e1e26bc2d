/**
 * Signed heads: a statement by this server that, at `signedAt`, the audit log of `clientId` held
 * `seq` entries ending in `headHash`. Operators keep them outside the database (a ticket, a
 * repository, a WORM bucket); verifying against one detects truncation below `seq` and any rewrite
 * of entries 1..seq, which the database alone cannot prove (whoever writes it can move the pin).
 *
 * Tagged with HMAC-SHA256 under the head key (derived from the server key), not signed with a
 * public-key scheme: checking a head always goes through this server anyway (the chain's own
 * hashes are keyed), so a public key would add key distribution without adding a check anyone
 * could run alone. The tag stops a forged or edited head from being accepted as this server's.
 *
 * Printed form (one line, safe in a shell and a file name):
 *   pah1.<client_id>.<seq>.<head_hash hex>.<signed_at, ms since the epoch>.<tag, base64url>
 * An empty log's head is seq 0 with 64 zeros as its hash.
 */
import crypto from 'node:crypto';
import type { AuditKey } from '../crypto/audit-key.js';

export interface AuditHead {
  clientId: string;
  seq: number;
  headHash: string;
  signedAt: number;
}

const PREFIX = 'pah1';
/** The printed form, as a schema pattern (the route validates `against` with it). */
export const SIGNED_HEAD_PATTERN = '^pah1\\.logi_[0-9a-f]{12}\\.(0|[1-9][0-9]{0,15})\\.[0-9a-f]{64}\\.(0|[1-9][0-9]{0,15})\\.[A-Za-z0-9_-]{43}$';
const SIGNED_HEAD_RE = new RegExp(SIGNED_HEAD_PATTERN);

function tag(key: AuditKey, h: AuditHead): Buffer {
  return key.headTag(JSON.stringify(['panopticon-audit-head', 1, h.clientId, h.seq, h.headHash, h.signedAt]));
}

export function signHead(key: AuditKey, h: AuditHead): string {
  return [PREFIX, h.clientId, String(h.seq), h.headHash, String(h.signedAt), tag(key, h).toString('base64url')].join('.');
}

export type HeadCheck = { ok: true; head: AuditHead } | { ok: false; reason: string };

/** Parses a printed head and checks its tag under this server's key. */
export function openHead(key: AuditKey, text: string): HeadCheck {
  if (!SIGNED_HEAD_RE.test(text)) return { ok: false, reason: 'not a signed audit head (pah1.<client_id>.<seq>.<hash>.<signed_at>.<tag>)' };
  const [, clientId, seq, headHash, signedAt, tagText] = text.split('.') as [string, string, string, string, string, string];
  const head: AuditHead = { clientId, seq: Number(seq), headHash, signedAt: Number(signedAt) };
  if (!Number.isSafeInteger(head.seq) || !Number.isSafeInteger(head.signedAt)) return { ok: false, reason: 'seq or signed_at is out of range' };
  const given = Buffer.from(tagText, 'base64url');
  const expected = tag(key, head);
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'its tag does not match: it was not signed by this server (or by this server key), or it was edited' };
  }
  return { ok: true, head };
}
