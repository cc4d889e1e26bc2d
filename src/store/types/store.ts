/**
 * The storage seam. Domain code talks to this interface only: one sub-store per area (its types in
 * types/<area>.ts), implemented by sqlite/ and postgres/, and one contract suite per area
 * (test/store/) runs against both engines. This module also re-exports every area's types, so
 * domain code imports the seam from one place.
 */
import type { AccountStore } from './accounts.js';
import type { AppStore } from './apps.js';
import type { ApprovalStore } from './approvals.js';
import type { GuardStore } from './guard.js';
import type { AuditStore } from './audit.js';
import type { KeyStore } from './keys.js';
import type { SecretStore } from './secrets.js';
import type { ToolStore } from './tools.js';
import type { TraceStore } from './traces.js';
import type { WebhookStore } from './webhooks.js';

export * from './accounts.js';
export * from './apps.js';
export * from './keys.js';
export * from './traces.js';

/**
 * Cross-node signals; on PostgreSQL they ride LISTEN/NOTIFY, on SQLite they stay in-process.
 * `clientId: '*'` means "anything may have changed" (sent after a lost listener connection).
 */
export type StoreSignal =
  /**
   * Delivered only within a node, never published: this node stopped hearing (or hears again) the
   * other nodes' signals. Each is followed by every `'*'` signal.
   */
  | { kind: 'signals_lost' }
  | { kind: 'signals_restored' }
  | { kind: 'keys_changed'; clientId: string }
  | { kind: 'guard_changed'; clientId: string }
  | { kind: 'approval_decided'; clientId: string; approvalId: string }
  /**
   * A guard check opened an approval request (after its commit). Only the node that ran the check
   * knows; this carries it to the inboxes open on the other nodes.
   */
  | { kind: 'approval_requested'; clientId: string; approvalId: string }
  /**
   * A group commit stored new traces for these apps: live views re-read them from the store. One
   * signal per commit (not per trace) keeps NOTIFY traffic proportional to commits.
   */
  | { kind: 'traces_committed'; clientIds: string[] };

export type WriteState = { ok: true } | { ok: false; reason: string; since: number };

export interface Store {
  readonly engine: 'sqlite' | 'postgres';
  readonly accounts: AccountStore;
  readonly apps: AppStore;
  readonly keys: KeyStore;
  readonly traces: TraceStore;
  readonly audit: AuditStore;
  readonly guard: GuardStore;
  readonly approvals: ApprovalStore;
  readonly webhooks: WebhookStore;
  readonly secrets: SecretStore;
  readonly tools: ToolStore;

  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Resolves when the store can be read. */
  ping(): Promise<void>;
  /**
   * Whether the store can be written: after a write failed because of the store (disk full, I/O
   * error, lock timeout, connection lost), one probe write (no lock wait) decides; otherwise ok.
   */
  writable(): Promise<WriteState>;

  // Signals
  publish(signal: StoreSignal): Promise<void>;
  /**
   * Whether this node hears every other node's signals now. While not, caches must not serve what
   * a missed signal would have changed: they read the store instead.
   */
  signalHealth(): SignalHealth;
  subscribe(listener: (signal: StoreSignal) => void): () => void;
}

export interface SignalHealth {
  live: boolean;
  /** `in_process`: one node (SQLite), nothing to lose; `listen_notify`: PostgreSQL's listener session. */
  mode: 'in_process' | 'listen_notify';
  /** When the current state began (ms since the epoch). */
  since: number;
  /** Times the listener came back after losing its connection. */
  reconnects: number;
  lastError: string | null;
}

