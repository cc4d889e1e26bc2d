/**
 * Opens approval requests for tests the way the guard check does on a `require_approval` decision:
 * a CheckRecord with an approval, committed by the check's own recordCheck (its webhook deliveries
 * in the same transaction, then the `approval.requested` event), without needing a policy. The
 * approval must open (not be reused, not be refused by the cap): the fixture fails otherwise.
 */
import { recordCheck } from '../../src/guard/service.js';
import { newId } from '../../src/keys/tokens.js';
import type { CheckRecord } from '../../src/store/types/guard.js';
import type { RunningServer } from './harness.js';

export interface OpenApprovalOptions {
  tool?: string;
  userSub?: string | null;
  sessionId?: string | null;
  arguments?: unknown;
  expiresInMs?: number;
  reason?: string;
}

let opened = 0;

export async function openApproval(server: RunningServer, clientId: string, options: OpenApprovalOptions = {}) {
  const now = server.services.now();
  const approvalId = newId('apr');
  const record: CheckRecord = {
    id: newId('chk'),
    clientId,
    createdAt: now,
    tool: options.tool ?? 'payments.refund',
    scope: 'payments:write',
    userSub: options.userSub === undefined ? 'user-42' : options.userSub,
    sessionId: options.sessionId === undefined ? 'sess-1' : options.sessionId,
    eventId: null,
    // Distinct arguments unless given: an identical pending request would be reused, not opened again.
    argumentsHash: server.services.argumentHashes.hash(clientId, options.arguments ?? { amount: 120, fixture: ++opened }),
    arguments: null,
    decision: 'require_approval',
    reason: options.reason ?? 'refunds over 100 need a human',
    ruleId: 'refunds-big',
    policyVersion: 1,
    keyId: 'pak_test',
    grantId: null,
    approval: { id: approvalId, ruleId: 'refunds-big', reason: options.reason ?? 'refunds over 100 need a human', expiresAt: now + (options.expiresInMs ?? 600_000), maxPending: server.services.config.maxPendingApprovals },
    killed: false,
  };
  const outcome = await recordCheck(server.services, record);
  if (outcome.kind !== 'recorded' || outcome.approval?.opened !== true) throw new Error(`openApproval: the approval did not open (${JSON.stringify(outcome)})`);
  return { approvalId, record };
}
