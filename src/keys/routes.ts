/** /api/apps/:client_id/paks: issue, rotate, revoke and list an application's PAKs. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf, ClientIdParams, ownedApp, requireOperator } from '../http/auth.js';
import { ApiError } from '../errors.js';
import { pakJson } from '../http/format.js';
import { errorResponses } from '../http/openapi.js';
import { emptyBodyIsEmptyObject } from '../http/validation.js';
import type { Services } from '../http/services.js';
import { DEFAULT_ROTATION_GRACE_MS, issuePak, revokePaks, rotatePak } from './service.js';

const PakJson = Type.Object({
  id: Type.String(),
  client_id: Type.String(),
  prefix: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('expiring'), Type.Literal('expired'), Type.Literal('revoked')]),
  created_at: Type.String(),
  last_used_at: Type.Union([Type.String(), Type.Null()]),
  expires_at: Type.Union([Type.String(), Type.Null()]),
  revoked_at: Type.Union([Type.String(), Type.Null()]),
});

const IssuedPak = Type.Composite([
  Type.Object({ pak: Type.String({ description: 'The full key. Shown once; only its hash is stored.' }) }),
  PakJson,
]);


const MAX_GRACE_SECONDS = 30 * 24 * 3600;

export const keyRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { store, now } = services;
  const authenticated = requireOperator(services);

  app.get('/api/apps/:client_id/paks', {
    onRequest: authenticated,
    schema: { tags: ['keys'], summary: "The application's keys, by display prefix", params: ClientIdParams, response: { 200: Type.Object({ paks: Type.Array(PakJson) }), ...errorResponses(401, 404) } },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const t = now();
    return { paks: (await store.keys.list(target.clientId)).map((p) => pakJson(p, t)) };
  });

  app.post('/api/apps/:client_id/paks', {
    onRequest: authenticated,
    schema: {
      tags: ['keys'],
      summary: 'Issue the first PAK; the full key is in this response only',
      params: ClientIdParams,
      response: { 201: IssuedPak, ...errorResponses(401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const target = await ownedApp(services, request);
    const result = await issuePak(store, target.clientId, now(), actorOf(request));
    if (!result.ok) throw new ApiError(result.code);
    return reply.code(201).send({ pak: result.pak, ...pakJson(result.key, now()) });
  });

  app.post('/api/apps/:client_id/paks/rotate', {
    onRequest: authenticated,
    preValidation: emptyBodyIsEmptyObject,
    schema: {
      tags: ['keys'],
      summary: 'Issue a new PAK; the previous ones stay valid for the grace period (0 revokes them now)',
      params: ClientIdParams,
      body: Type.Optional(Type.Object({
        grace_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_GRACE_SECONDS, default: DEFAULT_ROTATION_GRACE_MS / 1000 })),
      }, { additionalProperties: false })),
      response: { 201: Type.Composite([IssuedPak, Type.Object({ previous: Type.Array(PakJson) })]), ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const target = await ownedApp(services, request);
    const body = request.body;
    const graceMs = (body.grace_seconds ?? DEFAULT_ROTATION_GRACE_MS / 1000) * 1000;
    const t = now();
    const { pak, key, previous } = await rotatePak(store, target.clientId, graceMs, t, actorOf(request));
    return reply.code(201).send({ pak, ...pakJson(key, t), previous: previous.map((p) => pakJson(p, t)) });
  });

  app.post('/api/apps/:client_id/paks/revoke', {
    onRequest: authenticated,
    preValidation: emptyBodyIsEmptyObject,
    schema: {
      tags: ['keys'],
      summary: "Revoke the application's keys (or one, by key_id) on every node, at once",
      params: ClientIdParams,
      body: Type.Optional(Type.Object({ key_id: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false })),
      response: { 200: Type.Object({ revoked: Type.Array(PakJson) }), ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const body = request.body;
    const t = now();
    const revoked = await revokePaks(store, target.clientId, t, actorOf(request), body.key_id);
    if (body.key_id !== undefined && revoked.length === 0) throw new ApiError('pak_not_found', `No valid key ${body.key_id} for this application: none by that id, or it is already revoked or expired`);
    return { revoked: revoked.map((p) => pakJson(p, t)) };
  });
};
