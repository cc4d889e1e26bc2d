/**
 * JSON with object keys sorted at every level, so equal values always serialise (and hash) the
 * same: guard check arguments, idempotent request bodies, MCP tool definitions. Its own module so
 * the MCP proxy can hash tool definitions without loading the policy engine.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}
