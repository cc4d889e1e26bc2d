/** /api/auth/* and /api/me: operator sign-up, sign-in (cookie or token), sign-out. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { ApiError } from '../errors.js';
import { accountJson } from '../http/format.js';
import { errorResponses, NoContent } from '../http/openapi.js';
import type { Services } from '../http/services.js';
import { assertSameOrigin, newSessionToken, operatorOf, requireOperator, SESSION_COOKIE } from '../http/auth.js';
import { checkCredentials, issueOperatorToken, normaliseEmail, signUp } from './service.js';
import { LoginThrottle } from './login-throttle.js';
import { hashSecret } from '../keys/tokens.js';

const Credentials = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 254 }),
    password: Type.String({ minLength: 10, maxLength: 1024 }),
  },
  { additionalProperties: false },
);

const TokenRequest = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 254 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  },
  { additionalProperties: false },
);

const AccountJson = Type.Object({ id: Type.String(), email: Type.String(), is_owner: Type.Boolean(), created_at: Type.String() });

/** Sign-in endpoints are the brute-force target: a few attempts per minute per client address. */
const credentialRateLimit = { rateLimit: { max: 20, timeWindow: 60_000 } };

export const accountRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { store, config, now } = services;
  const authenticated = requireOperator(services);
  const throttle = new LoginThrottle(now);

  /** The account these credentials sign in, within the per-account limit on wrong passwords. */
  async function signIn(email: string, password: string) {
    const key = normaliseEmail(email);
    const wait = throttle.retryAfterSeconds(key);
    if (wait > 0) throw new ApiError('rate_limited', `Too many wrong passwords for this account; retry in ${wait} s`, { retry_after_seconds: wait });
    const account = await checkCredentials(store, email, password, config.passwordScryptN);
    if (account === null) {
      throttle.failed(key);
      throw new ApiError('invalid_credentials');
    }
    throttle.succeeded(key);
    return account;
  }

  async function startSession(reply: FastifyReply, accountId: string) {
    const token = newSessionToken();
    const expiresAt = now() + config.sessionTtlMs;
    await store.accounts.createSession({ tokenHash: hashSecret(token), accountId, now: now(), expiresAt });
    reply.setCookie(SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'strict',
      secure: config.secureCookies,
      path: '/',
      expires: new Date(expiresAt),
    });
  }

  app.post('/api/auth/signup', {
    config: credentialRateLimit,
    schema: {
      tags: ['auth'],
      summary: 'Create an operator account (the first one owns the install) and sign in',
      body: Credentials,
      response: { 201: Type.Object({ account: AccountJson }), ...errorResponses(400, 403, 409, 429) },
    },
  }, async (request, reply) => {
    assertSameOrigin(request, config.secureCookies);
    const { email, password } = request.body;
    const result = await signUp(store, config, email, password, now(), config.passwordScryptN);
    if (!result.ok) throw new ApiError(result.code);
    await startSession(reply, result.account.id);
    return reply.code(201).send({ account: accountJson(result.account) });
  });

  app.post('/api/auth/login', {
    config: credentialRateLimit,
    schema: {
      tags: ['auth'],
      summary: 'Sign in with email and password; sets the session cookie',
      body: TokenRequest,
      response: { 200: Type.Object({ account: AccountJson }), ...errorResponses(400, 401, 429) },
    },
  }, async (request, reply) => {
    assertSameOrigin(request, config.secureCookies);
    const { email, password } = request.body;
    const account = await signIn(email, password);
    await startSession(reply, account.id);
    return { account: accountJson(account) };
  });

  app.post('/api/auth/logout', {
    schema: { tags: ['auth'], summary: 'End the current session', response: { 204: NoContent, ...errorResponses(401, 403) } },
    onRequest: authenticated,
  }, async (request, reply) => {
    const op = operatorOf(request);
    if (op.via === 'session') await store.accounts.deleteSession(op.credentialHash);
    else await store.accounts.revokeToken(op.credentialHash, now());
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.code(204).send();
  });

  app.post('/api/auth/token', {
    config: credentialRateLimit,
    schema: {
      tags: ['auth'],
      summary: 'Exchange email and password for an operator API token (pano_op_…), shown once',
      body: TokenRequest,
      response: {
        201: Type.Object({ token: Type.String(), token_id: Type.String(), prefix: Type.String(), account: AccountJson }),
        ...errorResponses(400, 401, 429),
      },
    },
  }, async (request, reply) => {
    const { email, password, name } = request.body;
    const account = await signIn(email, password);
    const { token, record } = await issueOperatorToken(store, account.id, name ?? 'logi', now());
    return reply.code(201).send({ token, token_id: record.id, prefix: record.prefix, account: accountJson(account) });
  });

  app.delete('/api/auth/token', {
    schema: { tags: ['auth'], summary: 'Revoke the operator token this request is authenticated with', response: { 204: NoContent, ...errorResponses(401) } },
    onRequest: authenticated,
  }, async (request, reply) => {
    const op = operatorOf(request);
    if (op.via !== 'token') throw new ApiError('unauthenticated', 'Authenticate with the operator token to revoke it');
    await store.accounts.revokeToken(op.credentialHash, now());
    return reply.code(204).send();
  });

  app.get('/api/me', {
    schema: { tags: ['auth'], summary: 'The signed-in operator', response: { 200: Type.Object({ account: AccountJson, via: Type.String() }), ...errorResponses(401) } },
    onRequest: authenticated,
  }, async (request) => {
    const op = operatorOf(request);
    const account = await store.accounts.findById(op.accountId);
    if (account === null) throw new ApiError('unauthenticated');
    return { account: accountJson(account), via: op.via };
  });
};
