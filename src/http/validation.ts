/**
 * AJV set-up. Bodies are validated strictly (no coercion, no silent removal of unknown fields, all
 * errors reported) so a client learns every wrong field at once; query strings and path params are
 * coerced, since they only ever arrive as text.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import * as addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { FieldError } from '../traces/ingest.js';

// ajv-formats ships CommonJS with a default export property.
const addFormats = (addFormatsModule as unknown as { default: (ajv: Ajv) => Ajv }).default;

function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    allErrors: true,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

export const bodyAjv = makeAjv(false);
const textAjv = makeAjv(true);

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object) as ValidateFunction;

/** AJV errors as one entry per offending field, named as the client wrote it (`a.b[2]` → `a.b.2`). */
export function fieldErrors(errors: readonly ErrorObject[] | null | undefined, prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    let field = e.instancePath.slice(1).replace(/\//g, '.');
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'required') field = join(field, String(params.missingProperty));
    if (e.keyword === 'additionalProperties') field = join(field, String(params.additionalProperty));
    field = join(prefix, field) || '(body)';
    const message =
      e.keyword === 'required' ? 'is required'
      : e.keyword === 'additionalProperties' ? 'is not a known field'
      : e.keyword === 'anyOf' ? 'has the wrong type or value'
      : (e.message ?? 'is invalid');
    const key = `${field}\u0000${message}`;
    if (seen.has(key)) continue;
    // A failing union reports each branch and then anyOf; keep the branch that says most.
    if (e.keyword === 'anyOf' && out.some((o) => o.field === field)) continue;
    seen.add(key);
    out.push({ field, message });
  }
  return out;
}

function join(a: string, b: string): string {
  return a === '' ? b : b === '' ? a : `${a}.${b}`;
}
