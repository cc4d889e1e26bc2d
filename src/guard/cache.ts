/**
 * Per-node cache of what a guard check reads: the compiled policy, kill switches, grants and the
 * app's settings. Loaded on first use, dropped when any node signals `guard_changed` for the app
 * (PostgreSQL LISTEN/NOTIFY; in-process on SQLite), and reloaded after a short TTL anyway, so even
 * a lost notification cannot keep a kill switch off for long.
 */
import type { Grant } from '../store/types/guard.js';
import type { Store } from '../store/types/store.js';
import { compilePolicy, type CompiledPolicy, type KillState } from './evaluate.js';
import { EMPTY_POLICY, parseStoredDocument, type PolicyDocument } from './policy.js';

export interface AppGuard {
  document: PolicyDocument;
  policy: CompiledPolicy;
  kills: KillState;
  grants: Grant[];
  keepArguments: boolean;
  loadedAt: number;
}

const TTL_MS = 5_000;

export class GuardCache {
  private readonly entries = new Map<string, Promise<AppGuard>>();
  private readonly unsubscribe: () => void;
  /** Bumped on every invalidation, so a load that raced with one is not cached. */
  private generation = 0;
  /** Other nodes' signals do not reach this node now: a kill switch set elsewhere would be missed, so no entry is kept. */
  private deaf = false;

  constructor(private readonly store: Store, private readonly now: () => number) {
    this.unsubscribe = store.subscribe((signal) => {
      if (signal.kind === 'signals_lost' || signal.kind === 'signals_restored') {
        this.deaf = signal.kind === 'signals_lost';
        this.generation++;
        this.entries.clear();
        return;
      }
      if (signal.kind !== 'guard_changed') return;
      this.generation++;
      if (signal.clientId === '*') this.entries.clear();
      else this.entries.delete(signal.clientId);
    });
  }

  async get(clientId: string): Promise<AppGuard> {
    const cached = this.entries.get(clientId);
    if (cached !== undefined) {
      const entry = await cached;
      if (this.now() - entry.loadedAt < TTL_MS) return entry;
      if (this.entries.get(clientId) === cached) this.entries.delete(clientId);
    }
    const generation = this.generation;
    const loading = this.load(clientId);
    if (this.deaf) return loading;
    this.entries.set(clientId, loading);
    loading.then(
      () => {
        if (this.generation !== generation && this.entries.get(clientId) === loading) this.entries.delete(clientId);
      },
      () => this.entries.delete(clientId),
    );
    return loading;
  }

  private async load(clientId: string): Promise<AppGuard> {
    const now = this.now();
    const [stored, kills, grants, settings] = await Promise.all([
      this.store.guard.getPolicy(clientId),
      this.store.guard.listKillSwitches(clientId),
      this.store.guard.activeGrants(clientId, now),
      this.store.guard.appSettings(clientId),
    ]);
    const document = stored === null ? EMPTY_POLICY : parseStoredDocument(stored.document);
    const appKill = kills.find((k) => k.tool === '*');
    return {
      document,
      policy: compilePolicy(document, stored?.version ?? 0),
      kills: {
        app: appKill ? { reason: appKill.reason } : null,
        tools: new Map(kills.filter((k) => k.tool !== '*').map((k) => [k.tool, { reason: k.reason }])),
      },
      grants,
      keepArguments: settings?.keepArguments ?? false,
      loadedAt: now,
    };
  }

  close(): void {
    this.unsubscribe();
  }
}
