/**
 * SQL that both engines run is written once, in PostgreSQL's numbered-parameter form (`$1`, `$2`,
 * …). SQLite reads `$1` as a named parameter called "1", so the same text runs on better-sqlite3
 * with its values bound by name through `numbered`; no statement is rewritten per engine.
 */

/** better-sqlite3's binding of a statement's `$1`, `$2`, …: `{ 1: first, 2: second, … }`. */
export function numbered(params: readonly unknown[]): Record<string, unknown> {
  const bound: Record<string, unknown> = {};
  params.forEach((v, i) => (bound[i + 1] = v));
  return bound;
}

/** `$1, $2, …, $count`: the value list of an INSERT. */
export function slots(count: number): string {
  return Array.from({ length: count }, (_, i) => `$${i + 1}`).join(', ');
}
