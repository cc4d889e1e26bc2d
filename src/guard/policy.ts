/**
 * The policy document of one app: an ordered list of rules and a default effect. Stored as one
 * versioned JSON document, so every change (add, edit, move, enable, remove, default, import) is
 * one compare-and-set that bumps the version, and simulation can evaluate a proposed document as
 * it is.
 *
 * The TypeBox schemas here are the API's, the import format's and the store's; `checkPolicy` adds
 * what a schema cannot say (regexes compile under RE2, rule ids are unique).
 */
import { Type, type Static } from '@sinclair/typebox';
import { RE2JS } from 're2js';
import type { ValidateFunction } from 'ajv';
import { bodyAjv, fieldErrors } from '../http/validation.js';
import type { FieldError } from '../traces/ingest.js';

export const POLICY_LIMITS = {
  rules: 200,
  globsPerList: 50,
  globLength: 200,
  usersPerRule: 100,
  conditionsPerRule: 20,
  pathLength: 200,
  regexLength: 512,
  inValues: 100,
  valueLength: 1000,
  nameLength: 100,
  reasonLength: 500,
  approvalTtlSeconds: 7 * 24 * 3600,
} as const;

export const EFFECTS = ['allow', 'deny', 'require_approval'] as const;
export const CONDITION_OPS = [
  'eq', 'ne', 'in', 'not_in', 'matches', 'not_matches', 'prefix', 'not_prefix', 'suffix', 'not_suffix',
  'gt', 'gte', 'lt', 'lte', 'exists', 'not_exists',
] as const;
export const RATE_PERIODS = ['second', 'minute', 'hour', 'day'] as const;
export const RATE_SCOPES = ['app', 'user', 'tool'] as const;

const enumOf = <T extends readonly string[]>(values: T, description: string) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], description });

export const EffectSchema = enumOf(EFFECTS, 'What happens to a matching call.');

const Glob = Type.String({ minLength: 1, maxLength: POLICY_LIMITS.globLength, description: '`*` matches any run of characters, `?` one character.' });
const Scalar = Type.Union([Type.String({ maxLength: POLICY_LIMITS.valueLength }), Type.Number(), Type.Boolean(), Type.Null()]);

export const ConditionSchema = Type.Object({
  path: Type.String({ minLength: 1, maxLength: POLICY_LIMITS.pathLength, description: 'JSON pointer (`/to`) or dotted path (`payment.amount`) into the arguments.' }),
  op: enumOf(CONDITION_OPS, 'Comparison; `not_*` and `ne` are the exact negation of their positive form.'),
  value: Type.Optional(Type.Union([Scalar, Type.Array(Scalar, { maxItems: POLICY_LIMITS.inValues })])),
}, { additionalProperties: false });

export const RateLimitSchema = Type.Object({
  max: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  period: enumOf(RATE_PERIODS, 'Fixed window length.'),
  per: enumOf(RATE_SCOPES, 'Counted per app, per user_sub, or per tool.'),
}, { additionalProperties: false });

export const MatchSchema = Type.Object({
  tools: Type.Array(Glob, { maxItems: POLICY_LIMITS.globsPerList, default: [], description: 'Tool-name globs; empty matches every tool.' }),
  scopes: Type.Array(Glob, { maxItems: POLICY_LIMITS.globsPerList, default: [], description: 'Scope globs; empty matches every scope.' }),
  users: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: POLICY_LIMITS.usersPerRule, default: [], description: 'user_sub values; empty matches every caller.' }),
  arguments: Type.Array(ConditionSchema, { maxItems: POLICY_LIMITS.conditionsPerRule, default: [], description: 'All must hold.' }),
}, { additionalProperties: false });

/** A rule as the API takes it (id and timestamps are the server's). */
export const RuleInputSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: POLICY_LIMITS.nameLength }),
  enabled: Type.Boolean({ default: true }),
  effect: EffectSchema,
  match: MatchSchema,
  rate_limit: Type.Union([RateLimitSchema, Type.Null()], { default: null }),
  reason: Type.Union([Type.String({ maxLength: POLICY_LIMITS.reasonLength }), Type.Null()], { default: null, description: 'Shown to the agent with the decision.' }),
  approval_ttl_seconds: Type.Union([Type.Integer({ minimum: 10, maximum: POLICY_LIMITS.approvalTtlSeconds }), Type.Null()], { default: null, description: 'For require_approval: how long a request waits (default 600 s).' }),
  expires_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { default: null, description: 'After this the rule no longer applies.' }),
}, { additionalProperties: false });

export const RuleSchema = Type.Composite([
  Type.Object({ id: Type.String({ pattern: '^rul_[0-9a-zA-Z]{1,40}$' }) }),
  RuleInputSchema,
  Type.Object({ created_at: Type.String(), updated_at: Type.String() }),
], { additionalProperties: false });

export const PolicyDocumentSchema = Type.Object({
  default_effect: EffectSchema,
  rules: Type.Array(RuleSchema, { maxItems: POLICY_LIMITS.rules }),
}, { additionalProperties: false });

/** What `policies import` takes: rules may omit id and timestamps (new ones are assigned). */
export const PolicyImportSchema = Type.Object({
  default_effect: Type.Optional(EffectSchema),
  rules: Type.Array(Type.Composite([Type.Object({ id: Type.Optional(Type.String({ pattern: '^rul_[0-9a-zA-Z]{1,40}$' })) }), RuleInputSchema], { additionalProperties: false }), { maxItems: POLICY_LIMITS.rules }),
}, { additionalProperties: false });

export type Effect = (typeof EFFECTS)[number];
export type ConditionOp = (typeof CONDITION_OPS)[number];
export type Condition = Static<typeof ConditionSchema>;
export type RateLimit = Static<typeof RateLimitSchema>;
export type RuleInput = Static<typeof RuleInputSchema>;
export type Rule = Static<typeof RuleSchema>;
export type PolicyDocument = Static<typeof PolicyDocumentSchema>;
export type PolicyImport = Static<typeof PolicyImportSchema>;

export const EMPTY_POLICY: PolicyDocument = { default_effect: 'allow', rules: [] };

/**
 * Compiled on first use rather than at import: the three cost 0.1 s of CPU, paid by every process
 * that imports the server (each test file, each `logi serve`) whether or not it reads a policy.
 */
function lazily<T>(compile: () => ValidateFunction<T>): () => ValidateFunction<T> {
  let validate: ValidateFunction<T> | undefined;
  return () => (validate ??= compile());
}
const documentValidator = lazily(() => bodyAjv.compile(PolicyDocumentSchema) as ValidateFunction<PolicyDocument>);
const importValidator = lazily(() => bodyAjv.compile(PolicyImportSchema) as ValidateFunction<PolicyImport>);
const ruleInputValidator = lazily(() => bodyAjv.compile(RuleInputSchema) as ValidateFunction<RuleInput>);

export type Checked<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** Semantic checks beyond the schema: every regex compiles under RE2, `in` has a list, ids are unique. */
function semanticErrors(rules: ReadonlyArray<Pick<Rule, 'match'> & { id?: string | undefined }>, prefix: string): FieldError[] {
  const errors: FieldError[] = [];
  const ids = new Set<string>();
  rules.forEach((rule, i) => {
    if (rule.id !== undefined) {
      if (ids.has(rule.id)) errors.push({ field: `${prefix}${i}.id`, message: `duplicates rule id ${rule.id}` });
      ids.add(rule.id);
    }
    rule.match.arguments.forEach((c, k) => {
      const field = `${prefix}${i}.match.arguments.${k}`;
      const message = conditionProblem(c);
      if (message !== null) errors.push({ field, message });
    });
  });
  return errors;
}

export function conditionProblem(c: Condition): string | null {
  const needsList = c.op === 'in' || c.op === 'not_in';
  const needsNothing = c.op === 'exists' || c.op === 'not_exists';
  if (needsList && !Array.isArray(c.value)) return `${c.op} needs a list value`;
  if (!needsList && !needsNothing && (c.value === undefined || Array.isArray(c.value))) return `${c.op} needs a single value`;
  if (['gt', 'gte', 'lt', 'lte'].includes(c.op) && typeof c.value !== 'number') return `${c.op} needs a number`;
  if (['matches', 'not_matches', 'prefix', 'not_prefix', 'suffix', 'not_suffix'].includes(c.op) && typeof c.value !== 'string') return `${c.op} needs a string`;
  if (c.op === 'matches' || c.op === 'not_matches') {
    const pattern = c.value as string;
    if (pattern.length > POLICY_LIMITS.regexLength) return `regex longer than ${POLICY_LIMITS.regexLength} characters`;
    try {
      RE2JS.compile(pattern);
    } catch (err) {
      return `regex does not compile under RE2 (linear-time; no backreferences or lookaround): ${(err as Error).message}`;
    }
  }
  if (!/^\/|^[^/]/.test(c.path)) return 'path must be a JSON pointer or a dotted path';
  return null;
}

export function checkDocument(value: unknown): Checked<PolicyDocument> {
  const validateDocument = documentValidator();
  if (!validateDocument(value)) return { ok: false, errors: fieldErrors(validateDocument.errors) };
  const errors = semanticErrors(value.rules, 'rules.');
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}

export function checkImport(value: unknown): Checked<PolicyImport> {
  const validateImport = importValidator();
  if (!validateImport(value)) return { ok: false, errors: fieldErrors(validateImport.errors) };
  const errors = semanticErrors(value.rules, 'rules.');
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}

export function checkRuleInput(value: unknown): Checked<RuleInput> {
  const validateRuleInput = ruleInputValidator();
  if (!validateRuleInput(value)) return { ok: false, errors: fieldErrors(validateRuleInput.errors) };
  const errors = semanticErrors([value], 'rule.').map((e) => ({ ...e, field: e.field.replace(/^rule\.0\./, '') }));
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}

export function parseStoredDocument(text: string): PolicyDocument {
  return JSON.parse(text) as PolicyDocument;
}
