/**
 * What every PAK-authenticated route (/panopticon/*) shares: the PAK from the Authorization header,
 * then the HMAC signature when the app enforces it, and the per-PAK rate limit. One definition, so
 * a new agent-facing route cannot forget a step.
 *
 * `pakAuth` owns `request.pak`: the server registers it before any route, so every request (in
 * every route plugin) starts with `pak: null` and `pakRouteOptions` fills it in.
 */
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { ApiError } from '../errors.js';
import type { Services } from './services.js';
import type { PakAuthResult } from '../keys/authenticator.js';
import { requireSignature } from '../keys/signature.js';
import type { PakAuthRecord } from '../store/types/store.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The PAK the request authenticated with; null outside PAK-authenticated routes. */
    pak: PakAuthRecord | null;
  }
}

/** Decorates every request with `pak: null`; wrapped by fastify-plugin so the decoration is global. */
export const pakAuth = fp(async (app) => {
  app.decorateRequest('pak', null);
}, { name: 'panopticon-pak-auth', fastify: '5.x' });

export function pakRouteOptions(services: Pick<Services, 'paks' | 'config' | 'now'>) {
  // A callback hook, not an async one: a cached key is decided synchronously and costs no promise.
  function authenticatePak(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const settle = (result: PakAuthResult) => {
      if (!result.ok) return done(new ApiError(result.code));
      request.pak = result.key;
      done();
    };
    const result = services.paks.authenticate(request.headers.authorization);
    if (result instanceof Promise) result.then(settle, done);
    else settle(result);
  }
  return {
    onRequest: [authenticatePak, requireSignature(services)],
    config: {
      rateLimit: {
        max: services.config.pakRateLimitPerSecond,
        timeWindow: 1000,
        hook: 'onRequest' as const,
        keyGenerator: (request: FastifyRequest) => request.pak?.keyId ?? request.ip,
      },
    },
  };
}
