/**
 * MCP tool pinning over HTTP.
 *
 * Proxies (PAK auth): POST /panopticon/tools reports the tools an MCP server listed and answers
 * which of them may be shown and called (`approved`) and which are quarantined (`pending`) or
 * `rejected`. Idempotent: the same list again changes nothing but last-seen times.
 *
 * Operators (/api, session or operator token; another account's app is a 404): the app's tools
 * with their pinned and quarantined definitions, approve or reject a definition, and whether new
 * tools need approval. Every change is audited in its transaction.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf, ClientIdParams, ownedApp, requireOperator } from '../http/auth.js';
import { ApiError } from '../errors.js';
import { iso } from '../http/format.js';
import { errorResponses } from '../http/openapi.js';
import { pakRouteOptions } from '../http/pak-auth.js';
import type { Services } from '../http/services.js';
import type { ToolDefinition } from '../store/types/tools.js';
import { depthOf } from '../traces/ingest.js';
import { CLIENT_ID_PATTERN } from '../traces/schema.js';
import { canonicalDefinition, type ToolDefinitionInput } from './definition.js';
import { decideTool, listTools, reportTools, setNewToolsPolicy, type ToolView } from './service.js';

export const TOOL_LIMITS = {
  toolsPerReport: 500,
  definitionBytes: 64 * 1024,
  definitionDepth: 32,
  reportBodyBytes: 2 * 1024 * 1024,
} as const;

// No U+0000 in what is stored as text (PostgreSQL cannot hold it); inside the definition's JSON it is escaped.
const Name = Type.String({ minLength: 1, maxLength: 256, pattern: '^[^\\u0000]*$' });
const JsonObject = Type.Object({}, { additionalProperties: true });

const ReportedTool = Type.Object({
  name: Name,
  title: Type.Optional(Type.String({ maxLength: 1024 })),
  description: Type.Optional(Type.String({ maxLength: TOOL_LIMITS.definitionBytes })),
  inputSchema: Type.Optional(JsonObject),
  outputSchema: Type.Optional(JsonObject),
  annotations: Type.Optional(JsonObject),
}, { additionalProperties: false, description: 'The pinned fields of an MCP Tool, as the server listed them (MCP spells them in camelCase).' });

const ReportBody = Type.Object({
  client_id: Type.String({ pattern: CLIENT_ID_PATTERN }),
  tools: Type.Array(ReportedTool, { maxItems: TOOL_LIMITS.toolsPerReport }),
}, { additionalProperties: false });

const NewToolsSchema = Type.Union([Type.Literal('allow'), Type.Literal('require_approval')], {
  description: '`allow`: a tool name not seen before is pinned at once; `require_approval`: it is quarantined until an operator approves it.',
});

const Verdict = Type.Object({
  name: Type.String(),
  hash: Type.String({ description: 'Hex SHA-256 of the canonical JSON of the definition' }),
  status: Type.Union([Type.Literal('approved'), Type.Literal('pending'), Type.Literal('rejected')], {
    description: '`approved`: show it and let calls through; `pending` (quarantined) and `rejected`: hide it and refuse its calls.',
  }),
  definition_id: Type.Union([Type.String(), Type.Null()], { description: 'null only for a new tool past the 1000 tools an application keeps (not stored)' }),
  pinned_hash: Type.Union([Type.String(), Type.Null()], { description: 'The hash of the tool\'s pinned definition (this one when approved); null for a tool never approved' }),
});

const DefinitionJson = Type.Object({
  id: Type.String(),
  hash: Type.String(),
  status: Type.Union([Type.Literal('approved'), Type.Literal('pending'), Type.Literal('rejected'), Type.Literal('superseded')]),
  definition: Type.Object({}, { additionalProperties: true, description: 'name, title, description, inputSchema, outputSchema, annotations as listed' }),
  first_seen_at: Type.String(),
  last_seen_at: Type.String(),
  decided_at: Type.Union([Type.String(), Type.Null()]),
  decided_by: Type.Union([Type.String(), Type.Null()], { description: '`account:<id>`, or `pak:<key id>` for a tool pinned when first seen' }),
});

const ToolJson = Type.Object({
  name: Type.String(),
  status: Type.Union([Type.Literal('approved'), Type.Literal('quarantined'), Type.Literal('rejected')], {
    description: 'What the proxy does with the definition the server showed last: show and allow it, or hide and refuse it',
  }),
  pinned: Type.Union([DefinitionJson, Type.Null()], { description: 'The approved definition; null for a new tool never approved' }),
  changes: Type.Array(DefinitionJson, { description: 'Other definitions pending or rejected, newest first' }),
  first_seen_at: Type.String(),
  last_seen_at: Type.String(),
  last_seen_hash: Type.Union([Type.String(), Type.Null()]),
  calls: Type.Integer({ description: 'Traces of this tool since `calls_since`' }),
});

const definitionJson = (d: ToolDefinition) => ({
  id: d.id, hash: d.hash, status: d.status, definition: JSON.parse(d.definition) as Record<string, unknown>,
  first_seen_at: iso(d.firstSeenAt)!, last_seen_at: iso(d.lastSeenAt)!, decided_at: iso(d.decidedAt), decided_by: d.decidedBy,
});

const toolJson = (t: ToolView) => ({
  name: t.record.name,
  status: t.status,
  pinned: t.pinned === null ? null : definitionJson(t.pinned),
  changes: t.changes.map(definitionJson),
  first_seen_at: iso(t.record.firstSeenAt)!,
  last_seen_at: iso(t.record.lastSeenAt)!,
  last_seen_hash: [t.pinned, ...t.changes].find((d) => d?.id === t.record.lastSeenId)?.hash ?? null,
  calls: t.calls,
});

const DefinitionParams = Type.Object({
  client_id: ClientIdParams.properties.client_id,
  definition_id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
});

/** What the route checks after the schema: unique names, and each definition's size and depth. */
function reportProblems(tools: readonly ToolDefinitionInput[]): Array<{ field: string; message: string }> {
  const problems: Array<{ field: string; message: string }> = [];
  const seen = new Set<string>();
  tools.forEach((t, i) => {
    if (seen.has(t.name)) problems.push({ field: `tools.${i}.name`, message: 'names a tool listed earlier in this report' });
    seen.add(t.name);
    if (depthOf(t, TOOL_LIMITS.definitionDepth) > TOOL_LIMITS.definitionDepth) {
      problems.push({ field: `tools.${i}`, message: `must not nest deeper than ${TOOL_LIMITS.definitionDepth} levels` });
    } else if (Buffer.byteLength(canonicalDefinition(t)) > TOOL_LIMITS.definitionBytes) {
      problems.push({ field: `tools.${i}`, message: `must not exceed ${TOOL_LIMITS.definitionBytes} bytes as JSON` });
    }
  });
  return problems;
}

export const toolRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const authenticated = requireOperator(services);

  app.post('/panopticon/tools', {
    ...pakRouteOptions(services),
    bodyLimit: TOOL_LIMITS.reportBodyBytes,
    schema: {
      tags: ['tools'],
      summary: 'Report the tools an MCP server listed; answers which are approved (shown, callable) and which are quarantined or rejected',
      security: [{ pak: [] }],
      body: ReportBody,
      response: {
        200: Type.Object({ client_id: Type.String(), new_tools: NewToolsSchema, tools: Type.Array(Verdict) }),
        ...errorResponses(400, 401, 403, 413, 415, 429),
      },
    },
  }, async (request) => {
    const body = request.body;
    const key = request.pak!;
    if (body.client_id !== key.clientId) throw new ApiError('client_id_mismatch');
    const problems = reportProblems(body.tools);
    if (problems.length > 0) throw new ApiError('validation_failed', undefined, { fields: problems });
    const result = await reportTools(services, key.clientId, key.keyId, body.tools);
    return {
      client_id: key.clientId,
      new_tools: (await services.store.tools.newToolsPolicy(key.clientId)) ?? 'allow',
      tools: result.verdicts.map((v) => ({ name: v.name, hash: v.hash, status: v.status, definition_id: v.definitionId, pinned_hash: v.pinnedHash })),
    };
  });

  app.get('/api/apps/:client_id/tools', {
    onRequest: authenticated,
    schema: {
      tags: ['tools'],
      summary: 'Every MCP tool the application\'s proxies reported: pinned definition, quarantined changes, first and last seen, calls',
      params: ClientIdParams,
      response: {
        200: Type.Object({
          client_id: Type.String(),
          new_tools: NewToolsSchema,
          calls_since: Type.String({ description: 'Calls are counted from here (30 days back)' }),
          tools: Type.Array(ToolJson),
        }),
        ...errorResponses(400, 401, 404),
      },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const view = await listTools(services, target.clientId);
    return { client_id: target.clientId, new_tools: view.newTools, calls_since: iso(view.callsSince)!, tools: view.tools.map(toolJson) };
  });

  for (const [verb, status] of [['approve', 'approved'], ['reject', 'rejected']] as const) {
    app.post(`/api/apps/:client_id/tools/definitions/:definition_id/${verb}`, {
      onRequest: authenticated,
      schema: {
        tags: ['tools'],
        summary: verb === 'approve'
          ? 'Approve a tool definition: it becomes the pinned one (shown and callable), the previous pin is superseded'
          : 'Reject a quarantined tool definition: it stays hidden and refused; the pinned one is kept',
        params: DefinitionParams,
        response: {
          200: Type.Object({ tool: Type.String(), definition: DefinitionJson, previous: Type.Union([DefinitionJson, Type.Null()], { description: 'The pinned definition before (approve) or still (reject)' }) }),
          ...errorResponses(400, 401, 403, 404, 409),
        },
      },
    }, async (request) => {
      const target = await ownedApp(services, request);
      const { definition_id } = request.params;
      const result = await decideTool(services, target.clientId, definition_id, status, actorOf(request));
      if (!result.ok) {
        if (result.reason === 'not_found') throw new ApiError('tool_definition_not_found', `No tool definition ${definition_id} in this application`);
        throw new ApiError('tool_definition_decided', `The definition is ${result.definition.status}; only a pending${status === 'approved' ? ' or rejected' : ''} one can be ${status}`, { status: result.definition.status });
      }
      return { tool: result.definition.name, definition: definitionJson(result.definition), previous: result.previous === null ? null : definitionJson(result.previous) };
    });
  }

  app.put('/api/apps/:client_id/tools/settings', {
    onRequest: authenticated,
    schema: {
      tags: ['tools'],
      summary: 'Whether a tool name not seen before is pinned at once or quarantined until approved',
      params: ClientIdParams,
      body: Type.Object({ new_tools: NewToolsSchema }, { additionalProperties: false }),
      response: { 200: Type.Object({ client_id: Type.String(), new_tools: NewToolsSchema }), ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const target = await ownedApp(services, request);
    const { new_tools } = request.body;
    await setNewToolsPolicy(services, target.clientId, new_tools, actorOf(request));
    return { client_id: target.clientId, new_tools };
  });
};
