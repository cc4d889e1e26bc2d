/**
 * The approvals inbox feed of one node: what GET /api/apps/:client_id/approvals/live streams.
 *
 * It listens to store signals, not to the in-process GuardEvents, because an approval is opened on
 * the node that ran the guard check and decided on the node the operator happened to reach; on
 * PostgreSQL `approval_requested` and `approval_decided` reach every node through NOTIFY (and the
 * publishing node's own listeners at once). A signal carries only ids, so the feed reads the
 * approval and reports the state it is in by then: `requested` while pending, `decided`, or
 * `expired`. Reads run one after another, so a later signal never reports an older state than an
 * earlier one, and a read happens only when a stream on this node watches that app.
 */
import type { Approval } from '../store/types/approvals.js';
import { effectiveStatus } from '../store/types/approvals.js';
import type { Store } from '../store/types/store.js';

export type InboxEvent =
  | { event: 'requested' | 'decided' | 'expired'; approval: Approval }
  /** Signals may have been lost (the listener connection dropped): re-read the list. */
  | { event: 'resync' };

const DEAF_RESYNC_MS = 5_000;

export type InboxSubscriber = (event: InboxEvent) => void;

export class ApprovalFeed {
  private readonly streams = new Map<string, Set<InboxSubscriber>>();
  private readonly unsubscribe: () => void;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private deafTimer: NodeJS.Timeout | undefined;

  constructor(private readonly store: Store, private readonly now: () => number, private readonly onError: (err: unknown) => void) {
    this.unsubscribe = store.subscribe((signal) => {
      if (signal.kind === 'signals_lost') this.resyncWhileDeaf();
      if (signal.kind === 'signals_restored') this.stopResyncing();
      if (signal.kind !== 'approval_requested' && signal.kind !== 'approval_decided') return;
      if (signal.clientId === '*') {
        for (const set of this.streams.values()) for (const s of set) s({ event: 'resync' });
        return;
      }
      if (!this.streams.has(signal.clientId)) return;
      const { clientId, approvalId } = signal;
      this.queue = this.queue.then(() => this.report(clientId, approvalId));
    });
  }

  private async report(clientId: string, approvalId: string): Promise<void> {
    if (this.closed || !this.streams.has(clientId)) return;
    let approval: Approval | null;
    try {
      approval = await this.store.approvals.get(approvalId);
    } catch (err) {
      // The event is lost for now; the streams re-read the list rather than show a stale inbox.
      this.onError(err);
      for (const s of this.streams.get(clientId) ?? []) s({ event: 'resync' });
      return;
    }
    if (approval === null || approval.clientId !== clientId) return;
    const status = effectiveStatus(approval, this.now());
    const event = status === 'pending' ? 'requested' : status === 'expired' ? 'expired' : 'decided';
    for (const s of this.streams.get(clientId) ?? []) s({ event, approval });
  }

  /** Requests opened on other nodes are not signalled while the listener is down: inboxes re-read on a period. */
  private resyncWhileDeaf(): void {
    if (this.deafTimer !== undefined || this.closed) return;
    this.deafTimer = setInterval(() => {
      for (const set of this.streams.values()) for (const s of set) s({ event: 'resync' });
    }, DEAF_RESYNC_MS);
    this.deafTimer.unref();
  }

  private stopResyncing(): void {
    if (this.deafTimer !== undefined) clearInterval(this.deafTimer);
    this.deafTimer = undefined;
  }

  /** Streams open on this node. */
  get size(): number {
    let n = 0;
    for (const set of this.streams.values()) n += set.size;
    return n;
  }

  subscribe(clientId: string, subscriber: InboxSubscriber): () => void {
    let set = this.streams.get(clientId);
    if (set === undefined) this.streams.set(clientId, (set = new Set()));
    set.add(subscriber);
    return () => {
      set.delete(subscriber);
      if (set.size === 0 && this.streams.get(clientId) === set) this.streams.delete(clientId);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopResyncing();
    this.unsubscribe();
    this.streams.clear();
    await this.queue;
  }
}
