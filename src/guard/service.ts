/**
 * The guard's domain operations: the pre-call check, policy changes (each a compare-and-set of
 * the whole document, audited before → after, then signalled to every node), kill switches, and
 * simulation of a proposed policy. Routes stay thin and call these with the store.
 */
import type { GroupCommit } from '../store/group-commit.js';
import type { GuardCache } from './cache.js';
import type { ArgumentHasher } from './arguments-hash.js';
import { newId } from '../keys/tokens.js';
import { TOO_MANY_PENDING, type CheckRecord, type Grant, type KillSwitch, type RecordedCheck, type RecordOutcome, type StoredPolicy } from '../store/types/guard.js';
import type { Store, StoredTrace } from '../store/types/store.js';
import type { GuardEvent, GuardEvents } from './events.js';
import { isFailure, type Edit, type EditFailure } from './edits.js';
import { applyRateLimit, compilePolicy, evaluate, NO_KILLS, type CheckInput, type Evaluation, type KillState } from './evaluate.js';
import { webhookDeliveries } from '../webhooks/service.js';
import { idempotencyKeys, requestHash, type IdempotencyInput } from './idempotency.js';
import { checkDocument, EMPTY_POLICY, parseStoredDocument, type Effect, type PolicyDocument } from './policy.js';

/**
 * What the guard's operations use: the store, this node's guard cache and check commit queue, the
 * events it publishes, the argument hasher, the approval cap and the clock. A server passes its
 * services; a test or a benchmark can pass just these.
 */
export interface GuardContext {
  store: Store;
  guard: GuardCache;
  checks: GroupCommit<CheckRecord, RecordOutcome>;
  events: GuardEvents;
  argumentHashes: ArgumentHasher;
  config: { maxPendingApprovals: number };
  now: () => number;
}

export interface CheckRequest {
  clientId: string;
  keyId: string;
  tool: string;
  scope: string;
  userSub: string | null;
  sessionId: string | null;
  eventId: string | null;
  arguments: Record<string, unknown> | null;
  /** The request body as the client sent it: what "the same request" is compared on. */
  body: unknown;
  /** Idempotency-Key header and the matched signature (HMAC mode), if any. */
  idempotency: IdempotencyInput;
}

/** The answer of `POST /panopticon/guard/check`, as sent (and as stored for a retry or replay). */
export interface CheckAnswer {
  check_id: string;
  decision: Effect;
  reason: string;
  message: string;
  rule_id: string | null;
  policy_version: number;
  grant_id?: string;
  retry_after_seconds?: number;
  approval?: { id: string; poll_url: string; expires_at: string };
}

export type CheckResult =
  /** `replayed`: the stored answer of an earlier identical request (same Idempotency-Key or signature); nothing was recorded. */
  | { ok: true; answer: CheckAnswer; replayed: boolean }
  | { ok: false; code: 'idempotency_key_reused' };

function findGrant(grants: readonly Grant[], input: CheckRequest, hash: string, now: number): Grant | null {
  return grants.find((g) =>
    g.tool === input.tool &&
    g.userSub === input.userSub &&
    g.argumentsHash === hash &&
    (g.expiresAt === null || g.expiresAt > now) &&
    (g.kind === 'always' || (input.sessionId !== null && g.sessionId === input.sessionId)),
  ) ?? null;
}

/** The answer for what was committed: the evaluation, unless the cap turned it into a deny; the approval it opened or was answered with. */
export function checkAnswer(record: CheckRecord, evaluation: Evaluation, outcome: RecordedCheck): CheckAnswer {
  const common = { check_id: record.id, rule_id: evaluation.ruleId, policy_version: record.policyVersion };
  if (outcome.kind === 'refused') {
    const retry = Math.max(1, Math.ceil(outcome.retryAfterMs / 1000));
    return {
      ...common,
      decision: 'deny',
      reason: TOO_MANY_PENDING,
      message: `this application already has ${record.approval?.maxPending ?? 0} approval requests waiting for a human; no new one was opened. Retry in ${retry} s, or ask an operator to decide the pending ones`,
      retry_after_seconds: retry,
    };
  }
  const approval = outcome.approval;
  return {
    ...common,
    decision: evaluation.decision,
    reason: evaluation.reason,
    message: evaluation.message,
    ...(record.grantId !== null ? { grant_id: record.grantId } : {}),
    ...(evaluation.retryAfterSeconds !== null ? { retry_after_seconds: evaluation.retryAfterSeconds } : {}),
    ...(approval !== null ? { approval: { id: approval.id, poll_url: `/panopticon/approvals/${approval.id}`, expires_at: new Date(approval.expiresAt).toISOString() } } : {}),
  };
}

/**
 * Decides, records the decision durably (with the approval it opens and its usage counts), then
 * answers. Arguments are used for the decision and dropped: only their hash is kept unless the app
 * opted in to keeping them.
 *
 * Idempotency first: a request whose Idempotency-Key or signature already holds an answer is
 * answered that answer before anything is evaluated (a replay must not count against a rule's
 * rate limit either), except while a kill switch covers the call: then it is decided afresh, so
 * no stored `allow` outlives the switch. Copies racing past this read are settled in the commit.
 */
export async function runCheck(services: GuardContext, input: CheckRequest): Promise<CheckResult> {
  const now = services.now();
  const state = await services.guard.get(input.clientId);
  const killed = (state.kills.app ?? state.kills.tools.get(input.tool) ?? null) !== null;
  const keys = killed ? [] : idempotencyKeys(input.idempotency, now);
  const hashOfRequest = keys.length > 0 ? requestHash(input.body) : '';
  if (keys.length > 0) {
    const found = await services.store.guard.findAnswers(input.clientId, keys.map((k) => k.key), now);
    const first = keys.map((k) => found.find((f) => f.key === k.key)).find((f) => f !== undefined);
    if (first !== undefined) {
      if (first.requestHash !== hashOfRequest) return { ok: false, code: 'idempotency_key_reused' };
      // The request's other keys answer the same from now on: a replay with a new Idempotency-Key, or a re-signed retry.
      const unbound = keys.filter((k) => !found.some((f) => f.key === k.key));
      await services.store.guard.bindAnswers(input.clientId, unbound, { requestHash: first.requestHash, checkId: first.checkId, answer: first.answer }, now);
      return { ok: true, answer: JSON.parse(first.answer) as CheckAnswer, replayed: true };
    }
  }

  const call: CheckInput = { clientId: input.clientId, tool: input.tool, scope: input.scope, userSub: input.userSub, sessionId: input.sessionId, arguments: input.arguments ?? {} };
  let evaluation = evaluate(state.policy, state.kills, call, now);
  if (evaluation.rateLimit !== null) {
    const { bucket, windowStart, windowEnd } = evaluation.rateLimit;
    evaluation = applyRateLimit(evaluation, await services.store.guard.hitRateCounter(bucket, windowStart, windowEnd), now);
  }
  const hash = services.argumentHashes.hash(input.clientId, input.arguments);
  let grantId: string | null = null;
  if (evaluation.decision === 'require_approval') {
    const grant = findGrant(state.grants, input, hash, now);
    if (grant !== null) {
      grantId = grant.id;
      evaluation = { ...evaluation, decision: 'allow', reason: 'grant', message: `allowed by grant ${grant.id} (approval ${grant.approvalId})`, approvalTtlMs: null };
    }
  }
  const decided = evaluation;
  const approval = decided.decision === 'require_approval'
    ? { id: newId('apr'), ruleId: decided.ruleId, reason: decided.message, expiresAt: now + (decided.approvalTtlMs ?? 600_000), maxPending: services.config.maxPendingApprovals }
    : null;
  const record: CheckRecord = {
    id: newId('chk'),
    clientId: input.clientId,
    createdAt: now,
    tool: input.tool,
    scope: input.scope,
    userSub: input.userSub,
    sessionId: input.sessionId,
    eventId: input.eventId,
    argumentsHash: hash,
    arguments: state.keepArguments && input.arguments !== null ? JSON.stringify(input.arguments) : null,
    decision: decided.decision,
    reason: decided.reason,
    ruleId: decided.ruleId,
    policyVersion: state.policy.version,
    keyId: input.keyId,
    grantId,
    approval,
    killed: decided.killed,
    idempotency: keys.length === 0 ? null : { keys, requestHash: hashOfRequest, answer: (o) => JSON.stringify(checkAnswer(record, decided, o)) },
  };
  const outcome = await recordCheck(services, record);
  if (outcome.kind === 'key_reused') return { ok: false, code: 'idempotency_key_reused' };
  if (outcome.kind === 'replayed') return { ok: true, answer: JSON.parse(outcome.answer) as CheckAnswer, replayed: true };
  return { ok: true, answer: checkAnswer(record, decided, outcome), replayed: false };
}

/**
 * Commits a decision (and the approval it opens) through the group commit, then tells the
 * approval's watchers. The approval's webhook deliveries commit with it, so no crash between the
 * two can lose them; a check answered with an identical pending approval, or refused by the cap,
 * opens nothing and tells nobody.
 */
export async function recordCheck(services: Pick<GuardContext, 'checks' | 'events' | 'store' | 'now'>, record: CheckRecord): Promise<RecordOutcome> {
  const requested: GuardEvent | null = record.approval === null
    ? null
    : { type: 'approval.requested', clientId: record.clientId, approvalId: record.approval.id, tool: record.tool, userSub: record.userSub, reason: record.approval.reason, expiresAt: record.approval.expiresAt };
  if (requested !== null) record.deliveries = await webhookDeliveries(services.store, requested, services.now());
  const outcome = await services.checks.write(record);
  if (requested !== null && outcome.kind === 'recorded' && outcome.approval?.opened === true) services.events.publish(requested);
  return outcome;
}

export type PolicyChangeResult =
  | { ok: true; policy: StoredPolicy; document: PolicyDocument }
  | { ok: false; failure: EditFailure | { failure: 'policy_conflict' } | { failure: 'invalid'; errors: Array<{ field: string; message: string }> } };

export interface PolicyChange {
  clientId: string;
  actor: string;
  action: string;
  target: string | null;
  edit: Edit;
  /** What of the document the audit entry shows, before and after (default: all of it). */
  view?: (doc: PolicyDocument) => unknown;
  /** Apply only to this version (an editor's optimistic lock); otherwise retried on a race. */
  ifVersion?: number | undefined;
}

export async function currentPolicy(services: GuardContext, clientId: string): Promise<{ version: number; document: PolicyDocument; updatedAt: number | null }> {
  const stored = await services.store.guard.getPolicy(clientId);
  return stored === null
    ? { version: 0, document: EMPTY_POLICY, updatedAt: null }
    : { version: stored.version, document: parseStoredDocument(stored.document), updatedAt: stored.updatedAt };
}

export async function changePolicy(services: GuardContext, change: PolicyChange): Promise<PolicyChangeResult> {
  const view = change.view ?? ((d: PolicyDocument) => d);
  for (let attempt = 0; attempt < 5; attempt++) {
    const now = services.now();
    const current = await currentPolicy(services, change.clientId);
    if (change.ifVersion !== undefined && change.ifVersion !== current.version) return { ok: false, failure: { failure: 'policy_conflict' } };
    const next = change.edit(current.document);
    if (isFailure(next)) return { ok: false, failure: next };
    const checked = checkDocument(next);
    if (!checked.ok) return { ok: false, failure: { failure: 'invalid', errors: checked.errors } };
    const saved = await services.store.guard.savePolicy({
      clientId: change.clientId,
      expectedVersion: current.version,
      document: JSON.stringify(next),
      now,
      actor: change.actor,
      audit: {
        clientId: change.clientId, at: now, actor: change.actor, action: change.action, target: change.target,
        before: { version: current.version, ...asObject(view(current.document)) },
        after: { version: current.version + 1, ...asObject(view(next)) },
      },
    });
    if (saved !== null) {
      await services.store.publish({ kind: 'guard_changed', clientId: change.clientId });
      return { ok: true, policy: saved, document: next };
    }
  }
  return { ok: false, failure: { failure: 'policy_conflict' } };
}

function asObject(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
}

export const APP_WIDE = '*';

export async function killSwitchOn(services: GuardContext, clientId: string, tool: string | undefined, reason: string, actor: string): Promise<{ killSwitch: KillSwitch; previous: KillSwitch | null }> {
  const now = services.now();
  const target = tool ?? APP_WIDE;
  const killSwitch: KillSwitch = { clientId, tool: target, reason, createdBy: actor, createdAt: now };
  const event: GuardEvent = { type: 'kill_switch.on', clientId, tool: target, reason, actor };
  const previous = await services.store.guard.setKillSwitch({
    ...killSwitch,
    audit: { clientId, at: now, actor, action: 'kill.on', target, before: null, after: { tool: target, reason } },
    deliveries: await webhookDeliveries(services.store, event, now),
  });
  await services.store.publish({ kind: 'guard_changed', clientId });
  services.events.publish(event);
  return { killSwitch, previous };
}

export async function killSwitchOff(services: GuardContext, clientId: string, tool: string | undefined, actor: string): Promise<KillSwitch | null> {
  const now = services.now();
  const target = tool ?? APP_WIDE;
  const event: GuardEvent = { type: 'kill_switch.off', clientId, tool: target, actor };
  const removed = await services.store.guard.removeKillSwitch({
    clientId, tool: target,
    audit: { clientId, at: now, actor, action: 'kill.off', target, before: { tool: target }, after: null },
    deliveries: await webhookDeliveries(services.store, event, now),
  });
  if (removed === null) return null;
  await services.store.publish({ kind: 'guard_changed', clientId });
  services.events.publish(event);
  return removed;
}

// --- simulation --------------------------------------------------------------------------------

export interface SimulationSample {
  source: 'check' | 'trace';
  id: string;
  at: number;
  tool: string;
  scope: string;
  userSub: string | null;
  /** Null when the arguments were not kept: rules with argument conditions cannot be decided for it. */
  arguments: Record<string, unknown> | null;
}

export interface RuleImpact {
  rule_id: string | null;
  name: string;
  /** Samples this rule decides under the proposed policy (first match). */
  matched: number;
  /** Of those, how many get a different decision than today. */
  changed: number;
  to_allow: number;
  to_deny: number;
  to_require_approval: number;
}

export interface SimulationReport {
  samples: number;
  from: string | null;
  to: string | null;
  current: Record<Effect, number>;
  proposed: Record<Effect, number>;
  changed: number;
  /** Samples without stored arguments that a proposed argument condition would need. */
  undecidable: number;
  rules: RuleImpact[];
  examples: Array<{ source: string; id: string; tool: string; user_sub: string | null; current: Effect; proposed: Effect; rule_id: string | null }>;
}

const effects = (): Record<Effect, number> => ({ allow: 0, deny: 0, require_approval: 0 });

/**
 * Evaluates the current and a proposed policy on the same samples (kill switches and rate limits
 * aside: they are not part of a policy's text) and reports, per proposed rule, what would change.
 */
export function simulate(current: PolicyDocument, proposed: PolicyDocument, samples: readonly SimulationSample[], clientId: string, now: number): SimulationReport {
  const before = compilePolicy(current, 0);
  const after = compilePolicy(proposed, 0);
  const kills: KillState = NO_KILLS;
  const report: SimulationReport = { samples: samples.length, from: null, to: null, current: effects(), proposed: effects(), changed: 0, undecidable: 0, rules: [], examples: [] };
  const impact = new Map<string | null, RuleImpact>();
  for (const r of proposed.rules) impact.set(r.id, { rule_id: r.id, name: r.name, matched: 0, changed: 0, to_allow: 0, to_deny: 0, to_require_approval: 0 });
  impact.set(null, { rule_id: null, name: `(default: ${proposed.default_effect})`, matched: 0, changed: 0, to_allow: 0, to_deny: 0, to_require_approval: 0 });
  const needsArguments = proposed.rules.some((r) => r.enabled && r.match.arguments.length > 0);
  let first = Infinity;
  let last = -Infinity;
  for (const s of samples) {
    first = Math.min(first, s.at);
    last = Math.max(last, s.at);
    const call: CheckInput = { clientId, tool: s.tool, scope: s.scope, userSub: s.userSub, sessionId: null, arguments: s.arguments ?? {} };
    if (s.arguments === null && needsArguments) report.undecidable++;
    const a = evaluate(before, kills, call, now);
    const b = evaluate(after, kills, call, now);
    report.current[a.decision]++;
    report.proposed[b.decision]++;
    const entry = impact.get(b.ruleId)!;
    entry.matched++;
    if (a.decision !== b.decision) {
      report.changed++;
      entry.changed++;
      entry[`to_${b.decision}`]++;
      if (report.examples.length < 50) {
        report.examples.push({ source: s.source, id: s.id, tool: s.tool, user_sub: s.userSub, current: a.decision, proposed: b.decision, rule_id: b.ruleId });
      }
    }
  }
  report.rules = [...impact.values()];
  if (samples.length > 0) {
    report.from = new Date(first).toISOString();
    report.to = new Date(last).toISOString();
  }
  return report;
}

export function traceSample(t: StoredTrace): SimulationSample {
  return { source: 'trace', id: t.eventId, at: Math.floor(t.startedAtUs / 1000), tool: t.tool, scope: t.scopeUsed, userSub: t.userSub, arguments: null };
}
