/** A database row as either driver returns it, and the conversions every row mapper in sql/ uses. */
export type Row = Record<string, unknown>;

/** PostgreSQL's BIGINT may arrive as text; SQLite's INTEGER as a number. */
export const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
export const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
