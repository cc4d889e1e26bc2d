/** /api/apps: create, list, read and update the caller's applications. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf, ClientIdParams, operatorOf, ownedApp, requireOperator } from '../http/auth.js';
import { ApiError } from '../errors.js';
import { appJson } from '../http/format.js';
import { errorResponses } from '../http/openapi.js';
import type { Services } from '../http/services.js';
import { createApp, updateApp } from './service.js';

export const AppJson = Type.Object({
  client_id: Type.String(),
  name: Type.String(),
  panopticon_enabled: Type.Boolean(),
  hmac_enabled: Type.Boolean({ description: 'Requests must carry X-Panopticon-Signature (see /api/apps/:client_id/hmac)' }),
  created_at: Type.String(),
});

const AppName = Type.String({ minLength: 1, maxLength: 100 });

export const appRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { store, now } = services;
  const authenticated = requireOperator(services);

  app.post('/api/apps', {
    onRequest: authenticated,
    schema: {
      tags: ['apps'],
      summary: 'Create an application; its client_id is generated (audited: app.create)',
      body: Type.Object({ name: AppName }, { additionalProperties: false }),
      response: { 201: AppJson, ...errorResponses(400, 401, 403) },
    },
  }, async (request, reply) => {
    const { name } = request.body;
    const created = await createApp(store, operatorOf(request).accountId, name, now(), actorOf(request));
    return reply.code(201).send(appJson(created));
  });

  app.get('/api/apps', {
    onRequest: authenticated,
    schema: { tags: ['apps'], summary: "The caller's applications", response: { 200: Type.Object({ apps: Type.Array(AppJson) }), ...errorResponses(401) } },
  }, async (request) => ({ apps: (await store.apps.list(operatorOf(request).accountId)).map(appJson) }));

  app.get('/api/apps/:client_id', {
    onRequest: authenticated,
    schema: { tags: ['apps'], summary: 'One application', params: ClientIdParams, response: { 200: AppJson, ...errorResponses(400, 401, 404) } },
  }, async (request) => appJson(await ownedApp(services, request)));

  app.patch('/api/apps/:client_id', {
    onRequest: authenticated,
    schema: {
      tags: ['apps'],
      summary: 'Rename an application or turn Panopticon on or off for it (audited: app.rename, app.enable, app.disable)',
      params: ClientIdParams,
      body: Type.Object({ name: Type.Optional(AppName), panopticon_enabled: Type.Optional(Type.Boolean()) }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: AppJson, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const { client_id } = request.params;
    const body = request.body;
    const updated = await updateApp(store, operatorOf(request).accountId, client_id, { name: body.name, panopticonEnabled: body.panopticon_enabled }, actorOf(request), now());
    if (updated === null) throw new ApiError('app_not_found', `No application ${client_id} in this account`);
    return appJson(updated);
  });
};
