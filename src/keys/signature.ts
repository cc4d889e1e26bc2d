/**
 * HMAC request signing for PAK-authenticated routes, when the app enforces it.
 *
 *   X-Panopticon-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(pak_secret, "<t>.<METHOD>.<path and query>.<raw body>")>
 *
 * Several v1 values may be sent (one per secret during a rotation); one match is enough. Judged in
 * this order, each with its own 401 code: no header (signature_missing), not that shape
 * (signature_malformed), t more than 300 s away from the server clock (signature_expired), no v1
 * matching any active secret (signature_mismatch). A request whose signature matched carries
 * `request.signed` (the digest of its signed text and its `t`): a signature can be replayed within
 * its tolerance, so a route that creates state binds its answer to that digest (the guard check:
 * docs/security.md, "Approval floods and replays"); a trace replay is a duplicate event_id anyway.
 *
 * A route opts in by listing `requireSignature(services)` after its PAK hook in `onRequest`. The
 * header is judged there, before the body is read; the HMAC needs the raw body, so it is checked by
 * the JSON body parser (before JSON.parse, so a bad signature wins over a bad body), or for a request
 * without a body by a preValidation step added to every route that lists the hook
 * (`installSignatureVerification`). An app without signing costs one flag test in the hook and one
 * null test in the parser.
 */
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify';
import { ApiError } from '../errors.js';
import type { PakAuthenticator, SigningKey } from './authenticator.js';

export const SIGNATURE_HEADER = 'x-panopticon-signature';
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** What the header promised, waiting for the body to be checked against. */
interface PendingSignature {
  /** `<t>.<METHOD>.<path and query>.`: the signed text up to the body. */
  prefix: string;
  candidates: Buffer[];
  keys: readonly SigningKey[];
  at: number;
  /** `t` of the header, unix seconds. */
  timestamp: number;
}

/** A request whose signature matched: what identifies it as a replay. */
export interface SignedRequest {
  /**
   * Hex SHA-256 of the signed text `<t>.<METHOD>.<path and query>.<raw body>`: the same for a
   * replay, different for anything else. Computed when first asked for (only routes that bind
   * answers to it pay for hashing the body twice).
   */
  digest(): string;
  /** `t` of the header, unix seconds: a replay is accepted until `t` + 300 s (server clock). */
  timestamp: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    pendingSignature: PendingSignature | null;
    /** Set once the request's signature matched; null for an app without signing. */
    signed: SignedRequest | null;
  }
}

export interface ParsedSignature {
  timestamp: string;
  signatures: Buffer[];
}

const TIMESTAMP = /^\d{1,15}$/;
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

/**
 * `t=<digits>,v1=<64 hex>[,v1=…]`, spaces around elements allowed. Elements of other schemes
 * (`v2=…`) are skipped so a client can send a future scheme alongside v1; null when the header has
 * no single t, no v1, or a v1 that is not 64 hex digits.
 */
export function parseSignatureHeader(value: string): ParsedSignature | null {
  let timestamp: string | null = null;
  const signatures: Buffer[] = [];
  for (const element of value.split(',')) {
    const part = element.trim();
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    const name = part.slice(0, eq);
    const v = part.slice(eq + 1);
    if (name === 't') {
      if (timestamp !== null || !TIMESTAMP.test(v)) return null;
      timestamp = v;
    } else if (name === 'v1') {
      if (!HEX_SHA256.test(v)) return null;
      signatures.push(Buffer.from(v, 'hex'));
    }
  }
  return timestamp === null || signatures.length === 0 ? null : { timestamp, signatures };
}

/** True when some v1 is the HMAC of the request under some secret still valid at `at`. */
function matches(pending: PendingSignature, body: string | Buffer): boolean {
  let found = false;
  for (const k of pending.keys) {
    if (k.expiresAt !== null && k.expiresAt <= pending.at) continue;
    const mac = crypto.createHmac('sha256', k.key).update(pending.prefix).update(body).digest();
    // No early exit: the time taken does not depend on which candidate matched, or how closely.
    for (const candidate of pending.candidates) {
      if (crypto.timingSafeEqual(mac, candidate)) found = true;
    }
  }
  return found;
}

/** Checks the pending signature against the body; on a match, records what identifies the request. */
function settle(request: FastifyRequest, pending: PendingSignature, body: string | Buffer): boolean {
  request.pendingSignature = null;
  if (!matches(pending, body)) return false;
  let digest: string | undefined;
  request.signed = {
    digest: () => (digest ??= crypto.createHash('sha256').update(pending.prefix).update(body).digest('hex')),
    timestamp: pending.timestamp,
  };
  return true;
}

/**
 * For a body parser of another content type (OTLP protobuf): settles the request's pending
 * signature against the raw bytes. The error to fail the parse with, or null.
 */
export function verifyRawBody(request: FastifyRequest, body: string | Buffer): ApiError | null {
  const pending = request.pendingSignature;
  if (pending === null) return null;
  return settle(request, pending, body) ? null : new ApiError('signature_mismatch');
}

const MARK = Symbol('panopticon.requireSignature');

/**
 * The onRequest hook of a PAK-authenticated route: list it after the PAK hook
 * (`onRequest: [authenticatePak, requireSignature(services)]`).
 */
export function requireSignature(services: { paks: PakAuthenticator; now: () => number }) {
  const hook = function verifySignatureHeader(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const pak = request.pak;
    if (pak === null) return done(new Error('requireSignature runs after PAK authentication'));
    if (!pak.hmacEnabled) return done();
    const header = request.headers[SIGNATURE_HEADER];
    // Node joins repeated X- headers with ", ", so an array never reaches here; a string is all we accept.
    if (header === undefined || header === '') return done(new ApiError('signature_missing'));
    const parsed = typeof header === 'string' ? parseSignatureHeader(header) : null;
    if (parsed === null) return done(new ApiError('signature_malformed'));
    const at = services.now();
    if (Math.abs(Math.floor(at / 1000) - Number(parsed.timestamp)) > SIGNATURE_TOLERANCE_SECONDS) {
      return done(new ApiError('signature_expired', undefined, { server_time: Math.floor(at / 1000) }));
    }
    request.pendingSignature = {
      prefix: `${parsed.timestamp}.${request.method}.${request.url}.`,
      candidates: parsed.signatures,
      keys: services.paks.signingKeys(pak),
      at,
      timestamp: Number(parsed.timestamp),
    };
    done();
  };
  return Object.assign(hook, { [MARK]: true });
}

/** Settles a signature no body parser saw (GET, or a POST without a body): the body is empty. */
function verifyBodylessSignature(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const pending = request.pendingSignature;
  if (pending === null) return done();
  done(settle(request, pending, '') ? undefined : new ApiError('signature_mismatch'));
}

const hooksOf = (value: unknown): unknown[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/**
 * Installs, on the root instance and before any route: the JSON body parser that checks a pending
 * signature against the raw body, and the bodyless check on every route that lists the hook.
 */
export function installSignatureVerification(app: FastifyInstance): void {
  app.decorateRequest('pendingSignature', null);
  app.decorateRequest('signed', null);
  // Fastify's own JSON parser, with its defaults: __proto__ and constructor.prototype are refused.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const pending = request.pendingSignature;
    if (pending !== null && !settle(request, pending, body as string)) return done(new ApiError('signature_mismatch'), undefined);
    parseJson(request, body as string, done);
  });
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!hooksOf(route.onRequest).some((h) => typeof h === 'function' && MARK in h)) return;
    // First, so a route's own preValidation never sees a request whose signature is unsettled.
    route.preValidation = [verifyBodylessSignature, ...hooksOf(route.preValidation)] as RouteOptions['preValidation'];
  });
}
