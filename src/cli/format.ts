/** Human-readable output: aligned tables for lists, key/value lines for one record. */

export function table(rows: ReadonlyArray<Record<string, unknown>>, columns: ReadonlyArray<[key: string, title: string]>): string {
  if (rows.length === 0) return '(none)\n';
  const cells = rows.map((r) => columns.map(([key]) => show(r[key])));
  const widths = columns.map(([, title], i) => Math.max(title.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map(([, t]) => t.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

export function record(value: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(value).map((k) => k.length));
  return Object.entries(value).map(([k, v]) => `${k.padEnd(width)}  ${show(v)}`).join('\n') + '\n';
}

function show(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** `0`, `90s`, `30m`, `24h`, `7d`, or combinations like `1d12h`, in milliseconds. */
export function parseDuration(text: string): number | null {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const re = /(\d+)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    total += Number(m[1]) * unit;
    matched += m[0].length;
  }
  return matched === text.length && text.length > 0 ? total : null;
}
