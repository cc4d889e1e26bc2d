/**
 * The audit log's hash chain. Each entry's hash covers its own fields and the previous entry's
 * hash, so changing or deleting any entry breaks every hash after it; the app row pins the last
 * hash and the count, so dropping entries off the end is caught too, unless whoever drops them
 * also moves the pin (only an anchor kept outside the database catches that: src/audit/head.ts).
 *
 * Two chain versions, recorded per entry (`chain`):
 * - 1, unkeyed: SHA-256. Written before the chain was keyed; anyone who can write the database
 *   can recompute it, so it proves nothing against a database writer.
 * - 2, keyed: HMAC-SHA256 under the audit chain key (src/crypto/audit-key.ts), which is derived from the
 *   server key and never stored. Every entry written now is keyed.
 * Unkeyed entries may only form a prefix that a keyed entry closes (the migration that keyed the
 * chain sealed every such log with an `audit.keyed` entry, src/store/migrations/007-keyed-audit.ts): an
 * unkeyed entry after a keyed one, or a log that ends unkeyed, was written by someone without the
 * key.
 *
 * Canonical form: JSON of a fixed-order array, so the hash does not depend on key order or engine.
 */
import crypto from 'node:crypto';
import type { AuditKey } from './audit-key.js';

export const GENESIS_HASH = '0'.repeat(64);

export const UNKEYED_CHAIN = 1;
export const KEYED_CHAIN = 2;
export type ChainVersion = typeof UNKEYED_CHAIN | typeof KEYED_CHAIN;

export interface AuditFields {
  clientId: string;
  seq: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  /** JSON text (or null) exactly as stored. */
  before: string | null;
  after: string | null;
}

/** Version 1: SHA-256, no key (entries written before the chain was keyed). */
export function unkeyedHash(prevHash: string, e: AuditFields): string {
  const canonical = JSON.stringify([prevHash, e.clientId, e.seq, e.at, e.actor, e.action, e.target, e.before, e.after]);
  return crypto.createHash('sha256').update(canonical).digest('hex');
}

/** Version 2: HMAC-SHA256 under the chain key; the version is part of what is signed. */
export function keyedHash(key: AuditKey, prevHash: string, e: AuditFields): string {
  return key.chainMac(JSON.stringify([KEYED_CHAIN, prevHash, e.clientId, e.seq, e.at, e.actor, e.action, e.target, e.before, e.after]));
}

export interface ChainEntry extends AuditFields {
  chain: ChainVersion;
  prevHash: string;
  hash: string;
}

export const CHAIN_PROBLEMS = [
  'hash_mismatch', 'broken_link', 'missing_entry', 'tail_mismatch', 'unkeyed_entry', 'anchor_truncated', 'anchor_mismatch',
] as const;
export type ChainProblem = (typeof CHAIN_PROBLEMS)[number];

interface Verified {
  entries: number;
  /** Entries of chain version 1 (the prefix written before the chain was keyed). */
  unkeyedEntries: number;
  /** When that prefix was sealed: the time of the first keyed entry after it (null: no prefix). */
  unkeyedSealedAt: number | null;
}

export type VerifyResult =
  | (Verified & { ok: true; head: string | null })
  | (Verified & { ok: false; problem: ChainProblem; seq: number | null; detail: string });

function timingSafeEqualHex(a: string, b: string): boolean {
  return a.length === b.length && crypto.timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** Walks the chain in seq order; `pinned` is the head and count the app row holds. */
export function verifyChain(key: AuditKey, entries: readonly ChainEntry[], pinned: { head: string | null; count: number }): VerifyResult {
  let prev = GENESIS_HASH;
  let expectedSeq = 1;
  let unkeyed = 0;
  let keyedSeen = false;
  let sealedAt: number | null = null;
  const fail = (problem: ChainProblem, seq: number | null, detail: string): VerifyResult =>
    ({ ok: false, entries: entries.length, unkeyedEntries: unkeyed, unkeyedSealedAt: sealedAt, problem, seq, detail });
  for (const e of entries) {
    if (e.seq !== expectedSeq) return fail('missing_entry', expectedSeq, `entry ${expectedSeq} is missing (next present is ${e.seq})`);
    if (e.prevHash !== prev) return fail('broken_link', e.seq, `entry ${e.seq} does not link to entry ${e.seq - 1}`);
    if (e.chain === KEYED_CHAIN) {
      if (!timingSafeEqualHex(keyedHash(key, prev, e), e.hash)) {
        return fail('hash_mismatch', e.seq, `entry ${e.seq} was changed after it was written (its keyed hash does not match)`);
      }
      if (!keyedSeen && unkeyed > 0) sealedAt = e.at;
      keyedSeen = true;
    } else if (e.chain === UNKEYED_CHAIN) {
      if (keyedSeen) return fail('unkeyed_entry', e.seq, `entry ${e.seq} is unkeyed but follows keyed entries: it was rewritten by someone without the server key`);
      if (unkeyedHash(prev, e) !== e.hash) return fail('hash_mismatch', e.seq, `entry ${e.seq} was changed after it was written`);
      unkeyed++;
    } else {
      return fail('hash_mismatch', e.seq, `entry ${e.seq} has an unknown chain version ${String(e.chain)}`);
    }
    prev = e.hash;
    expectedSeq++;
  }
  if (unkeyed > 0 && !keyedSeen) {
    return fail('unkeyed_entry', 1, `entries 1-${unkeyed} are unkeyed and no keyed entry follows them: the migration that keyed the chain closed every unkeyed log with a keyed entry, so they were rewritten by someone without the server key`);
  }
  const head = entries.length > 0 ? prev : null;
  if (entries.length !== pinned.count || head !== pinned.head) {
    return fail('tail_mismatch', entries.length + 1, `the log holds ${entries.length} entries but ${pinned.count} were written`);
  }
  return { ok: true, entries: entries.length, unkeyedEntries: unkeyed, unkeyedSealedAt: sealedAt, head };
}

/**
 * Compares a verified chain with a head anchored earlier (`seq` entries, the last with `headHash`).
 * The head hash covers every entry up to it, so a match proves entries 1..seq are the ones that
 * were anchored; a log shorter than `seq` was truncated.
 */
export function checkAnchor(result: VerifyResult, entries: readonly ChainEntry[], anchor: { seq: number; headHash: string; signedAt: number }): VerifyResult {
  if (!result.ok) return result;
  const { entries: count, unkeyedEntries, unkeyedSealedAt } = result;
  const when = new Date(anchor.signedAt).toISOString();
  if (count < anchor.seq) {
    return {
      ok: false, entries: count, unkeyedEntries, unkeyedSealedAt, problem: 'anchor_truncated', seq: count + 1,
      detail: `the log holds ${count} entries but the head signed at ${when} anchors ${anchor.seq}: entries ${count + 1}-${anchor.seq} were deleted`,
    };
  }
  const at = anchor.seq === 0 ? GENESIS_HASH : entries[anchor.seq - 1]!.hash;
  if (!timingSafeEqualHex(at, anchor.headHash)) {
    return {
      ok: false, entries: count, unkeyedEntries, unkeyedSealedAt, problem: 'anchor_mismatch', seq: anchor.seq,
      detail: `entries 1-${anchor.seq} are not the ones anchored at ${when}: the log was rewritten up to entry ${anchor.seq}`,
    };
  }
  return result;
}
