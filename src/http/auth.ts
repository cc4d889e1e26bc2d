/**
 * Who is calling the operator API: a browser session (cookie `pano_session`) or an operator token
 * (`Authorization: Bearer pano_op_…`, for the CLI and scripts). Cookie-authenticated mutations must
 * come from our own origin: SameSite=Strict already keeps the cookie off cross-site requests, and
 * we also refuse any that a browser labels cross-site (Sec-Fetch-Site) or whose Origin is foreign.
 *
 * `operatorAuth` owns `request.operator`: the server registers it before any route, so every
 * request (in every route plugin) starts with `operator: null` and `requireOperator` fills it in.
 */
import crypto from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../store/types/store.js';
import { CLIENT_ID_PATTERN } from '../traces/schema.js';
import { ApiError } from '../errors.js';
import type { Services } from './services.js';
import { hashSecret, isWellFormedToken, OPERATOR_TOKEN_PREFIX } from '../keys/tokens.js';

export const SESSION_COOKIE = 'pano_session';

export interface Operator {
  accountId: string;
  via: 'session' | 'token';
  credentialHash: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in operator; null outside operator-authenticated routes. */
    operator: Operator | null;
  }
}

/** Decorates every request with `operator: null`; wrapped by fastify-plugin so the decoration is global. */
export const operatorAuth = fp(async (app) => {
  app.decorateRequest('operator', null);
}, { name: 'panopticon-operator-auth', fastify: '5.x' });

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function newSessionToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/** onRequest hook for every /api route that needs a signed-in operator. */
export function requireOperator(services: Services) {
  return async function authenticateOperator(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization;
    if (header !== undefined) {
      const [scheme, value] = header.split(' ', 2);
      if (scheme?.toLowerCase() !== 'bearer' || value === undefined || !isWellFormedToken(OPERATOR_TOKEN_PREFIX, value.trim())) {
        throw new ApiError('unauthenticated', 'The Bearer value is not a well-formed operator token (pano_op_…)');
      }
      const hash = hashSecret(value.trim());
      const token = await services.store.accounts.findToken(hash);
      if (token === null) throw new ApiError('unauthenticated', 'The operator token is unknown or revoked');
      request.operator = { accountId: token.accountId, via: 'token', credentialHash: hash };
      return;
    }
    const cookieValue = request.cookies[SESSION_COOKIE];
    if (cookieValue === undefined || cookieValue === '') throw new ApiError('unauthenticated');
    const hash = hashSecret(cookieValue);
    const session = await services.store.accounts.findSession(hash, services.now());
    if (session === null) throw new ApiError('unauthenticated', 'The session has expired; sign in again');
    if (!SAFE_METHODS.has(request.method)) assertSameOrigin(request, services.config.secureCookies);
    request.operator = { accountId: session.accountId, via: 'session', credentialHash: hash };
  };
}

/**
 * The request comes from our own origin: scheme, host and port. The scheme counts because
 * `http://host` is another origin than `https://host`: a page on the plain-HTTP side, which anyone
 * on the network path can write, must not act on the HTTPS side. Behind a TLS-terminating proxy the
 * server itself sees HTTP, so with secure cookies (PANOPTICON_SECURE_COOKIES, which such an install
 * sets) the origin must be https.
 */
export function assertSameOrigin(request: FastifyRequest, secureCookies: boolean): void {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new ApiError('csrf_rejected');
  const origin = request.headers.origin;
  if (origin !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new ApiError('csrf_rejected');
    }
    const scheme = secureCookies ? 'https:' : `${request.protocol}:`;
    if (parsed.host !== request.headers.host || parsed.protocol !== scheme) throw new ApiError('csrf_rejected');
  }
}

/** How the audit log names the operator behind a request. */
export function actorOf(request: FastifyRequest): string {
  return `account:${operatorOf(request).accountId}`;
}

export function operatorOf(request: FastifyRequest): Operator {
  if (request.operator === null) throw new ApiError('unauthenticated');
  return request.operator;
}

/** The `:client_id` path parameter of every per-application operator route. */
export const ClientIdParams = Type.Object({ client_id: Type.String({ pattern: CLIENT_ID_PATTERN }) });
export type ClientIdParams = Static<typeof ClientIdParams>;

/**
 * Loads the app named in the path, as seen by the calling operator; another account's app is a 404.
 * Takes any route whose params schema has `client_id` (ClientIdParams or a wider one).
 */
export async function ownedApp(services: Services, request: FastifyRequest & { params: ClientIdParams }): Promise<App> {
  const { client_id } = request.params;
  const app = await services.store.apps.find(operatorOf(request).accountId, client_id);
  if (app === null) throw new ApiError('app_not_found', `No application ${client_id} in this account`);
  return app;
}
