/**
 * AI Guard over HTTP.
 *
 * Agents (PAK auth): POST /panopticon/guard/check → the decision, 200 whatever it is (a deny is an
 * answer, not an error).
 *
 * Operators (/api, session or operator token; another account's app is a 404):
 *   policies: read, replace (import), add / replace / enable / disable / move / remove a rule, set
 *   the default effect, simulate a proposed policy; kill switches: list, kill, revive; the app's
 *   recent decisions; guard settings (keep arguments).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { actorOf, ClientIdParams, ownedApp, requireOperator } from '../http/auth.js';
import { ApiError } from '../errors.js';
import { iso } from '../http/format.js';
import { errorResponses } from '../http/openapi.js';
import { emptyBodyIsEmptyObject } from '../http/validation.js';
import type { Services } from '../http/services.js';
import { newId } from '../keys/tokens.js';
import { pakRouteOptions } from '../http/pak-auth.js';
import type { KillSwitch, StoredCheck } from '../store/types/guard.js';
import { depthOf } from '../traces/ingest.js';
import { CLIENT_ID_PATTERN } from '../traces/schema.js';
import { addRule, importPolicy, moveRule, removeRule, replaceRule, setDefaultEffect, setRuleEnabled, type Edit } from './edits.js';
import {
  checkImport, checkRuleInput, EffectSchema, POLICY_LIMITS, PolicyImportSchema, RuleInputSchema, RuleSchema,
  type PolicyDocument, type Rule, type RuleInput,
} from './policy.js';
import { changePolicy, currentPolicy, killSwitchOff, killSwitchOn, runCheck, simulate, traceSample, type PolicyChangeResult, type SimulationSample } from './service.js';
import { IDEMPOTENCY_KEY_MAX_LENGTH, IDEMPOTENCY_KEY_PATTERN } from './idempotency.js';

export const GUARD_LIMITS = {
  argumentsBytes: 16 * 1024,
  argumentsDepth: 8,
  checkBodyBytes: 64 * 1024,
  simulateSamples: 5000,
} as const;

// No U+0000: PostgreSQL text cannot store it, and one such value would fail the whole group
// commit of checks it rides (other apps' checks with it).
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max, pattern: '^[^\\u0000]*$' });

const CheckBody = Type.Object({
  client_id: Type.String({ pattern: CLIENT_ID_PATTERN }),
  tool: Text(256),
  scope: Text(256),
  user_sub: Type.Optional(Type.Union([Text(256), Type.Null()])),
  session_id: Type.Optional(Type.Union([Text(256), Type.Null()])),
  arguments: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true, maxProperties: 256 }), Type.Null()], { description: `The call's arguments, at most ${GUARD_LIMITS.argumentsBytes} bytes as JSON and ${GUARD_LIMITS.argumentsDepth} levels deep. Used for the decision; only a keyed hash (HMAC-SHA-256, per-app key) of their canonical JSON is stored unless the app keeps arguments.` })),
  event_id: Type.Optional(Type.String({ format: 'uuid', description: 'The trace this call will be reported as (a UUID, as in traces).' })),
}, { additionalProperties: false });

const CheckHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: IDEMPOTENCY_KEY_MAX_LENGTH,
    pattern: IDEMPOTENCY_KEY_PATTERN,
    description: 'Makes a retry safe: a request with the same key and the same body within 24 h is answered the first answer and records nothing. 1-255 visible ASCII characters (a UUID is a good key).',
  })),
});

const CheckResult = Type.Object({
  check_id: Type.String(),
  decision: EffectSchema,
  reason: Type.String({ description: '`kill_switch`, `rate_limited`, `too_many_pending_approvals`, `grant`, `default`, or the matching rule\'s reason (its name when it has none).' }),
  message: Type.String(),
  rule_id: Type.Union([Type.String(), Type.Null()]),
  policy_version: Type.Integer(),
  grant_id: Type.Optional(Type.String()),
  retry_after_seconds: Type.Optional(Type.Integer()),
  approval: Type.Optional(Type.Object({ id: Type.String(), poll_url: Type.String(), expires_at: Type.String() })),
});

const RuleParams = Type.Object({ client_id: Type.String({ pattern: CLIENT_ID_PATTERN }), rule_id: Type.String({ maxLength: 64 }) });

const KillSwitchJson = Type.Object({ tool: Type.Union([Type.String(), Type.Null()], { description: 'null: the whole app' }), reason: Type.String(), created_by: Type.String(), created_at: Type.String() });

const PolicyJson = Type.Object({
  client_id: Type.String(),
  version: Type.Integer({ description: 'Bumped by every change; 0 before the first.' }),
  updated_at: Type.Union([Type.String(), Type.Null()]),
  default_effect: EffectSchema,
  rules: Type.Array(RuleSchema),
  kill_switches: Type.Array(KillSwitchJson),
  keep_arguments: Type.Boolean(),
});

const killJson = (k: KillSwitch) => ({ tool: k.tool === '*' ? null : k.tool, reason: k.reason, created_by: k.createdBy, created_at: iso(k.createdAt) });

function policyFailure(result: Extract<PolicyChangeResult, { ok: false }>): ApiError {
  const f = result.failure;
  switch (f.failure) {
    case 'rule_not_found':
      return new ApiError('rule_not_found', `No rule ${f.ruleId} in this application's policy`);
    case 'too_many_rules':
      return new ApiError('policy_too_large', `A policy holds at most ${f.max} rules`);
    case 'policy_conflict':
      return new ApiError('policy_conflict');
    case 'invalid':
      return new ApiError('validation_failed', undefined, { fields: f.errors });
  }
}

function validRule(body: unknown): RuleInput {
  const checked = checkRuleInput(body);
  if (!checked.ok) throw new ApiError('validation_failed', undefined, { fields: checked.errors });
  return checked.value;
}

export const guardRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { store, now } = services;
  const authenticated = requireOperator(services);

  // --- the agent's check ------------------------------------------------------------------------

  app.post('/panopticon/guard/check', {
    ...pakRouteOptions(services),
    bodyLimit: GUARD_LIMITS.checkBodyBytes,
    schema: {
      tags: ['guard'],
      summary: 'Ask whether a tool call may run: allow, deny, or require_approval (with an approval request to poll)',
      security: [{ pak: [] }],
      headers: CheckHeaders,
      body: CheckBody,
      response: { 200: CheckResult, ...errorResponses(400, 401, 403, 413, 415, 422, 429, 503) },
    },
  }, async (request, reply) => {
    const body = request.body;
    const key = request.pak!;
    if (body.client_id !== key.clientId) throw new ApiError('client_id_mismatch');
    if (body.arguments !== undefined && body.arguments !== null) {
      if (depthOf(body.arguments, GUARD_LIMITS.argumentsDepth) > GUARD_LIMITS.argumentsDepth) {
        throw new ApiError('validation_failed', undefined, { fields: [{ field: 'arguments', message: `must not nest deeper than ${GUARD_LIMITS.argumentsDepth} levels` }] });
      }
      if (Buffer.byteLength(JSON.stringify(body.arguments)) > GUARD_LIMITS.argumentsBytes) {
        throw new ApiError('validation_failed', undefined, { fields: [{ field: 'arguments', message: `must not exceed ${GUARD_LIMITS.argumentsBytes} bytes as JSON` }] });
      }
    }
    const result = await runCheck(services, {
      clientId: key.clientId,
      keyId: key.keyId,
      tool: body.tool,
      scope: body.scope,
      userSub: body.user_sub ?? null,
      sessionId: body.session_id ?? null,
      eventId: body.event_id?.toLowerCase() ?? null,
      arguments: body.arguments ?? null,
      body,
      idempotency: { idempotencyKey: request.headers['idempotency-key'] ?? null, signed: request.signed },
    });
    if (!result.ok) throw new ApiError(result.code);
    if (result.replayed) reply.header('idempotent-replayed', 'true');
    return result.answer;
  });

  // --- policies ----------------------------------------------------------------------------------

  async function policyJson(clientId: string) {
    const [policy, kills, settings] = await Promise.all([currentPolicy(services, clientId), store.guard.listKillSwitches(clientId), store.guard.appSettings(clientId)]);
    return {
      client_id: clientId,
      version: policy.version,
      updated_at: iso(policy.updatedAt),
      default_effect: policy.document.default_effect,
      rules: policy.document.rules,
      kill_switches: kills.map(killJson),
      keep_arguments: settings?.keepArguments ?? false,
    };
  }

  async function change(request: FastifyRequest & { params: ClientIdParams }, action: string, target: string | null, edit: Edit, view?: (d: PolicyDocument) => unknown, ifVersion?: number) {
    const owned = await ownedApp(services, request);
    const result = await changePolicy(services, { clientId: owned.clientId, actor: actorOf(request), action, target, edit, view, ifVersion });
    if (!result.ok) throw policyFailure(result);
    return { clientId: owned.clientId, result: result as Extract<PolicyChangeResult, { ok: true }> };
  }

  const ruleView = (ruleId: string) => (d: PolicyDocument) => {
    const index = d.rules.findIndex((r) => r.id === ruleId);
    return { rule: index < 0 ? null : d.rules[index], position: index < 0 ? null : index + 1 };
  };

  const RuleChanged = Type.Object({ version: Type.Integer(), rule: RuleSchema, position: Type.Integer() });
  const ruleChanged = (doc: PolicyDocument, version: number, ruleId: string) => {
    const index = doc.rules.findIndex((r) => r.id === ruleId);
    return { version, rule: doc.rules[index] as Rule, position: index + 1 };
  };

  app.get('/api/apps/:client_id/policies', {
    onRequest: authenticated,
    schema: { tags: ['guard'], summary: "The application's policy (rules in evaluation order, default effect, version) and kill switches", params: ClientIdParams, response: { 200: PolicyJson, ...errorResponses(400, 401, 404) } },
  }, async (request) => policyJson((await ownedApp(services, request)).clientId));

  app.put('/api/apps/:client_id/policies', {
    onRequest: authenticated,
    schema: {
      tags: ['guard'],
      summary: 'Replace the whole policy (import of a reviewed file); rules without an id get one',
      params: ClientIdParams,
      body: Type.Composite([PolicyImportSchema, Type.Object({ if_version: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Apply only if the policy is still at this version.' })) })], { additionalProperties: false }),
      response: { 200: PolicyJson, ...errorResponses(400, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const { if_version, ...imported } = request.body;
    const checked = checkImport(imported);
    if (!checked.ok) throw new ApiError('validation_failed', undefined, { fields: checked.errors });
    const { clientId } = await change(request, 'policy.import', null, importPolicy(checked.value, () => newId('rul'), new Date(now()).toISOString()), undefined, if_version);
    return policyJson(clientId);
  });

  app.post('/api/apps/:client_id/policies/rules', {
    onRequest: authenticated,
    schema: {
      tags: ['guard'],
      summary: 'Add a rule (at the end, or at a 1-based position)',
      params: ClientIdParams,
      body: Type.Composite([RuleInputSchema, Type.Object({ position: Type.Optional(Type.Integer({ minimum: 1, maximum: POLICY_LIMITS.rules })) })], { additionalProperties: false }),
      response: { 201: RuleChanged, ...errorResponses(400, 401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const { position, ...input } = request.body;
    const rule = validRule(input);
    const id = newId('rul');
    const { result } = await change(request, 'policy.rule_add', id, addRule(rule, id, new Date(now()).toISOString(), POLICY_LIMITS.rules, position), ruleView(id));
    return reply.code(201).send(ruleChanged(result.document, result.policy.version, id));
  });

  app.put('/api/apps/:client_id/policies/rules/:rule_id', {
    onRequest: authenticated,
    schema: { tags: ['guard'], summary: 'Replace a rule (keeps its id and position)', params: RuleParams, body: RuleInputSchema, response: { 200: RuleChanged, ...errorResponses(400, 401, 403, 404, 409) } },
  }, async (request) => {
    const { rule_id } = request.params;
    const rule = validRule(request.body);
    const { result } = await change(request, 'policy.rule_edit', rule_id, replaceRule(rule_id, rule, new Date(now()).toISOString()), ruleView(rule_id));
    return ruleChanged(result.document, result.policy.version, rule_id);
  });

  for (const [verb, enabled] of [['enable', true], ['disable', false]] as const) {
    app.post(`/api/apps/:client_id/policies/rules/:rule_id/${verb}`, {
      onRequest: authenticated,
      schema: { tags: ['guard'], summary: `${enabled ? 'Enable' : 'Disable'} a rule`, params: RuleParams, response: { 200: RuleChanged, ...errorResponses(400, 401, 403, 404, 409) } },
    }, async (request) => {
      const { rule_id } = request.params;
      const { result } = await change(request, `policy.rule_${verb}`, rule_id, setRuleEnabled(rule_id, enabled, new Date(now()).toISOString()), ruleView(rule_id));
      return ruleChanged(result.document, result.policy.version, rule_id);
    });
  }

  app.post('/api/apps/:client_id/policies/rules/:rule_id/move', {
    onRequest: authenticated,
    schema: { tags: ['guard'], summary: 'Move a rule to a 1-based position', params: RuleParams, body: Type.Object({ position: Type.Integer({ minimum: 1, maximum: POLICY_LIMITS.rules }) }, { additionalProperties: false }), response: { 200: RuleChanged, ...errorResponses(400, 401, 403, 404, 409) } },
  }, async (request) => {
    const { rule_id } = request.params;
    const { position } = request.body;
    const { result } = await change(request, 'policy.rule_move', rule_id, moveRule(rule_id, position), ruleView(rule_id));
    return ruleChanged(result.document, result.policy.version, rule_id);
  });

  app.delete('/api/apps/:client_id/policies/rules/:rule_id', {
    onRequest: authenticated,
    schema: { tags: ['guard'], summary: 'Remove a rule', params: RuleParams, response: { 200: Type.Object({ version: Type.Integer(), removed: RuleSchema }), ...errorResponses(400, 401, 403, 404, 409) } },
  }, async (request) => {
    const { rule_id } = request.params;
    const before = await currentPolicy(services, (await ownedApp(services, request)).clientId);
    const removed = before.document.rules.find((r) => r.id === rule_id);
    const { result } = await change(request, 'policy.rule_remove', rule_id, removeRule(rule_id), ruleView(rule_id));
    if (removed === undefined) throw new ApiError('rule_not_found');
    return { version: result.policy.version, removed };
  });

  app.put('/api/apps/:client_id/policies/default', {
    onRequest: authenticated,
    schema: { tags: ['guard'], summary: 'Set the effect for calls no rule matches', params: ClientIdParams, body: Type.Object({ effect: EffectSchema }, { additionalProperties: false }), response: { 200: Type.Object({ version: Type.Integer(), default_effect: EffectSchema }), ...errorResponses(400, 401, 403, 404, 409) } },
  }, async (request) => {
    const { effect } = request.body;
    const { result } = await change(request, 'policy.default', null, setDefaultEffect(effect), (d) => ({ default_effect: d.default_effect }));
    return { version: result.policy.version, default_effect: result.document.default_effect };
  });

  app.post('/api/apps/:client_id/policies/simulate', {
    onRequest: authenticated,
    schema: {
      tags: ['guard'],
      summary: "Evaluate a proposed policy against the app's recent checks and traces; report per rule what would change",
      params: ClientIdParams,
      body: Type.Object({
        policy: PolicyImportSchema,
        since_hours: Type.Integer({ minimum: 1, maximum: 24 * 90, default: 24 * 7, description: 'How far back to sample.' }),
        limit: Type.Integer({ minimum: 1, maximum: GUARD_LIMITS.simulateSamples, default: 1000, description: 'Most recent checks and traces to use, each.' }),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({}, { additionalProperties: true }), ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const owned = await ownedApp(services, request);
    const body = request.body;
    const checked = checkImport(body.policy);
    if (!checked.ok) throw new ApiError('validation_failed', undefined, { fields: checked.errors.map((e) => ({ ...e, field: `policy.${e.field}` })) });
    const t = now();
    const current = await currentPolicy(services, owned.clientId);
    const proposed = importPolicy(checked.value, () => newId('rul'), new Date(t).toISOString())(current.document) as PolicyDocument;
    const sinceMs = t - body.since_hours * 3600_000;
    const [checks, traces] = await Promise.all([
      store.guard.recentChecks(owned.clientId, sinceMs, body.limit),
      store.traces.list({ clientId: owned.clientId, limit: body.limit, sinceUs: sinceMs * 1000 }),
    ]);
    const samples: SimulationSample[] = [
      ...checks.map(checkSample),
      ...traces.map(traceSample),
    ];
    return { client_id: owned.clientId, current_version: current.version, ...simulate(current.document, proposed, samples, owned.clientId, t) };
  });

  // --- kill switch -------------------------------------------------------------------------------

  app.get('/api/apps/:client_id/kill-switches', {
    onRequest: authenticated,
    schema: { tags: ['guard'], summary: 'Kill switches that are on', params: ClientIdParams, response: { 200: Type.Object({ kill_switches: Type.Array(KillSwitchJson) }), ...errorResponses(400, 401, 404) } },
  }, async (request) => ({ kill_switches: (await store.guard.listKillSwitches((await ownedApp(services, request)).clientId)).map(killJson) }));

  app.post('/api/apps/:client_id/kill', {
    onRequest: authenticated,
    schema: {
      tags: ['guard'],
      summary: 'Turn a kill switch on, for the whole app or one tool: every check is denied (reason kill_switch) on every node within a second; traces are still stored',
      params: ClientIdParams,
      body: Type.Object({ tool: Type.Optional(Text(256)), reason: Text(500) }, { additionalProperties: false }),
      response: { 200: Type.Object({ kill_switch: KillSwitchJson, was_on: Type.Boolean() }), ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const owned = await ownedApp(services, request);
    const { tool, reason } = request.body;
    const { killSwitch, previous } = await killSwitchOn(services, owned.clientId, tool, reason, actorOf(request));
    return { kill_switch: killJson(killSwitch), was_on: previous !== null };
  });

  app.post('/api/apps/:client_id/revive', {
    onRequest: authenticated,
    schema: {
      tags: ['guard'],
      summary: 'Turn a kill switch off (the whole-app one, or one tool\'s)',
      params: ClientIdParams,
      body: Type.Optional(Type.Object({ tool: Type.Optional(Text(256)) }, { additionalProperties: false })),
      response: { 200: Type.Object({ revived: KillSwitchJson }), ...errorResponses(400, 401, 403, 404) },
    },
    preValidation: emptyBodyIsEmptyObject,
  }, async (request) => {
    const owned = await ownedApp(services, request);
    const { tool } = request.body;
    const removed = await killSwitchOff(services, owned.clientId, tool, actorOf(request));
    if (removed === null) throw new ApiError('kill_switch_not_found', tool === undefined ? 'The app-wide kill switch is not on' : `The kill switch for ${tool} is not on`);
    return { revived: killJson(removed) };
  });

  // --- decisions and settings -------------------------------------------------------------------

  app.get('/api/apps/:client_id/checks', {
    onRequest: authenticated,
    schema: {
      tags: ['guard'],
      summary: 'Recent guard decisions, newest first',
      params: ClientIdParams,
      querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }), since_hours: Type.Integer({ minimum: 1, maximum: 24 * 90, default: 24 }) }),
      response: { 200: Type.Object({ checks: Type.Array(Type.Object({}, { additionalProperties: true })) }), ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const owned = await ownedApp(services, request);
    const q = request.query;
    const checks = await store.guard.recentChecks(owned.clientId, now() - q.since_hours * 3600_000, q.limit);
    return { checks: checks.map(checkJson) };
  });

  app.put('/api/apps/:client_id/guard/settings', {
    onRequest: authenticated,
    schema: {
      tags: ['guard'],
      summary: 'Guard settings: keep_arguments stores checked arguments verbatim (off: only their keyed hash)',
      params: ClientIdParams,
      body: Type.Object({ keep_arguments: Type.Boolean() }, { additionalProperties: false }),
      response: { 200: Type.Object({ keep_arguments: Type.Boolean() }), ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const owned = await ownedApp(services, request);
    const { keep_arguments } = request.body;
    const before = await store.guard.appSettings(owned.clientId);
    const t = now();
    await store.guard.setKeepArguments(owned.clientId, keep_arguments, {
      clientId: owned.clientId, at: t, actor: actorOf(request), action: 'guard.settings', target: null,
      before: { keep_arguments: before?.keepArguments ?? false }, after: { keep_arguments },
    });
    await store.publish({ kind: 'guard_changed', clientId: owned.clientId });
    return { keep_arguments };
  });
};

export function checkJson(c: StoredCheck) {
  return {
    check_id: c.id,
    created_at: iso(c.createdAt),
    tool: c.tool,
    scope: c.scope,
    user_sub: c.userSub,
    session_id: c.sessionId,
    event_id: c.eventId,
    decision: c.decision,
    reason: c.reason,
    rule_id: c.ruleId,
    policy_version: c.policyVersion,
    approval_id: c.approvalId,
    grant_id: c.grantId,
    arguments_sha256: c.argumentsHash,
    arguments: c.arguments === null ? null : (JSON.parse(c.arguments) as unknown),
  };
}

function checkSample(c: StoredCheck): SimulationSample {
  return {
    source: 'check', id: c.id, at: c.createdAt, tool: c.tool, scope: c.scope, userSub: c.userSub,
    arguments: c.arguments === null ? null : (JSON.parse(c.arguments) as Record<string, unknown>),
  };
}
