/** The OpenAPI document's frame: info, security schemes, and the shared error body. */
import { Type } from '@sinclair/typebox';
import { ERRORS } from '../errors.js';

export const ErrorResponse = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.String({ enum: Object.keys(ERRORS), description: 'Stable machine code; see docs/api.md.' }),
        message: Type.String(),
        request_id: Type.String(),
        fields: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
        retry_after_seconds: Type.Optional(Type.Integer()),
      },
      { additionalProperties: true },
    ),
  },
  { description: 'Every error has this body. The code decides what happened; the HTTP status follows from it.' },
);

/**
 * A 204's response schema: documented as `null`, as Type.Null() is, but typed as no payload, so a
 * handler answers with `reply.code(204).send()` (which sends no body and no content type).
 */
export const NoContent = Type.Unsafe<undefined>({ type: 'null' });

/**
 * Response schemas for the given error statuses, for a route's `schema.response`. Every route
 * touches the store, so every route can answer `503 store_unavailable`: it is always listed.
 */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries([...new Set([...statuses, 503])].map((s) => [s, ErrorResponse]));
}

export function openApiInfo() {
  const codes = Object.entries(ERRORS)
    .map(([code, e]) => `| \`${code}\` | ${e.status} | ${e.message} |`)
    .join('\n');
  return {
    openapi: '3.0.3',
    info: {
      title: 'Panopticon',
      version: '0.1.0',
      description:
        'See every AI-agent and MCP tool call, and govern it.\n\n' +
        'Errors: `{"error":{"code","message","request_id",...}}`. Codes:\n\n| code | status | meaning |\n|---|---|---|\n' +
        codes,
    },
    components: {
      securitySchemes: {
        pak: { type: 'http' as const, scheme: 'bearer', description: 'Per-application key, `pano_pak_…`' },
        operatorToken: { type: 'http' as const, scheme: 'bearer', description: 'Operator API token, `pano_op_…`' },
        session: { type: 'apiKey' as const, in: 'cookie' as const, name: 'pano_session' },
      },
    },
    tags: [
      { name: 'traces', description: 'Trace ingestion (PAK auth)' },
      { name: 'auth', description: 'Operator accounts, sessions and tokens' },
      { name: 'apps', description: 'Applications' },
      { name: 'keys', description: 'Per-application keys (PAKs)' },
      { name: 'usage', description: 'Daily usage aggregates' },
      { name: 'guard', description: 'AI Guard: policies, kill switch, pre-call checks' },
      { name: 'audit', description: 'Hash-chained audit log' },
      { name: 'approvals', description: 'Human-in-the-loop approvals and grants' },
      { name: 'webhooks', description: 'Notification endpoints and their deliveries' },
      { name: 'tools', description: 'MCP tool pinning: tool definitions seen by the MCP proxy, quarantined changes, approvals' },
    ],
    'x-error-codes': Object.fromEntries(Object.entries(ERRORS).map(([c, e]) => [c, e.status])),
  };
}
