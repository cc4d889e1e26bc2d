/**
 * Approvals and grants over HTTP.
 *
 * Agent (PAK): GET /panopticon/approvals/:approval_id[?wait=N], only for the approval's own app.
 * Operator: list an app's approvals, read / approve / deny one by its id alone (the operator must
 * own its app; otherwise it does not exist for them), list and revoke grants.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { actorOf, ClientIdParams, operatorOf, ownedApp, requireOperator } from '../http/auth.js';
import { pakRouteOptions } from '../http/pak-auth.js';
import { ApiError } from '../errors.js';
import { iso } from '../http/format.js';
import { errorResponses } from '../http/openapi.js';
import { openEventStream } from '../http/sse.js';
import { emptyBodyIsEmptyObject } from '../http/validation.js';
import type { Services } from '../http/services.js';
import { effectiveStatus, type Approval } from '../store/types/approvals.js';
import type { Grant } from '../store/types/guard.js';
import { ApprovalFeed, type InboxEvent } from './live.js';
import { MAX_REMEMBER_SECONDS, MAX_WAIT_SECONDS } from './service.js';

export const INBOX_HEARTBEAT_MS = 15_000;

const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
const StatusSchema = Type.Union([Type.Literal('pending'), Type.Literal('approved'), Type.Literal('denied'), Type.Literal('expired')]);
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const ApprovalJson = Type.Object({
  id: Type.String(),
  client_id: Type.String(),
  status: StatusSchema,
  tool: Type.String(),
  scope: Type.String(),
  user_sub: Nullable(Type.String()),
  session_id: Nullable(Type.String()),
  arguments_hash: Type.String(),
  rule_id: Nullable(Type.String()),
  reason: Type.String(),
  check_id: Type.String(),
  created_at: Type.String(),
  expires_at: Type.String(),
  decided_at: Nullable(Type.String()),
  decided_by: Nullable(Type.String()),
  comment: Nullable(Type.String()),
  remember: Nullable(Type.String()),
  grant_id: Nullable(Type.String()),
});

export function approvalJson(a: Approval, now: number) {
  const status = effectiveStatus(a, now);
  return {
    id: a.id,
    client_id: a.clientId,
    status,
    tool: a.tool,
    scope: a.scope,
    user_sub: a.userSub,
    session_id: a.sessionId,
    arguments_hash: a.argumentsHash,
    rule_id: a.ruleId,
    reason: a.reason,
    check_id: a.checkId,
    created_at: iso(a.createdAt),
    expires_at: iso(a.expiresAt),
    // An approval nobody answered in time was decided by its expiry.
    decided_at: iso(status === 'expired' ? a.expiresAt : a.decidedAt),
    decided_by: a.decidedBy,
    comment: a.comment,
    remember: a.remember,
    grant_id: a.grantId,
  };
}

const GrantJson = Type.Object({
  id: Type.String(),
  client_id: Type.String(),
  kind: Type.Union([Type.Literal('session'), Type.Literal('always')]),
  status: Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('revoked')]),
  tool: Type.String(),
  user_sub: Nullable(Type.String()),
  session_id: Nullable(Type.String()),
  arguments_hash: Type.String(),
  approval_id: Type.String(),
  created_by: Type.String(),
  created_at: Type.String(),
  expires_at: Nullable(Type.String()),
  revoked_at: Nullable(Type.String()),
  uses: Type.Integer({ description: 'checks this grant has allowed' }),
});

export function grantStatus(g: Grant, now: number): 'active' | 'expired' | 'revoked' {
  if (g.revokedAt !== null) return 'revoked';
  return g.expiresAt !== null && g.expiresAt <= now ? 'expired' : 'active';
}

export const grantJson = (g: Grant, now: number) => ({
  id: g.id,
  client_id: g.clientId,
  kind: g.kind,
  status: grantStatus(g, now),
  tool: g.tool,
  user_sub: g.userSub,
  session_id: g.sessionId,
  arguments_hash: g.argumentsHash,
  approval_id: g.approvalId,
  created_by: g.createdBy,
  created_at: iso(g.createdAt),
  expires_at: iso(g.expiresAt),
  revoked_at: iso(g.revokedAt),
  uses: g.uses,
});

const ApprovalIdParams = Type.Object({ approval_id: Id });

const DecisionBody = Type.Object({
  comment: Type.Optional(Type.String({ maxLength: 1000 })),
  remember: Type.Optional(Type.Union([Type.Literal('once'), Type.Literal('session'), Type.Literal('always')], {
    description: 'once (default): this request only; session / always: allow the next identical calls without asking',
  })),
  remember_for_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_REMEMBER_SECONDS, description: 'the grant expires after this long (default: never)' })),
}, { additionalProperties: false });
type DecisionBody = Static<typeof DecisionBody>;

const DenyBody = Type.Object({ comment: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false });


function encodeCursor(a: Approval): string {
  return Buffer.from(`${a.createdAt}.${a.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: number; id: string } {
  const m = /^(\d{1,17})\.([A-Za-z0-9_-]{1,64})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (m === null) throw new ApiError('invalid_cursor');
  return { createdAt: Number(m[1]), id: m[2]! };
}

export const approvalRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { store, now, approvals } = services;
  const authenticated = requireOperator(services);

  app.get('/panopticon/approvals/:approval_id', {
    ...pakRouteOptions(services),
    schema: {
      tags: ['approvals'],
      summary: `The state of an approval request opened by a guard check; wait=N holds the answer up to N seconds (at most ${MAX_WAIT_SECONDS}) until it is decided`,
      security: [{ pak: [] }],
      params: ApprovalIdParams,
      querystring: Type.Object({ wait: Type.Integer({ minimum: 0, maximum: MAX_WAIT_SECONDS, default: 0 }) }, { additionalProperties: false }),
      response: { 200: ApprovalJson, ...errorResponses(400, 401, 403, 404, 429) },
    },
  }, async (request, reply) => {
    const { approval_id } = request.params;
    const { wait } = request.query;
    const gone = () => reply.raw.destroyed;
    const approval = await approvals.poll(request.pak!.clientId, approval_id, wait * 1000, gone);
    if (approval === null) throw new ApiError('approval_not_found');
    return approvalJson(approval, now());
  });

  /** The approval named in the path, if the calling operator owns its app. */
  async function ownedApproval(request: FastifyRequest & { params: Static<typeof ApprovalIdParams> }): Promise<Approval> {
    const { approval_id } = request.params;
    const approval = await store.approvals.get(approval_id);
    if (approval === null || (await store.apps.find(operatorOf(request).accountId, approval.clientId)) === null) throw new ApiError('approval_not_found');
    return approval;
  }

  app.get('/api/apps/:client_id/approvals', {
    onRequest: authenticated,
    schema: {
      tags: ['approvals'],
      summary: 'Approval requests of an application, newest first, with keyset pagination',
      params: ClientIdParams,
      querystring: Type.Object({
        status: Type.Optional(StatusSchema),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
        cursor: Type.Optional(Type.String({ maxLength: 128, description: 'next_cursor of the previous page' })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ approvals: Type.Array(ApprovalJson), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const q = request.query;
    const t = now();
    const rows = await store.approvals.list({
      clientId: target.clientId, status: q.status, now: t, limit: q.limit + 1, before: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
    });
    const page = rows.slice(0, q.limit);
    return { approvals: page.map((a) => approvalJson(a, t)), next_cursor: rows.length > q.limit ? encodeCursor(page[page.length - 1]!) : null };
  });

  const feed = new ApprovalFeed(store, now, (err) => app.log.error({ err }, 'approval inbox read failed'));
  const open = new Set<ServerResponse>();
  // Streams never end on their own; without this, close() would wait for every browser to leave.
  app.addHook('preClose', async () => {
    for (const res of open) res.end();
    open.clear();
  });
  app.addHook('onClose', async () => {
    await feed.close();
  });

  app.get('/api/apps/:client_id/approvals/live', {
    onRequest: authenticated,
    schema: {
      tags: ['approvals'],
      summary: 'The approvals inbox as Server-Sent Events: requested, decided and expired, whichever node they happened on',
      params: ClientIdParams,
      response: { 200: Type.String({ description: 'text/event-stream' }), ...errorResponses(400, 401, 404) },
    },
  }, async (request, reply) => {
    const target = await ownedApp(services, request);
    const res = openEventStream(request, reply);
    open.add(res);
    let ended = false;
    const write = (chunk: string) => {
      if (ended) return;
      res.write(chunk);
      // A reader this far behind has lost track anyway; it reconnects and re-reads the list.
      if (res.writableLength > 1024 * 1024) end();
    };
    const unsubscribe = feed.subscribe(target.clientId, (e: InboxEvent) => {
      if (e.event === 'resync') write('event: resync\ndata: {}\n\n');
      else write(`event: ${e.event}\ndata: ${JSON.stringify(approvalJson(e.approval, now()))}\n\n`);
    });
    const heartbeat = setInterval(() => write(': heartbeat\n\n'), INBOX_HEARTBEAT_MS);
    function end() {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(res);
      res.end();
    }
    request.raw.on('close', end);
    res.on('error', end);
    // Subscribed before `ready`: a client that reads the list on `ready` misses nothing in between.
    write(`retry: 2000\nevent: ready\ndata: ${JSON.stringify({ client_id: target.clientId })}\n\n`);
  });

  app.get('/api/approvals/:approval_id', {
    onRequest: authenticated,
    schema: {
      tags: ['approvals'],
      summary: 'One approval request, by id',
      params: ApprovalIdParams,
      response: { 200: ApprovalJson, ...errorResponses(400, 401, 404) },
    },
  }, async (request) => approvalJson(await ownedApproval(request), now()));

  for (const action of ['approve', 'deny'] as const) {
    app.post(`/api/approvals/:approval_id/${action}`, {
      onRequest: authenticated,
      preValidation: emptyBodyIsEmptyObject,
      schema: {
        tags: ['approvals'],
        summary: action === 'approve'
          ? 'Approve a pending request; remember session / always also records a grant for the next identical calls'
          : 'Deny a pending request',
        params: ApprovalIdParams,
        body: action === 'approve' ? DecisionBody : DenyBody,
        response: {
          200: Type.Object({ approval: ApprovalJson, grant: Type.Union([GrantJson, Type.Null()]) }),
          ...errorResponses(400, 401, 403, 404, 409),
        },
      },
    }, async (request) => {
      const approval = await ownedApproval(request);
      // The deny body is the approve body without remember: read both as the wider one.
      const body: DecisionBody = request.body;
      const result = await approvals.decide({
        approval,
        status: action === 'approve' ? 'approved' : 'denied',
        actor: actorOf(request),
        comment: body.comment ?? null,
        remember: body.remember ?? null,
        rememberForSeconds: body.remember_for_seconds ?? null,
      });
      if (!result.ok) {
        if (result.code === 'validation_failed') throw new ApiError('validation_failed', undefined, { fields: result.fields });
        if (result.code === 'approval_not_found') throw new ApiError('approval_not_found');
        const t = now();
        const lost = approvalJson(result.approval, t);
        // The console tells the operator who beat them to it, and when.
        throw new ApiError('approval_decided', `The approval request is already ${lost.status}`, {
          status: lost.status, decided_by: lost.decided_by, decided_at: lost.decided_at,
        });
      }
      const t = now();
      return { approval: approvalJson(result.approval, t), grant: result.grant === null ? null : grantJson(result.grant, t) };
    });
  }

  app.get('/api/apps/:client_id/grants', {
    onRequest: authenticated,
    schema: {
      tags: ['approvals'],
      summary: 'Grants (remembered approvals) of an application, newest first, with how often each was used',
      params: ClientIdParams,
      querystring: Type.Object({ include_revoked: Type.Boolean({ default: false }) }, { additionalProperties: false }),
      response: {
        200: Type.Object({ grants: Type.Array(GrantJson), counts: Type.Object({ active: Type.Integer(), expired: Type.Integer(), revoked: Type.Integer(), uses: Type.Integer() }) }),
        ...errorResponses(400, 401, 404),
      },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const { include_revoked } = request.query;
    const t = now();
    const grants = await store.approvals.listGrants(target.clientId, { includeRevoked: include_revoked });
    const counts = { active: 0, expired: 0, revoked: 0, uses: 0 };
    for (const g of grants) {
      counts[grantStatus(g, t)]++;
      counts.uses += g.uses;
    }
    return { grants: grants.map((g) => grantJson(g, t)), counts };
  });

  app.delete('/api/apps/:client_id/grants/:grant_id', {
    onRequest: authenticated,
    schema: {
      tags: ['approvals'],
      summary: 'Revoke a grant on every node; the next identical call asks again',
      params: Type.Object({ client_id: ClientIdParams.properties.client_id, grant_id: Id }),
      response: { 200: GrantJson, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const { grant_id } = request.params;
    const grant = await approvals.revokeGrant(target.clientId, grant_id, actorOf(request));
    if (grant === null) throw new ApiError('grant_not_found');
    return grantJson(grant, now());
  });
};
