/**
 * The audit log's hash chain. Each entry's hash covers its own fields and the previous entry's
 * hash, so changing or deleting any entry breaks every hash after it; the app row pins the last
 * hash and the count, so dropping entries off the end is caught too.
 *
 * Canonical form: JSON of a fixed-order array, so the hash does not depend on key order or engine.
 */
import crypto from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

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

export function entryHash(prevHash: string, e: AuditFields): string {
  const canonical = JSON.stringify([prevHash, e.clientId, e.seq, e.at, e.actor, e.action, e.target, e.before, e.after]);
  return crypto.createHash('sha256').update(canonical).digest('hex');
}

export interface ChainEntry extends AuditFields {
  prevHash: string;
  hash: string;
}

export type VerifyResult =
  | { ok: true; entries: number; head: string | null }
  | { ok: false; entries: number; problem: 'hash_mismatch' | 'broken_link' | 'missing_entry' | 'tail_mismatch'; seq: number | null; detail: string };

/** Walks the chain in seq order; `pinned` is the head and count the app row holds. */
export function verifyChain(entries: readonly ChainEntry[], pinned: { head: string | null; count: number }): VerifyResult {
  let prev = GENESIS_HASH;
  let expectedSeq = 1;
  for (const e of entries) {
    if (e.seq !== expectedSeq) {
      return { ok: false, entries: entries.length, problem: 'missing_entry', seq: expectedSeq, detail: `entry ${expectedSeq} is missing (next present is ${e.seq})` };
    }
    if (e.prevHash !== prev) {
      return { ok: false, entries: entries.length, problem: 'broken_link', seq: e.seq, detail: `entry ${e.seq} does not link to entry ${e.seq - 1}` };
    }
    const recomputed = entryHash(prev, e);
    if (recomputed !== e.hash) {
      return { ok: false, entries: entries.length, problem: 'hash_mismatch', seq: e.seq, detail: `entry ${e.seq} was changed after it was written` };
    }
    prev = e.hash;
    expectedSeq++;
  }
  const head = entries.length > 0 ? prev : null;
  if (entries.length !== pinned.count || head !== pinned.head) {
    return {
      ok: false,
      entries: entries.length,
      problem: 'tail_mismatch',
      seq: entries.length + 1,
      detail: `the log holds ${entries.length} entries but ${pinned.count} were written`,
    };
  }
  return { ok: true, entries: entries.length, head };
}
