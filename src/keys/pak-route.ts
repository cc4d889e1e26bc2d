/**
 * What every PAK-authenticated route (/panopticon/*) shares: the PAK from the Authorization header,
 * then the HMAC signature when the app enforces it, and the per-PAK rate limit. One definition, so
 * a new agent-facing route cannot forget a step.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { Services } from '../http/server.js';
import { requireSignature } from './signature.js';

export function pakRouteOptions(services: Pick<Services, 'paks' | 'config' | 'now'>) {
  async function authenticatePak(request: FastifyRequest): Promise<void> {
    const result = await services.paks.authenticate(request.headers.authorization);
    if (!result.ok) throw new ApiError(result.code);
    request.pak = result.key;
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
