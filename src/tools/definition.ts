/**
 * What "the definition of an MCP tool" is for pinning, and its hash. The server (which stores and
 * compares definitions) and the MCP proxy (which hides what is not approved, also while the server
 * cannot be asked) compute them here, the same way.
 *
 * A definition is the part of an MCP `Tool` (the items of a `tools/list` result) that the model or
 * the user is shown, or that shapes a call: `name`, `title`, `description`, `inputSchema`,
 * `outputSchema`, `annotations`. `_meta`, `icons` and `execution` are left out: they change nothing
 * the model reads. Its canonical form is JSON with keys sorted at every level; its hash is the hex
 * SHA-256 of that JSON's UTF-8 bytes, which anyone can recompute.
 */
import crypto from 'node:crypto';
import { canonicalJson } from '../guard/canonical-json.js';

export const PINNED_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;

export type PinnedField = (typeof PINNED_FIELDS)[number];
export type ToolDefinitionInput = { name: string } & Partial<Record<Exclude<PinnedField, 'name'>, unknown>>;

/** The pinned fields an MCP Tool has (absent or undefined ones are left out). */
export function pinnedDefinition(tool: Record<string, unknown>): ToolDefinitionInput {
  const picked: Record<string, unknown> = {};
  for (const field of PINNED_FIELDS) if (tool[field] !== undefined) picked[field] = tool[field];
  return picked as ToolDefinitionInput;
}

export function canonicalDefinition(tool: Record<string, unknown>): string {
  return canonicalJson(pinnedDefinition(tool));
}

export function definitionHash(canonical: string): string {
  return crypto.createHash('sha256').update(canonical, 'utf8').digest('hex');
}
