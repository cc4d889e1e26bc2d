/**
 * Pure edits of a policy document. Each returns the new document or a typed failure; the service
 * persists the result with a compare-and-set and audits before → after. Positions are 1-based.
 */
import type { Effect, PolicyDocument, PolicyImport, Rule, RuleInput } from './policy.js';

export type Edit = (doc: PolicyDocument) => PolicyDocument | EditFailure;
export type EditFailure = { failure: 'rule_not_found'; ruleId: string } | { failure: 'too_many_rules'; max: number };

export const isFailure = (r: PolicyDocument | EditFailure): r is EditFailure => 'failure' in r;

function clampPosition(position: number | undefined, length: number): number {
  if (position === undefined) return length;
  return Math.min(Math.max(position, 1), length + 1) - 1;
}

function findIndex(doc: PolicyDocument, ruleId: string): number {
  return doc.rules.findIndex((r) => r.id === ruleId);
}

export function addRule(input: RuleInput, id: string, nowIso: string, maxRules: number, position?: number): Edit {
  return (doc) => {
    if (doc.rules.length >= maxRules) return { failure: 'too_many_rules', max: maxRules };
    const rule: Rule = { id, ...input, created_at: nowIso, updated_at: nowIso };
    const rules = [...doc.rules];
    rules.splice(clampPosition(position, rules.length), 0, rule);
    return { ...doc, rules };
  };
}

export function replaceRule(ruleId: string, input: RuleInput, nowIso: string): Edit {
  return (doc) => {
    const i = findIndex(doc, ruleId);
    if (i < 0) return { failure: 'rule_not_found', ruleId };
    const rules = [...doc.rules];
    rules[i] = { id: ruleId, ...input, created_at: doc.rules[i]!.created_at, updated_at: nowIso };
    return { ...doc, rules };
  };
}

export function setRuleEnabled(ruleId: string, enabled: boolean, nowIso: string): Edit {
  return (doc) => {
    const i = findIndex(doc, ruleId);
    if (i < 0) return { failure: 'rule_not_found', ruleId };
    const rules = [...doc.rules];
    rules[i] = { ...doc.rules[i]!, enabled, updated_at: nowIso };
    return { ...doc, rules };
  };
}

export function moveRule(ruleId: string, position: number): Edit {
  return (doc) => {
    const i = findIndex(doc, ruleId);
    if (i < 0) return { failure: 'rule_not_found', ruleId };
    const rules = [...doc.rules];
    const [rule] = rules.splice(i, 1);
    rules.splice(clampPosition(position, rules.length), 0, rule!);
    return { ...doc, rules };
  };
}

export function removeRule(ruleId: string): Edit {
  return (doc) => {
    const i = findIndex(doc, ruleId);
    if (i < 0) return { failure: 'rule_not_found', ruleId };
    return { ...doc, rules: doc.rules.filter((r) => r.id !== ruleId) };
  };
}

export function setDefaultEffect(effect: Effect): Edit {
  return (doc) => ({ ...doc, default_effect: effect });
}

/** Replaces the whole rule list (the import of a reviewed file); rules without an id get one. */
export function importPolicy(imported: PolicyImport, newId: () => string, nowIso: string): Edit {
  return (doc) => {
    const previous = new Map(doc.rules.map((r) => [r.id, r]));
    const rules: Rule[] = imported.rules.map(({ id, ...input }) => {
      const old = id !== undefined ? previous.get(id) : undefined;
      return { id: id ?? newId(), ...input, created_at: old?.created_at ?? nowIso, updated_at: nowIso };
    });
    return { default_effect: imported.default_effect ?? doc.default_effect, rules };
  };
}
