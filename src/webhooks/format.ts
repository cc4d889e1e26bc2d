/**
 * What a webhook receives: the body for each event in the endpoint's format, and the signature.
 *
 * Signature: `X-Panopticon-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.POST.<path and
 * query of the endpoint URL>.<raw body>")>`, the scheme agents use to sign their own requests, so one
 * verifier serves both directions.
 */
import crypto from 'node:crypto';
import type { GuardEvent } from '../guard/events.js';
import type { WebhookFormat } from '../store/types/webhooks.js';

export function signatureHeader(secret: string, unixSeconds: number, url: string, body: string): string {
  const target = new URL(url);
  const mac = crypto.createHmac('sha256', secret).update(`${unixSeconds}.POST.${target.pathname}${target.search}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The generic JSON body: the event type, its app, when it happened, and its data in snake_case. */
export function jsonBody(event: GuardEvent, occurredAt: number): Record<string, unknown> {
  const base = { type: event.type, client_id: event.clientId, occurred_at: iso(occurredAt) };
  switch (event.type) {
    case 'approval.requested':
      return {
        ...base,
        data: {
          approval_id: event.approvalId, tool: event.tool, user_sub: event.userSub, reason: event.reason,
          expires_at: iso(event.expiresAt), poll_url: `/panopticon/approvals/${event.approvalId}`,
        },
      };
    case 'approval.decided':
      return { ...base, data: { approval_id: event.approvalId, status: event.status, decided_by: event.decidedBy, comment: event.comment } };
    case 'approval.expired':
      return { ...base, data: { approval_id: event.approvalId, status: 'expired' } };
    case 'kill_switch.on':
      return { ...base, data: { tool: event.tool, reason: event.reason, actor: event.actor } };
    case 'kill_switch.off':
      return { ...base, data: { tool: event.tool, actor: event.actor } };
    case 'tool.changed':
      return { ...base, data: { tool: event.tool, change: event.change, definition_id: event.definitionId, hash: event.hash, previous_hash: event.previousHash } };
  }
}

/** Slack treats <, > and & as markup; user-supplied text must not open links or mentions. */
const esc = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const code = (text: string): string => '`' + esc(text).replace(/`/g, "'") + '`';
const toolName = (tool: string): string => (tool === '*' ? 'all tools' : `tool ${code(tool)}`);

/** A Slack incoming-webhook body: `text` (notifications, fallbacks) and the same sentence as blocks. */
export function slackBody(event: GuardEvent): { text: string; blocks: unknown[] } {
  let text: string;
  let hint: string | null = null;
  switch (event.type) {
    case 'approval.requested':
      text = `:raising_hand: Approval needed in ${code(event.clientId)}: ${toolName(event.tool)} for user ${event.userSub === null ? '(none)' : code(event.userSub)}. ` +
        `Reason: ${esc(event.reason)}. Expires ${iso(event.expiresAt)}.`;
      hint = `Approve: \`logi panopticon approvals approve ${event.approvalId}\`  ·  Deny: \`logi panopticon approvals deny ${event.approvalId}\``;
      break;
    case 'approval.decided':
      text = `${event.status === 'approved' ? ':white_check_mark:' : ':no_entry:'} Approval request ${code(event.approvalId)} in ${code(event.clientId)} was ` +
        `${event.status} by ${esc(event.decidedBy)}${event.comment === null ? '.' : `: "${esc(event.comment)}"`}`;
      break;
    case 'approval.expired':
      text = `:hourglass: Approval request ${code(event.approvalId)} in ${code(event.clientId)} expired unanswered; the call was not allowed.`;
      break;
    case 'kill_switch.on':
      text = `:rotating_light: Kill switch ON in ${code(event.clientId)} for ${toolName(event.tool)} by ${esc(event.actor)}. Reason: ${esc(event.reason)}.`;
      break;
    case 'kill_switch.off':
      text = `:large_green_circle: Kill switch off in ${code(event.clientId)} for ${toolName(event.tool)} by ${esc(event.actor)}.`;
      break;
    case 'tool.changed':
      text = event.change === 'new'
        ? `:new: New MCP tool ${code(event.tool)} in ${code(event.clientId)} waits for approval; it is hidden and refused until then.`
        : `:warning: MCP tool ${code(event.tool)} in ${code(event.clientId)} changed its definition (${code(event.previousHash?.slice(0, 12) ?? '?')} → ${code(event.hash.slice(0, 12))}); it is quarantined: hidden and refused until an operator approves it.`;
      hint = `Review: \`logi panopticon tools list ${event.clientId}\`  ·  Approve: \`logi panopticon tools approve ${event.clientId} ${event.definitionId}\`  ·  Reject: \`logi panopticon tools reject ${event.clientId} ${event.definitionId}\``;
      break;
  }
  const blocks: unknown[] = [{ type: 'section', text: { type: 'mrkdwn', text } }];
  if (hint !== null) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: hint } });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `Panopticon · ${event.type}` }] });
  return { text: hint === null ? text : `${text}\n${hint}`, blocks };
}

export function deliveryBody(event: GuardEvent, format: WebhookFormat, occurredAt: number): string {
  return JSON.stringify(format === 'slack' ? slackBody(event) : jsonBody(event, occurredAt));
}
