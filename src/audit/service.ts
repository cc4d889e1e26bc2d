/**
 * The audit log's checks, on top of the store: verify an app's chain (optionally against a head
 * anchored outside the database) and sign its current head. What each check does and does not
 * detect: docs/security.md, "Audit log integrity".
 */
import type { AuditEntry } from '../store/types/guard.js';
import type { Store } from '../store/types/store.js';
import { checkAnchor, GENESIS_HASH, verifyChain, type VerifyResult } from '../crypto/audit-chain.js';
import { openHead, signHead, type AuditHead } from './head.js';
import type { AuditKey } from '../crypto/audit-key.js';

/** Reading the whole chain to verify it is bounded per page; the store streams it page by page. */
const VERIFY_PAGE = 1000;

export async function readWholeChain(store: Store, clientId: string): Promise<AuditEntry[]> {
  const all: AuditEntry[] = [];
  for (;;) {
    const page = await store.audit.list(clientId, { afterSeq: all.length === 0 ? 0 : all[all.length - 1]!.seq, limit: VERIFY_PAGE });
    all.push(...page);
    if (page.length < VERIFY_PAGE) return all;
  }
}

/**
 * The chain and its pin as of one moment: an append commits its entry and the pin together, so a
 * pin that is the same before and after reading the entries means none was appended in between
 * (otherwise a change landing mid-read would look like a truncated log). Retried a few times
 * under a steady stream of changes; the last read is returned regardless.
 */
async function readChainAndPin(store: Store, clientId: string) {
  for (let attempt = 1; ; attempt++) {
    const pinned = await store.audit.pinned(clientId);
    const entries = await readWholeChain(store, clientId);
    const after = await store.audit.pinned(clientId);
    if ((after.count === pinned.count && after.head === pinned.head) || attempt === 5) return { entries, pinned: after };
  }
}

export type AuditVerification =
  | { ok: true; result: VerifyResult; anchor: AuditHead | null }
  | { ok: false; reason: 'head_invalid'; detail: string };

/**
 * Recomputes the app's chain with the chain key and, given `against` (a printed signed head), checks
 * that the log still holds every entry the head anchors, unchanged. A head that is not this
 * server's, or not this app's, is an expected failure (a value), not a verification result.
 */
export async function verifyAuditLog(store: Store, key: AuditKey, clientId: string, against?: string): Promise<AuditVerification> {
  let anchor: AuditHead | null = null;
  if (against !== undefined) {
    const opened = openHead(key, against);
    if (!opened.ok) return { ok: false, reason: 'head_invalid', detail: opened.reason };
    if (opened.head.clientId !== clientId) return { ok: false, reason: 'head_invalid', detail: `it is the head of ${opened.head.clientId}, not of ${clientId}` };
    anchor = opened.head;
  }
  const { entries, pinned } = await readChainAndPin(store, clientId);
  const verified = verifyChain(key, entries, pinned);
  return { ok: true, result: anchor === null ? verified : checkAnchor(verified, entries, anchor), anchor };
}

export type SignedHead = { ok: true; head: AuditHead; text: string } | { ok: false; result: Extract<VerifyResult, { ok: false }> };

/**
 * Signs the app's current head, after verifying the chain: a head signed over a chain that does not
 * verify would anchor the tampering itself, so that is refused (`ok: false` with the problem).
 */
export async function signCurrentHead(store: Store, key: AuditKey, clientId: string, now: number): Promise<SignedHead> {
  const { entries, pinned } = await readChainAndPin(store, clientId);
  const result = verifyChain(key, entries, pinned);
  if (!result.ok) return { ok: false, result };
  const head: AuditHead = { clientId, seq: result.entries, headHash: result.head ?? GENESIS_HASH, signedAt: now };
  return { ok: true, head, text: signHead(key, head) };
}
