/** /api/apps/:client_id/hmac: turn HMAC request signing on or off for an application, rotate its secret. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf, ClientIdParams, ownedApp, requireOperator } from '../http/auth.js';
import type { SecretBox } from '../crypto/secret-box.js';
import { ApiError } from '../errors.js';
import { iso } from '../http/format.js';
import { errorResponses } from '../http/openapi.js';
import type { Services } from '../http/services.js';
import type { AppSecret } from '../store/types/secrets.js';
import { DEFAULT_SECRET_GRACE_MS, disableHmac, enableHmac, rotateSecret } from './hmac-service.js';
import { emptyBodyIsEmptyObject } from '../http/validation.js';
import { displayPrefix, SECRET_PREFIX } from './tokens.js';

const SecretJson = Type.Object({
  id: Type.String(),
  prefix: Type.String({ description: 'pano_sec_ and the next 6 characters: enough to recognise the secret, not to use it' }),
  status: Type.Union([Type.Literal('active'), Type.Literal('expiring'), Type.Literal('expired'), Type.Literal('revoked')]),
  created_at: Type.String(),
  expires_at: Type.Union([Type.String(), Type.Null()]),
  revoked_at: Type.Union([Type.String(), Type.Null()]),
});

const PakSecret = Type.String({ description: 'The signing secret. Shown once; stored encrypted, never shown again.' });

function secretStatus(s: AppSecret, now: number): 'active' | 'expiring' | 'expired' | 'revoked' {
  if (s.revokedAt !== null) return 'revoked';
  if (s.expiresAt === null) return 'active';
  return s.expiresAt > now ? 'expiring' : 'expired';
}

/** The prefix is not stored: the sealed secret is opened to show it. */
const secretJson = (box: SecretBox, s: AppSecret, now: number) => ({
  id: s.id,
  prefix: displayPrefix(SECRET_PREFIX, box.open(s.sealed, s.clientId)),
  status: secretStatus(s, now),
  created_at: iso(s.createdAt),
  expires_at: iso(s.expiresAt),
  revoked_at: iso(s.revokedAt),
});

const MAX_GRACE_SECONDS = 30 * 24 * 3600;

export const hmacRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { store, now, secrets: box } = services;
  const authenticated = requireOperator(services);

  app.get('/api/apps/:client_id/hmac', {
    onRequest: authenticated,
    schema: {
      tags: ['keys'],
      summary: 'Whether the application requires signed requests, and its signing secrets by prefix (never the secrets)',
      params: ClientIdParams,
      response: { 200: Type.Object({ client_id: Type.String(), enabled: Type.Boolean(), secrets: Type.Array(SecretJson) }), ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const t = now();
    const secrets = await store.secrets.listSecrets(target.clientId);
    return { client_id: target.clientId, enabled: target.hmacEnabled, secrets: secrets.map((s) => secretJson(box, s, t)) };
  });

  app.post('/api/apps/:client_id/hmac/enable', {
    onRequest: authenticated,
    schema: {
      tags: ['keys'],
      summary: 'Require signed requests from now on; issues the signing secret, in this response only',
      params: ClientIdParams,
      response: {
        201: Type.Object({ pak_secret: PakSecret, client_id: Type.String(), enabled: Type.Literal(true), secret: SecretJson }),
        ...errorResponses(400, 401, 403, 404, 409),
      },
    },
  }, async (request, reply) => {
    const target = await ownedApp(services, request);
    const t = now();
    const result = await enableHmac(store, box, target.clientId, t, actorOf(request));
    if (!result.ok) throw new ApiError(result.code);
    return reply.code(201).send({ pak_secret: result.secret, client_id: target.clientId, enabled: true, secret: secretJson(box, result.record, t) });
  });

  app.post('/api/apps/:client_id/hmac/rotate', {
    onRequest: authenticated,
    preValidation: emptyBodyIsEmptyObject,
    schema: {
      tags: ['keys'],
      summary: 'Issue a new signing secret; the previous ones stay valid for the grace period (0 revokes them now)',
      params: ClientIdParams,
      body: Type.Optional(Type.Object({
        grace_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_GRACE_SECONDS, default: DEFAULT_SECRET_GRACE_MS / 1000 })),
      }, { additionalProperties: false })),
      response: {
        201: Type.Object({ pak_secret: PakSecret, client_id: Type.String(), enabled: Type.Literal(true), secret: SecretJson, previous: Type.Array(SecretJson) }),
        ...errorResponses(400, 401, 403, 404, 409),
      },
    },
  }, async (request, reply) => {
    const target = await ownedApp(services, request);
    const body = request.body;
    const graceMs = (body.grace_seconds ?? DEFAULT_SECRET_GRACE_MS / 1000) * 1000;
    const t = now();
    const result = await rotateSecret(store, box, target.clientId, graceMs, t, actorOf(request));
    if (!result.ok) throw new ApiError(result.code);
    return reply.code(201).send({
      pak_secret: result.secret, client_id: target.clientId, enabled: true,
      secret: secretJson(box, result.record, t), previous: result.previous.map((s) => secretJson(box, s, t)),
    });
  });

  app.post('/api/apps/:client_id/hmac/disable', {
    onRequest: authenticated,
    schema: {
      tags: ['keys'],
      summary: 'Stop requiring signed requests; every signing secret is revoked',
      params: ClientIdParams,
      response: {
        200: Type.Object({ client_id: Type.String(), enabled: Type.Literal(false), revoked: Type.Array(SecretJson) }),
        ...errorResponses(400, 401, 403, 404, 409),
      },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const t = now();
    const result = await disableHmac(store, target.clientId, t, actorOf(request));
    if (!result.ok) throw new ApiError(result.code);
    return { client_id: target.clientId, enabled: false as const, revoked: result.revoked.map((s) => secretJson(box, s, t)) };
  });
};
