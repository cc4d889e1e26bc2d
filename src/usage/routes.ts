/** GET /api/apps/:client_id/usage: the product page's step 5. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ClientIdParams, ownedApp, requireOperator } from '../http/auth.js';
import { ApiError } from '../errors.js';
import { errorResponses } from '../http/openapi.js';
import type { Services } from '../http/services.js';
import { addDays, todayUtc, usageReport } from './service.js';

const Counters = {
  traces: Type.Integer(),
  errors: Type.Integer({ description: 'status error or timeout' }),
  hitl_requests: Type.Integer(),
  kill_switch: Type.Integer(),
};

export const usageRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  app.get('/api/apps/:client_id/usage', {
    onRequest: requireOperator(services),
    schema: {
      tags: ['usage'],
      summary: 'Daily counters per UTC date of started_at; only dates with activity are listed',
      params: ClientIdParams,
      querystring: Type.Object({
        since: Type.Optional(Type.String({ format: 'date', description: 'First date, inclusive (default: 29 days before until)' })),
        until: Type.Optional(Type.String({ format: 'date', description: 'Last date, inclusive (default: today, UTC)' })),
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          client_id: Type.String(),
          since: Type.String(),
          until: Type.String(),
          rows: Type.Array(Type.Object({ date: Type.String(), ...Counters })),
          totals: Type.Object(Counters),
        }),
        ...errorResponses(400, 401, 404),
      },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const q = request.query;
    const until = q.until ?? todayUtc(services.now());
    const since = q.since ?? addDays(until, -29);
    if (since > until) throw new ApiError('validation_failed', 'since must not be after until', { fields: [{ field: 'since', message: 'must not be after until' }] });
    return usageReport(services.store, target.clientId, since, until);
  });
};
