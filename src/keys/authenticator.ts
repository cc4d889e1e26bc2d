/**
 * Authenticates PAKs on the trace hot path without a store round trip per request: records are
 * cached per node by key hash and dropped whenever any node signals a key or app change (revoke is
 * immediate everywhere). Unknown keys are cached briefly too, so a flood of bad keys cannot turn
 * into a flood of queries; issuing a key signals a change, which clears that negative entry.
 *
 * Last-used times are kept in memory and written in one statement every few seconds (and on close),
 * not once per request.
 *
 * For an app that enforces HMAC signing, the same cache entry holds its signing secrets, opened
 * once per load (the hot path never decrypts); enabling, rotating and disabling signal
 * `keys_changed`, so every node reloads them. Apps without signing pay nothing extra.
 */
import crypto from 'node:crypto';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Store } from '../store/types/store.js';
import type { PakAuthRecord } from '../store/types/store.js';
import { constantTimeEqualHex, hashSecret, isWellFormedToken, PAK_PREFIX } from './tokens.js';

export type PakAuthResult =
  | { ok: true; key: PakAuthRecord }
  | { ok: false; code: 'pak_missing' | 'pak_malformed' | 'pak_invalid' | 'pak_revoked' | 'panopticon_disabled' };

/** One signing secret of an app, ready for HMAC. */
export interface SigningKey {
  id: string;
  key: crypto.KeyObject;
  /** Rotated out: accepted until then (checked per request, as the cache outlives a short grace). */
  expiresAt: number | null;
}

const NO_KEYS: readonly SigningKey[] = Object.freeze([]);

interface CacheEntry {
  record: PakAuthRecord | null;
  loadedAt: number;
}

const POSITIVE_TTL_MS = 60_000;
const NEGATIVE_TTL_MS = 5_000;
const MAX_ENTRIES = 50_000;
const TOUCH_INTERVAL_MS = 5_000;

export class PakAuthenticator {
  private readonly cache = new Map<string, CacheEntry>();
  /** Keyed by the cached record object, so the keys go when the record leaves the cache. */
  private readonly signing = new WeakMap<PakAuthRecord, readonly SigningKey[]>();
  /** Bumped by every change signal: a load that started before one must not be cached. */
  private generation = 0;
  /**
   * The node cannot hear other nodes' signals (PostgreSQL listener down): a key revoked elsewhere
   * would stay cached, so every request reads the store until the listener is back.
   */
  private deaf = false;
  private readonly lastUsed = new Map<string, number>();
  private readonly unsubscribe: () => void;
  private readonly touchTimer: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
    private readonly box: SecretBox,
  ) {
    this.unsubscribe = store.subscribe((signal) => {
      if (signal.kind === 'signals_lost') this.deaf = true;
      else if (signal.kind === 'signals_restored') this.deaf = false;
      else if (signal.kind !== 'keys_changed') return;
      this.generation++;
      this.cache.clear();
    });
    this.touchTimer = setInterval(() => void this.flushLastUsed().catch(() => {}), TOUCH_INTERVAL_MS);
    this.touchTimer.unref();
  }

  /**
   * Parses an Authorization header value and decides; never throws for a bad key. Answers
   * synchronously when the key's record is cached (nearly every request), so the hot path pays no
   * promise; only a cache miss returns a promise of the store lookup.
   */
  authenticate(authorization: string | undefined): PakAuthResult | Promise<PakAuthResult> {
    if (authorization === undefined || authorization === '') return { ok: false, code: 'pak_missing' };
    const space = authorization.indexOf(' ');
    if (space < 0 || authorization.slice(0, space).toLowerCase() !== 'bearer') return { ok: false, code: 'pak_malformed' };
    const presented = authorization.slice(space + 1).trim();
    if (!isWellFormedToken(PAK_PREFIX, presented)) return { ok: false, code: 'pak_malformed' };

    const hash = hashSecret(presented);
    const now = this.now();
    const entry = this.cache.get(hash);
    if (entry === undefined || this.deaf || now - entry.loadedAt > (entry.record ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS)) return this.load(hash, now);
    return this.decide(entry.record, hash, now);
  }

  private async load(hash: string, now: number): Promise<PakAuthResult> {
    const generation = this.generation;
    const cacheable = !this.deaf;
    const entry: CacheEntry = { record: await this.store.keys.findForAuth(hash), loadedAt: now };
    if (entry.record?.hmacEnabled) this.signing.set(entry.record, await this.loadSigningKeys(entry.record.clientId, now));
    if (cacheable && generation === this.generation) {
      if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
      this.cache.set(hash, entry);
    }
    return this.decide(entry.record, hash, now);
  }

  private decide(record: PakAuthRecord | null, hash: string, now: number): PakAuthResult {
    // The lookup was by hash; comparing the hashes again in constant time keeps the decision itself
    // free of data-dependent timing.
    if (record === null || !constantTimeEqualHex(record.keyHash, hash)) return { ok: false, code: 'pak_invalid' };
    if (record.revokedAt !== null || (record.expiresAt !== null && record.expiresAt <= now)) return { ok: false, code: 'pak_revoked' };
    if (!record.panopticonEnabled) return { ok: false, code: 'panopticon_disabled' };
    this.lastUsed.set(record.keyId, now);
    return { ok: true, key: record };
  }

  /** The signing secrets loaded with this record; empty when its app does not enforce signing. */
  signingKeys(record: PakAuthRecord): readonly SigningKey[] {
    return this.signing.get(record) ?? NO_KEYS;
  }

  private async loadSigningKeys(clientId: string, now: number): Promise<readonly SigningKey[]> {
    const secrets = await this.store.secrets.activeSecrets(clientId, now);
    // A secret that does not open (another server key) throws: every node of an install must share one key.
    return secrets.map((s) => ({ id: s.id, key: crypto.createSecretKey(Buffer.from(this.box.open(s.sealed, s.clientId), 'utf8')), expiresAt: s.expiresAt }));
  }

  async flushLastUsed(): Promise<void> {
    if (this.lastUsed.size === 0) return;
    const batch = new Map(this.lastUsed);
    this.lastUsed.clear();
    await this.store.keys.touch(batch);
  }

  async close(): Promise<void> {
    clearInterval(this.touchTimer);
    this.unsubscribe();
    await this.flushLastUsed().catch(() => {});
  }
}
