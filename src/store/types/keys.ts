/** Per-application keys (PAKs): stored as hashes, rotated with a grace period, revoked at once. */
import type { AuditInput } from './audit.js';

export interface Pak {
  id: string;
  clientId: string;
  prefix: string;
  createdAt: number;
  lastUsedAt: number | null;
  /** Set when the key was rotated out: valid until then. */
  expiresAt: number | null;
  revokedAt: number | null;
}

/** What the trace API needs to authenticate a PAK: loaded by hash, cached per node. */
export interface PakAuthRecord {
  keyId: string;
  keyHash: string;
  clientId: string;
  panopticonEnabled: boolean;
  /** The app requires every request to be signed (X-Panopticon-Signature). */
  hmacEnabled: boolean;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface NewPak {
  id: string;
  clientId: string;
  keyHash: string;
  prefix: string;
  now: number;
}

export interface KeyStore {
  /** Null when the app already has a primary (non-expiring, unrevoked) key. */
  insert(input: NewPak, audit?: AuditInput): Promise<Pak | null>;
  list(clientId: string): Promise<Pak[]>;
  /** Keys that are neither revoked nor expired at `now`. */
  active(clientId: string, now: number): Promise<Pak[]>;
  /**
   * In one transaction: every key of the app still valid at `now` expires at `expiresAt` (revoked
   * when that is not after `now`), and the new key becomes the primary one.
   */
  rotate(input: NewPak & { expiresAt: number }, audit?: AuditInput): Promise<{ pak: Pak; previous: Pak[] }>;
  /** The audit entry is written only when something was revoked. */
  revoke(clientId: string, now: number, keyId?: string, audit?: (revoked: Pak[]) => AuditInput): Promise<Pak[]>;
  findForAuth(keyHash: string): Promise<PakAuthRecord | null>;
  /** Records when each key was last used (never moving a time backwards). */
  touch(lastUsed: ReadonlyMap<string, number>): Promise<void>;
}
