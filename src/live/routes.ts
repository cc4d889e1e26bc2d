/**
 * GET /api/apps/:client_id/live: the console's Live Trace, as Server-Sent Events. Each accepted
 * trace is one `trace` event whose `id:` is its seq, so a browser's EventSource reconnects with
 * `Last-Event-ID` and picks up exactly after the last trace it got. The stream opens with a `ready`
 * event carrying the position it starts after (also as `id:`), so even a stream that saw no trace
 * resumes without a gap.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServerResponse } from 'node:http';
import { ClientIdParams, ownedApp, requireOperator } from '../http/auth.js';
import { ApiError } from '../errors.js';
import { errorResponses } from '../http/openapi.js';
import { openEventStream } from '../http/sse.js';
import type { Services } from '../http/services.js';
import type { StoredTrace } from '../store/types/store.js';
import { traceJson } from '../http/format.js';
import { LIMITS, TraceStatusSchema } from '../traces/schema.js';

export const HEARTBEAT_MS = 15_000;
/** A client this far behind is cut off; it reconnects and resumes from its Last-Event-ID. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export const liveRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const open = new Set<ServerResponse>();

  // Streams never end on their own; without this, close() would wait for every browser to leave.
  app.addHook('preClose', async () => {
    for (const res of open) res.end();
    open.clear();
  });

  app.get('/api/apps/:client_id/live', {
    onRequest: requireOperator(services),
    schema: {
      tags: ['traces'],
      summary: 'Live Trace: each accepted trace as a Server-Sent Event (id = seq); resumes after Last-Event-ID or ?after',
      params: ClientIdParams,
      querystring: Type.Object({
        after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Send traces with seq > after (Last-Event-ID wins when both are given)' })),
        tool: Type.Optional(Type.String({ maxLength: LIMITS.toolLength })),
        status: Type.Optional(TraceStatusSchema),
        user_sub: Type.Optional(Type.String({ maxLength: LIMITS.userSubLength })),
      }, { additionalProperties: false }),
      response: { 200: Type.String({ description: 'text/event-stream' }), ...errorResponses(400, 401, 404) },
    },
  }, async (request, reply) => {
    const target = await ownedApp(services, request);
    const q = request.query;
    const header = request.headers['last-event-id'];
    let after: number | null = q.after ?? null;
    if (typeof header === 'string' && header.trim() !== '') {
      if (!/^\d{1,16}$/.test(header.trim())) {
        throw new ApiError('validation_failed', undefined, { fields: [{ field: 'headers.last-event-id', message: 'must be a trace seq (an integer)' }] });
      }
      after = Number(header.trim());
    }

    // Subscribed before the stream opens, so a store that cannot be read is still a 503 response,
    // not an event stream that ends at once. Rows sent before the stream opens are held.
    let res: ServerResponse | null = null;
    let held = '';
    let ended = false;
    let subscription: { start: number; close: () => void } | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    let lastId = after ?? 0;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      subscription?.close();
      if (res !== null) {
        open.delete(res);
        res.end();
      }
    };
    const write = (chunk: string) => {
      if (ended) return;
      if (res === null) {
        held += chunk;
        return;
      }
      res.write(chunk);
      if (res.writableLength > MAX_BUFFERED_BYTES) end();
    };
    request.raw.on('close', end);
    subscription = await services.live.subscribe(target.clientId, after, { tool: q.tool, status: q.status, userSub: q.user_sub }, {
      send: (rows: StoredTrace[]) => {
        let chunk = '';
        for (const row of rows) {
          // A late commit (lower seq) must not move Last-Event-ID back, or a resume would repeat rows.
          lastId = Math.max(lastId, row.seq);
          chunk += `id: ${lastId}\nevent: trace\ndata: ${JSON.stringify({ seq: row.seq, ...traceJson(row) })}\n\n`;
        }
        write(chunk);
      },
      fail: () => end(),
    });
    if (ended) {
      // The client left (or the subscription failed) while it was being set up.
      subscription.close();
      reply.hijack();
      reply.raw.end();
      return;
    }
    res = openEventStream(request, reply);
    open.add(res);
    heartbeat = setInterval(() => write(': heartbeat\n\n'), HEARTBEAT_MS);
    res.on('error', end);
    const start = subscription.start;
    lastId = Math.max(lastId, start);
    // `retry` sets the browser's reconnect delay; `ready` tells the client where it stands.
    write(`retry: 2000\nid: ${start}\nevent: ready\ndata: ${JSON.stringify({ after: start })}\n\n`);
    if (held !== '') {
      const rows = held;
      held = '';
      write(rows);
    }
  });
};
