/** What the store appends to an application's audit log, and what it reads back. */
import type { ChainEntry } from '../../crypto/audit-chain.js';

export interface AuditInput {
  clientId: string;
  at: number;
  /** Who: `account:<id>`, `system`, ... */
  actor: string;
  /** What, dotted: `pak.issue`, `policy.rule_add`, `kill.on`, `approval.approve`, ... */
  action: string;
  target: string | null;
  before: unknown;
  after: unknown;
}

export type AuditEntry = ChainEntry;

export interface AuditStore {
  /** Appends a keyed entry (the store holds the chain key it was opened with). */
  append(input: AuditInput): Promise<AuditEntry>;
  /** Entries in seq order, after `afterSeq`, at most `limit`. */
  list(clientId: string, options: { afterSeq?: number | undefined; limit: number; newestFirst?: boolean }): Promise<AuditEntry[]>;
  /** The head hash and count pinned on the app row. */
  pinned(clientId: string): Promise<{ head: string | null; count: number }>;
}
