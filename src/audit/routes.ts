/**
 * /api/apps/:client_id/audit: the app's audit log, newest first; a verification of its keyed hash
 * chain (optionally against a signed head kept outside the database); the signed current head.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ClientIdParams, ownedApp, requireOperator } from '../http/auth.js';
import { iso } from '../http/format.js';
import { ApiError } from '../errors.js';
import { errorResponses } from '../http/openapi.js';
import type { Services } from '../http/services.js';
import type { AuditEntry } from '../store/types/guard.js';
import type { Store } from '../store/types/store.js';
import { CHAIN_PROBLEMS, KEYED_CHAIN, type VerifyResult } from '../crypto/audit-chain.js';
import { SIGNED_HEAD_PATTERN, type AuditHead } from './head.js';
import { signCurrentHead, verifyAuditLog } from './service.js';

const AuditEntryJson = Type.Object({
  seq: Type.Integer(),
  at: Type.String(),
  actor: Type.String({ description: '`account:<id>` of the operator, or `system`.' }),
  actor_email: Type.Union([Type.String(), Type.Null()]),
  action: Type.String(),
  target: Type.Union([Type.String(), Type.Null()]),
  before: Type.Unknown(),
  after: Type.Unknown(),
  keyed: Type.Boolean({ description: 'true: `hash` is HMAC-SHA256 under the server\'s audit key; false: plain SHA-256, written before the chain was keyed.' }),
  prev_hash: Type.String(),
  hash: Type.String(),
});

const SignedHeadJson = Type.Object({
  head: Type.String({ description: 'The signed head as one line: keep it outside this database, pass it to verify as `against`.' }),
  client_id: Type.String(),
  seq: Type.Integer({ description: 'Entries the log held (0: empty).' }),
  head_hash: Type.String({ description: 'Hash of entry `seq` (64 zeros for an empty log).' }),
  signed_at: Type.String(),
});

const VerificationJson = Type.Object({
  ok: Type.Boolean(),
  entries: Type.Integer(),
  head: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  unkeyed_entries: Type.Integer({ description: 'Entries written before the chain was keyed (seq 1..n): not tamper-evident against a database writer before unkeyed_sealed_at.' }),
  unkeyed_sealed_at: Type.Union([Type.String(), Type.Null()], { description: 'When the keyed entry closing the unkeyed entries was written; null when there are none.' }),
  anchor: Type.Optional(Type.Object({ seq: Type.Integer(), head_hash: Type.String(), signed_at: Type.String() }, { description: 'The signed head given as `against`.' })),
  problem: Type.Optional(Type.Union(CHAIN_PROBLEMS.map((p) => Type.Literal(p)))),
  seq: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  detail: Type.Optional(Type.String()),
});

async function withEmails(store: Store, entries: AuditEntry[]) {
  const ids = [...new Set(entries.map((e) => e.actor).filter((a) => a.startsWith('account:')).map((a) => a.slice('account:'.length)))];
  const emails = new Map<string, string>();
  for (const id of ids) {
    const account = await store.accounts.findById(id);
    if (account !== null) emails.set(`account:${id}`, account.email);
  }
  return entries.map((e) => ({
    seq: e.seq,
    at: iso(e.at),
    actor: e.actor,
    actor_email: emails.get(e.actor) ?? null,
    action: e.action,
    target: e.target,
    before: e.before === null ? null : (JSON.parse(e.before) as unknown),
    after: e.after === null ? null : (JSON.parse(e.after) as unknown),
    keyed: e.chain === KEYED_CHAIN,
    prev_hash: e.prevHash,
    hash: e.hash,
  }));
}

function verificationJson(r: VerifyResult, anchor: AuditHead | null) {
  const common = {
    entries: r.entries,
    unkeyed_entries: r.unkeyedEntries,
    unkeyed_sealed_at: iso(r.unkeyedSealedAt),
    ...(anchor === null ? {} : { anchor: { seq: anchor.seq, head_hash: anchor.headHash, signed_at: iso(anchor.signedAt) } }),
  };
  return r.ok ? { ok: true, ...common, head: r.head } : { ok: false, ...common, problem: r.problem, seq: r.seq, detail: r.detail };
}

function headJson(head: AuditHead, text: string) {
  return { head: text, client_id: head.clientId, seq: head.seq, head_hash: head.headHash, signed_at: iso(head.signedAt) };
}

export const auditRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { store, auditKey, now } = services;
  const authenticated = requireOperator(services);

  app.get('/api/apps/:client_id/audit', {
    onRequest: authenticated,
    schema: {
      tags: ['audit'],
      summary: "The application's audit log, newest first: who changed what, when, before → after",
      params: ClientIdParams,
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
        before_seq: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Entries older than this seq (the next page).' })),
      }),
      response: { 200: Type.Object({ entries: Type.Array(AuditEntryJson), next_before_seq: Type.Union([Type.Integer(), Type.Null()]) }), ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const owned = await ownedApp(services, request);
    const q = request.query;
    const entries = await store.audit.list(owned.clientId, { afterSeq: q.before_seq, limit: q.limit, newestFirst: true });
    const last = entries[entries.length - 1];
    return { entries: await withEmails(store, entries), next_before_seq: entries.length === q.limit && last !== undefined && last.seq > 1 ? last.seq : null };
  });

  app.get('/api/apps/:client_id/audit/verify', {
    onRequest: authenticated,
    schema: {
      tags: ['audit'],
      summary: 'Recompute the keyed hash chain, optionally against a signed head kept elsewhere: detects changed, deleted, truncated and rewritten entries',
      params: ClientIdParams,
      querystring: Type.Object({
        against: Type.Optional(Type.String({
          pattern: SIGNED_HEAD_PATTERN,
          description: 'A signed head of this app (`head` of GET …/audit/head): the log must still hold its entries, unchanged.',
        })),
      }),
      response: { 200: VerificationJson, ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const owned = await ownedApp(services, request);
    const { against } = request.query;
    const verified = await verifyAuditLog(store, auditKey, owned.clientId, against);
    if (!verified.ok) throw new ApiError('audit_head_invalid', `against: ${verified.detail}`);
    return verificationJson(verified.result, verified.anchor);
  });

  app.get('/api/apps/:client_id/audit/head', {
    onRequest: authenticated,
    schema: {
      tags: ['audit'],
      summary: "The log's current head, signed by this server: keep it outside the database to detect later truncation or rewrites",
      params: ClientIdParams,
      response: { 200: SignedHeadJson, ...errorResponses(400, 401, 404, 409) },
    },
  }, async (request) => {
    const owned = await ownedApp(services, request);
    const signed = await signCurrentHead(store, auditKey, owned.clientId, now());
    if (!signed.ok) {
      const { problem, seq, detail } = signed.result;
      throw new ApiError('audit_chain_broken', `The audit log does not verify (${problem}: ${detail}); its head cannot be signed`, { problem, seq });
    }
    return headJson(signed.head, signed.text);
  });
};
