/** /api/apps/:client_id/webhooks: notification endpoints and what was delivered to them. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf, ClientIdParams, ownedApp, requireOperator } from '../http/auth.js';
import { ApiError } from '../errors.js';
import { GUARD_EVENT_TYPES } from '../guard/events.js';
import { iso } from '../http/format.js';
import { errorResponses } from '../http/openapi.js';
import type { Services } from '../http/services.js';
import type { WebhookDelivery, WebhookEndpoint } from '../store/types/webhooks.js';

const EventType = Type.Union(GUARD_EVENT_TYPES.map((t) => Type.Literal(t)));
const FormatSchema = Type.Union([Type.Literal('json'), Type.Literal('slack')]);

const WebhookJson = Type.Object({
  id: Type.String(),
  client_id: Type.String(),
  url: Type.String(),
  format: FormatSchema,
  events: Type.Array(EventType),
  enabled: Type.Boolean(),
  created_at: Type.String(),
});

const webhookJson = (e: WebhookEndpoint) => ({
  id: e.id, client_id: e.clientId, url: e.url, format: e.format, events: e.events, enabled: e.enabled, created_at: iso(e.createdAt),
});

const DeliveryJson = Type.Object({
  id: Type.String(),
  webhook_id: Type.String(),
  event: EventType,
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed'), Type.Literal('dropped')], {
    description: '`dropped`: never sent (or given up while in flight) because the endpoint already had PANOPTICON_WEBHOOK_OUTBOX_LIMIT undelivered deliveries; the oldest make way',
  }),
  attempts: Type.Integer(),
  last_status_code: Type.Union([Type.Integer(), Type.Null()]),
  last_error: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  next_attempt_at: Type.Union([Type.String(), Type.Null()]),
  completed_at: Type.Union([Type.String(), Type.Null()]),
});

const deliveryJson = (d: WebhookDelivery) => ({
  id: d.id, webhook_id: d.webhookId, event: d.event, status: d.status, attempts: d.attempts,
  last_status_code: d.lastStatusCode, last_error: d.lastError, created_at: iso(d.createdAt),
  next_attempt_at: d.status === 'pending' ? iso(d.nextAttemptAt) : null, completed_at: iso(d.completedAt),
});

const WebhookParams = Type.Object({ client_id: ClientIdParams.properties.client_id, webhook_id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }) });

export const webhookRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { store, webhooks } = services;
  const authenticated = requireOperator(services);

  app.post('/api/apps/:client_id/webhooks', {
    onRequest: authenticated,
    schema: {
      tags: ['webhooks'],
      summary: 'Add a notification endpoint; its signing secret is in this response only',
      params: ClientIdParams,
      body: Type.Object({
        url: Type.String({ minLength: 1, maxLength: 2048, pattern: '^[Hh][Tt][Tt][Pp][Ss]?://', description: 'http:// or https://' }),
        format: Type.Optional(FormatSchema),
        events: Type.Optional(Type.Array(EventType, { minItems: 1, uniqueItems: true, description: 'default: every event type' })),
      }, { additionalProperties: false }),
      response: { 201: Type.Composite([WebhookJson, Type.Object({ secret: Type.String({ description: 'whsec_…, shown once' }) })]), ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const target = await ownedApp(services, request);
    const body = request.body;
    const result = await webhooks.create({
      clientId: target.clientId, url: body.url, format: body.format ?? 'json', events: body.events ?? [...GUARD_EVENT_TYPES], actor: actorOf(request),
    });
    if (!result.ok) throw new ApiError('validation_failed', undefined, { fields: result.fields });
    return reply.code(201).send({ ...webhookJson(result.endpoint), secret: result.secret });
  });

  app.get('/api/apps/:client_id/webhooks', {
    onRequest: authenticated,
    schema: {
      tags: ['webhooks'],
      summary: "The application's notification endpoints (never their secrets)",
      params: ClientIdParams,
      response: { 200: Type.Object({ webhooks: Type.Array(WebhookJson) }), ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    return { webhooks: (await store.webhooks.list(target.clientId)).map(webhookJson) };
  });

  app.delete('/api/apps/:client_id/webhooks/:webhook_id', {
    onRequest: authenticated,
    schema: {
      tags: ['webhooks'],
      summary: 'Remove an endpoint; deliveries not yet sent to it are dropped',
      params: WebhookParams,
      response: { 200: WebhookJson, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const { webhook_id } = request.params;
    const removed = await webhooks.remove(target.clientId, webhook_id, actorOf(request));
    if (removed === null) throw new ApiError('webhook_not_found');
    return webhookJson(removed);
  });

  app.get('/api/apps/:client_id/webhooks/:webhook_id/deliveries', {
    onRequest: authenticated,
    schema: {
      tags: ['webhooks'],
      summary: 'Recent deliveries to an endpoint, newest first, with their outcome',
      params: WebhookParams,
      querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }) }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          deliveries: Type.Array(DeliveryJson),
          counts: Type.Object({ pending: Type.Integer(), delivered: Type.Integer(), failed: Type.Integer(), dropped: Type.Integer() }, { description: "All of the endpoint's deliveries by status, not only this page; `pending` is its outbox" }),
        }),
        ...errorResponses(400, 401, 404),
      },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const { webhook_id } = request.params;
    const { limit } = request.query;
    if ((await store.webhooks.get(target.clientId, webhook_id)) === null) throw new ApiError('webhook_not_found');
    const [deliveries, counts] = await Promise.all([store.webhooks.listDeliveries(target.clientId, webhook_id, limit), store.webhooks.deliveryCounts(target.clientId, webhook_id)]);
    return { deliveries: deliveries.map(deliveryJson), counts };
  });
};
