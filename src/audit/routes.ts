/** /api/apps/:client_id/audit: the app's audit log, newest first, and a verification of its hash chain. */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireOperator } from '../accounts/auth.js';
import { ClientIdParams, ownedApp } from '../apps/routes.js';
import { iso } from '../http/format.js';
import { errorResponses } from '../http/openapi.js';
import type { Services } from '../http/server.js';
import type { AuditEntry } from '../store/guard-types.js';
import type { Store } from '../store/types.js';
import { verifyChain } from './chain.js';

const AuditEntryJson = Type.Object({
  seq: Type.Integer(),
  at: Type.String(),
  actor: Type.String({ description: '`account:<id>` of the operator, or `system`.' }),
  actor_email: Type.Union([Type.String(), Type.Null()]),
  action: Type.String(),
  target: Type.Union([Type.String(), Type.Null()]),
  before: Type.Unknown(),
  after: Type.Unknown(),
  prev_hash: Type.String(),
  hash: Type.String(),
});

/** Reading the whole chain to verify it is bounded per page; the store streams it page by page. */
const VERIFY_PAGE = 1000;

async function withEmails(store: Store, entries: AuditEntry[]) {
  const ids = [...new Set(entries.map((e) => e.actor).filter((a) => a.startsWith('account:')).map((a) => a.slice('account:'.length)))];
  const emails = new Map<string, string>();
  for (const id of ids) {
    const account = await store.findAccountById(id);
    if (account !== null) emails.set(`account:${id}`, account.email);
  }
  return entries.map((e) => ({
    seq: e.seq,
    at: iso(e.at)!,
    actor: e.actor,
    actor_email: emails.get(e.actor) ?? null,
    action: e.action,
    target: e.target,
    before: e.before === null ? null : (JSON.parse(e.before) as unknown),
    after: e.after === null ? null : (JSON.parse(e.after) as unknown),
    prev_hash: e.prevHash,
    hash: e.hash,
  }));
}

export async function readWholeChain(store: Store, clientId: string): Promise<AuditEntry[]> {
  const all: AuditEntry[] = [];
  for (;;) {
    const page = await store.audit.list(clientId, { afterSeq: all.length === 0 ? 0 : all[all.length - 1]!.seq, limit: VERIFY_PAGE });
    all.push(...page);
    if (page.length < VERIFY_PAGE) return all;
  }
}

export function registerAuditRoutes(app: FastifyInstance, services: Services): void {
  const { store } = services;
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
    const q = request.query as { limit: number; before_seq?: number };
    const entries = await store.audit.list(owned.clientId, { afterSeq: q.before_seq, limit: q.limit, newestFirst: true });
    const last = entries[entries.length - 1];
    return { entries: await withEmails(store, entries), next_before_seq: entries.length === q.limit && last !== undefined && last.seq > 1 ? last.seq : null };
  });

  app.get('/api/apps/:client_id/audit/verify', {
    onRequest: authenticated,
    schema: {
      tags: ['audit'],
      summary: 'Recompute the hash chain: detects a changed, deleted or truncated entry',
      params: ClientIdParams,
      response: {
        200: Type.Object({
          ok: Type.Boolean(),
          entries: Type.Integer(),
          head: Type.Optional(Type.Union([Type.String(), Type.Null()])),
          problem: Type.Optional(Type.String()),
          seq: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
          detail: Type.Optional(Type.String()),
        }),
        ...errorResponses(400, 401, 404),
      },
    },
  }, async (request) => {
    const owned = await ownedApp(services, request);
    const [entries, pinned] = await Promise.all([readWholeChain(store, owned.clientId), store.audit.pinned(owned.clientId)]);
    return verifyChain(entries, pinned);
  });
}
