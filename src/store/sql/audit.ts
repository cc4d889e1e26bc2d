/** SQL and row mapping of the audit log, shared by both engines: entries, the pinned head, migration 7's seal. */
import { type Row, num, strOrNull } from './row.js';
import { slots } from './params.js';
import { GENESIS_HASH, KEYED_CHAIN, keyedHash, type AuditFields, type ChainVersion } from '../../crypto/audit-chain.js';
import type { AuditKey } from '../../crypto/audit-key.js';
import type { AuditEntry, AuditInput } from '../types/audit.js';

export const toAuditEntry = (r: Row): AuditEntry => ({
  clientId: String(r.client_id),
  seq: num(r.seq),
  at: num(r.at),
  actor: String(r.actor),
  action: String(r.action),
  target: strOrNull(r.target),
  before: strOrNull(r.before),
  after: strOrNull(r.after),
  chain: num(r.chain) as ChainVersion,
  prevHash: String(r.prev_hash),
  hash: String(r.hash),
});

const jsonOrNull = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));

/** The next entry after the pinned head: its fields, link and keyed hash. */
export function nextAuditEntry(key: AuditKey, input: AuditInput, pinned: { head: string | null; count: number }): AuditEntry {
  const fields: AuditFields = {
    clientId: input.clientId,
    seq: pinned.count + 1,
    at: input.at,
    actor: input.actor,
    action: input.action,
    target: input.target,
    before: jsonOrNull(input.before),
    after: jsonOrNull(input.after),
  };
  const prevHash = pinned.head ?? GENESIS_HASH;
  return { ...fields, chain: KEYED_CHAIN, prevHash, hash: keyedHash(key, prevHash, fields) };
}

export const INSERT_AUDIT_SQL =
  `INSERT INTO audit_log (client_id, seq, at, actor, action, target, before, after, prev_hash, hash, chain)
   VALUES (${slots(11)})`;

export const auditValues = (e: AuditEntry): unknown[] => [e.clientId, e.seq, e.at, e.actor, e.action, e.target, e.before, e.after, e.prevHash, e.hash, e.chain];

/** Apps whose newest audit entry is unkeyed (chain 1), with their pin: the prefixes migration 7 seals. */
export const UNKEYED_TAILS_SQL = `SELECT a.client_id, a.audit_head, a.audit_count FROM apps a
  JOIN audit_log l ON l.client_id = a.client_id AND l.seq = a.audit_count WHERE l.chain = 1 ORDER BY a.client_id`;

/** The action of the keyed entry that closes an unkeyed prefix. */
export const SEAL_ACTION = 'audit.keyed';

/** The entry migration 7 appends to an app whose log ends unkeyed; its keyed hash covers the whole prefix. */
export function sealUnkeyedInput(r: Row, now: number): AuditInput {
  return {
    clientId: String(r.client_id), at: now, actor: 'system', action: SEAL_ACTION, target: null,
    before: { chain: 'sha256', entries: num(r.audit_count), head: strOrNull(r.audit_head) },
    after: { chain: 'hmac-sha256' },
  };
}

export const PIN_AUDIT_SQL = `UPDATE apps SET audit_head = $1, audit_count = $2 WHERE client_id = $3`;

export const AUDIT_PIN_SQL = 'SELECT audit_head, audit_count FROM apps WHERE client_id = $1';
