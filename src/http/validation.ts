/**
 * AJV set-up. Bodies are validated strictly (no coercion, no silent removal of unknown fields, all
 * errors reported) so a client learns every wrong field at once; query strings and path params are
 * coerced, since they only ever arrive as text.
 */
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import * as addFormatsModule from 'ajv-formats';
import type { FastifyRequest, FastifySchemaCompiler, FastifyServerOptions } from 'fastify';
import type { FieldError } from '../traces/ingest.js';

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
  // ajv-formats' uuid also takes `urn:uuid:…`: two spellings of one idempotency key would store
  // one trace twice. Only the 8-4-4-4-12 hex form (either case) is a uuid here.
  ajv.addFormat('uuid', UUID_PATTERN);
  return ajv;
}

export const bodyAjv = makeAjv(false);
const textAjv = makeAjv(true);

/**
 * Compiled code is a pure function of the schema's JSON and the compiler, so each schema is compiled
 * once per process. Fastify hands some route schemas over as fresh copies for every server (AJV's
 * own cache is keyed by object), and a process that builds several servers (the test suites, the
 * benchmark) otherwise paid the whole compile again for each.
 */
const validators = new Map<string, ValidateFunction>();

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? bodyAjv : textAjv;
  const key = `${ajv === bodyAjv ? 'body' : 'text'}\0${JSON.stringify(schema)}`;
  let validate = validators.get(key);
  if (validate === undefined) {
    validate = ajv.compile(schema as object) as ValidateFunction;
    validators.set(key, validate);
  }
  return validate;
};

type SerializerFactory = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildSerializer']>;

/**
 * Fastify's own response serializer factory (fast-json-stringify, resolved from fastify itself so
 * it is the one Fastify would use), with the same once-per-process cache: a serializer build costs
 * several milliseconds (a fresh AJV instance each), and the server has a hundred of them.
 */
const defaultSerializerFactory = (() => {
  const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
  return (fromFastify('@fastify/fast-json-stringify-compiler') as { SerializerSelector: () => SerializerFactory }).SerializerSelector();
})();
const serializers = new Map<string, (doc: unknown) => string>();

export const cachedSerializerFactory: SerializerFactory = (externalSchemas, options) => {
  const compile = defaultSerializerFactory(externalSchemas, options);
  // The shared schemas a response may $ref and the options are part of what the code depends on.
  const context = JSON.stringify([externalSchemas, options]);
  return (route) => {
    const key = `${context}\0${JSON.stringify(route.schema)}`;
    let serialize = serializers.get(key);
    if (serialize === undefined) {
      serialize = compile(route);
      serializers.set(key, serialize);
    }
    return serialize;
  };
};

/**
 * AJV errors as one entry per offending field, named as the client wrote it (`a.b[2]` → `a.b.2`).
 * A field that failed several branches of a union gets one message naming what it may be.
 */
export function fieldErrors(errors: readonly ErrorObject[] | null | undefined, prefix = ''): FieldError[] {
  const byField = new Map<string, string[]>();
  for (const e of errors ?? []) {
    if (e.keyword === 'anyOf') continue;
    let field = e.instancePath.slice(1).replace(/\//g, '.');
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'required') field = join(field, String(params.missingProperty));
    if (e.keyword === 'additionalProperties') field = join(field, String(params.additionalProperty));
    field = join(prefix, field) || '(body)';
    const message =
      e.keyword === 'required' ? 'is required'
      : e.keyword === 'additionalProperties' ? 'is not a known field'
      : e.keyword === 'enum' ? `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`
      : e.keyword === 'type' ? `must be ${String(params.type)}`
      : (e.message ?? 'is invalid');
    const messages = byField.get(field) ?? [];
    if (!messages.includes(message)) messages.push(message);
    byField.set(field, messages);
  }
  return [...byField].map(([field, messages]) => ({ field, message: combine(messages) }));
}

/** ["must be object", "must be null"] → "must be object or null". */
function combine(messages: string[]): string {
  if (messages.length > 1 && messages.every((m) => m.startsWith('must be '))) {
    return `must be ${messages.map((m) => m.slice('must be '.length)).join(' or ')}`;
  }
  return messages.join('; ');
}

function join(a: string, b: string): string {
  return a === '' ? b : b === '' ? a : `${a}.${b}`;
}

/** preValidation for routes whose body is optional: no body means `{}`, so the schema's defaults apply. */
export async function emptyBodyIsEmptyObject(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}
