/**
 * Governance events, published in-process after the change they describe has committed. Webhook
 * delivery (an outbox with retries) and the console's live views subscribe here; a subscriber must
 * not throw or block, since publishers sit on request paths.
 */
import type { GuardEventType } from '../store/types/webhooks.js';

export type GuardEvent =
  | { type: 'approval.requested'; clientId: string; approvalId: string; tool: string; userSub: string | null; reason: string; expiresAt: number }
  | { type: 'approval.decided'; clientId: string; approvalId: string; status: 'approved' | 'denied'; decidedBy: string; comment: string | null }
  | { type: 'approval.expired'; clientId: string; approvalId: string }
  | { type: 'kill_switch.on'; clientId: string; tool: string; reason: string; actor: string }
  | { type: 'kill_switch.off'; clientId: string; tool: string; actor: string }
  /**
   * An MCP server showed a tool definition that is not pinned (MCP proxy, tool pinning): a tool not
   * seen before while new tools need approval (`new`), or another definition of a pinned tool
   * (`changed`, a possible "rug pull"). It is hidden and refused until an operator approves it.
   */
  | { type: 'tool.changed'; clientId: string; tool: string; change: 'new' | 'changed'; definitionId: string; hash: string; previousHash: string | null };

export type { GuardEventType };
// Every stored event type is an event this module publishes, and the other way round.
type SameTypes<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const eventTypesAgree: SameTypes<GuardEvent['type'], GuardEventType> = true;
void eventTypesAgree;
export const GUARD_EVENT_TYPES: readonly GuardEventType[] = ['approval.requested', 'approval.decided', 'approval.expired', 'kill_switch.on', 'kill_switch.off', 'tool.changed'];

export class GuardEvents {
  private readonly listeners = new Set<(event: GuardEvent) => void>();

  subscribe(listener: (event: GuardEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(event: GuardEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A broken subscriber must not fail the change that already committed.
      }
    }
  }
}
