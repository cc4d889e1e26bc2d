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
