/**
 * Reads the runnable examples out of docs/api.md and checks what they print.
 *
 * Convention (stated again at the top of docs/api.md, "Reading the examples"):
 *   - A runnable example is a fenced block tagged ```sh. Every ```sh block in the file is run, top to
 *     bottom, by bash in one scratch directory (files such as cookies.txt carry over between blocks).
 *   - Its only inputs are the environment variables PANOPTICON_URL, PAK, CLIENT_ID and TOKEN, and
 *     PAK_SECRET: the `pak_secret` of the latest response that showed one (enable or rotate of HMAC
 *     signing), as a reader copies it; a block may set variables of its own. It uses curl with `-i` (or `-D -`), so the status line
 *     and headers of each response are printed before its body.
 *   - The next fenced block, tagged ```http, is the expected output: one or more responses, each a
 *     status line (`HTTP/1.1 202 Accepted`), optionally header lines (`Name: value`), then
 *     optionally the body. The expected responses are compared with the last responses the block
 *     printed (1xx interim responses are ignored): the status code always; each header listed must
 *     be present; a body, when shown, must match.
 *   - In expected headers and bodies, `…` stands for text that varies (ids, times, secrets). In a
 *     JSON body, a string containing `…` matches any string with the same text around it, and the
 *     string "…" on its own matches any value. Otherwise JSON bodies match exactly: same keys, same
 *     array lengths, same values.
 *   - Blocks in other languages (```text, ```json, ```console) are illustration and are not run.
 */

export interface ExpectedResponse {
  status: number;
  headers: Array<{ name: string; value: string }>;
  body: string | null;
}

export interface DocExample {
  /** 1-based line of the ```sh fence in the markdown, for messages. */
  line: number;
  script: string;
  expected: ExpectedResponse[];
}

interface Fence {
  line: number;
  lang: string;
  text: string;
}

export const EXAMPLE_ENV = ['PANOPTICON_URL', 'PAK', 'CLIENT_ID', 'TOKEN', 'PAK_SECRET'] as const;

export function fences(markdown: string): Fence[] {
  const lines = markdown.split('\n');
  const out: Fence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})\s*([\w-]*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const marker = open[1]!;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && lines[j]!.trimEnd() !== marker) body.push(lines[j++]!);
    if (j >= lines.length) throw new Error(`unclosed code fence at line ${i + 1}`);
    out.push({ line: i + 1, lang: open[2]!, text: body.join('\n') });
    i = j;
  }
  return out;
}

/** Every ```sh block with the ```http block that follows it. Throws when one has no expectation. */
export function extractExamples(markdown: string): DocExample[] {
  const all = fences(markdown);
  const examples: DocExample[] = [];
  all.forEach((fence, k) => {
    if (fence.lang !== 'sh') return;
    const next = all[k + 1];
    if (next === undefined || next.lang !== 'http') {
      throw new Error(`docs/api.md line ${fence.line}: a \`\`\`sh example must be followed by an \`\`\`http block with the expected response`);
    }
    examples.push({ line: fence.line, script: fence.text, expected: parseExpected(next.text, next.line) });
  });
  return examples;
}

const STATUS_LINE = /^HTTP\/[\d.]+ (\d{3})\b.*$/;
const HEADER_LINE = /^([A-Za-z0-9-]+):\s?(.*)$/;

export function parseExpected(text: string, line: number): ExpectedResponse[] {
  const responses: ExpectedResponse[] = [];
  let current: ExpectedResponse | null = null;
  let inBody = false;
  let body: string[] = [];
  const finish = () => {
    if (current === null) return;
    const b = body.join('\n').trim();
    current.body = b === '' ? null : b;
    responses.push(current);
  };
  for (const raw of text.split('\n')) {
    const status = STATUS_LINE.exec(raw.trim());
    if (status) {
      finish();
      current = { status: Number(status[1]), headers: [], body: null };
      inBody = false;
      body = [];
      continue;
    }
    if (current === null) {
      if (raw.trim() === '') continue;
      throw new Error(`docs/api.md line ${line}: the expected block must start with a status line, got ${JSON.stringify(raw)}`);
    }
    const header = inBody ? null : HEADER_LINE.exec(raw);
    if (header && !raw.trimStart().startsWith('{')) {
      current.headers.push({ name: header[1]!.toLowerCase(), value: header[2]!.trim() });
      continue;
    }
    if (!inBody && raw.trim() === '') {
      inBody = true;
      continue;
    }
    inBody = true;
    body.push(raw);
  }
  finish();
  if (responses.length === 0) throw new Error(`docs/api.md line ${line}: empty expected block`);
  return responses;
}

export interface ActualResponse {
  status: number;
  headers: Array<{ name: string; value: string }>;
  body: string;
}

/**
 * Splits what `curl -i` printed into responses. A status line starts a response at the start of
 * the output, after a newline, or right after a body that did not end in one (curl prints the next
 * response straight after the previous body).
 */
export function parseCurlOutput(output: string): ActualResponse[] {
  const text = output.replace(/\r\n/g, '\n');
  const starts: number[] = [];
  const re = /HTTP\/[\d.]+ \d{3}[^\n]*\n/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const before = m.index === 0 ? '\n' : text[m.index - 1]!;
    if (before === '\n' || before === '}' || before === ']') starts.push(m.index);
  }
  const responses: ActualResponse[] = [];
  starts.forEach((start, k) => {
    const chunk = text.slice(start, starts[k + 1] ?? text.length);
    const headerEnd = chunk.indexOf('\n\n');
    const head = headerEnd < 0 ? chunk : chunk.slice(0, headerEnd);
    const body = headerEnd < 0 ? '' : chunk.slice(headerEnd + 2);
    const [statusLine, ...headerLines] = head.split('\n');
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(statusLine!)![1]);
    const headers = headerLines.flatMap((l) => {
      const h = HEADER_LINE.exec(l);
      return h ? [{ name: h[1]!.toLowerCase(), value: h[2]!.trim() }] : [];
    });
    if (status >= 100 && status < 200) return;
    responses.push({ status, headers, body: body.trim() });
  });
  return responses;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `…` matches any run of characters; everything else literally. */
export function matchesPattern(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('…').map(escapeRegExp).join('[\\s\\S]*')}$`);
  return re.test(value);
}

/** What a bare `…` in an expected body (a value that is not a string, e.g. `"server_time":…`) stands for. */
const ANY_NUMBER = '\u0000any number';

/** A bare `…` where a JSON value goes (after `:`, `[` or `,`) becomes a placeholder for any number. */
function withNumberPlaceholders(body: string): string {
  return body.replace(/([:[,]\s*)…(?=\s*[,}\]])/g, `$1${JSON.stringify(ANY_NUMBER)}`);
}

/** Where `actual` departs from `expected` (see the convention above), or null when it matches. */
export function jsonMismatch(expected: unknown, actual: unknown, path = '$'): string | null {
  if (expected === '…') return null;
  if (expected === ANY_NUMBER) return typeof actual === 'number' ? null : `${path}: expected a number, got ${JSON.stringify(actual)}`;
  if (typeof expected === 'string') {
    if (typeof actual !== 'string') return `${path}: expected a string like ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
    return matchesPattern(expected, actual) ? null : `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${path}: expected an array, got ${JSON.stringify(actual)}`;
    if (actual.length !== expected.length) return `${path}: expected ${expected.length} items, got ${actual.length}: ${JSON.stringify(actual)}`;
    for (let i = 0; i < expected.length; i++) {
      const m = jsonMismatch(expected[i], actual[i], `${path}[${i}]`);
      if (m) return m;
    }
    return null;
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return `${path}: expected an object, got ${JSON.stringify(actual)}`;
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const missing = Object.keys(e).filter((k) => !(k in a));
    const extra = Object.keys(a).filter((k) => !(k in e));
    if (missing.length > 0 || extra.length > 0) {
      return `${path}: keys differ (missing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(extra)}) in ${JSON.stringify(actual)}`;
    }
    for (const k of Object.keys(e)) {
      const m = jsonMismatch(e[k], a[k], `${path}.${k}`);
      if (m) return m;
    }
    return null;
  }
  return Object.is(expected, actual) ? null : `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

/** Compares one expected response with one actual one; returns the problems found. */
export function responseMismatches(expected: ExpectedResponse, actual: ActualResponse): string[] {
  const problems: string[] = [];
  if (expected.status !== actual.status) problems.push(`status: expected ${expected.status}, got ${actual.status}`);
  for (const h of expected.headers) {
    const found = actual.headers.filter((a) => a.name === h.name);
    if (!found.some((a) => matchesPattern(h.value, a.value))) {
      problems.push(`header ${h.name}: expected ${JSON.stringify(h.value)}, got ${JSON.stringify(found.map((a) => a.value))}`);
    }
  }
  if (expected.body !== null) {
    let expectedJson: unknown;
    let isJson = true;
    try {
      expectedJson = JSON.parse(withNumberPlaceholders(expected.body));
    } catch {
      isJson = false;
    }
    if (isJson) {
      let actualJson: unknown;
      try {
        actualJson = JSON.parse(actual.body);
      } catch {
        problems.push(`body: expected JSON, got ${JSON.stringify(actual.body.slice(0, 300))}`);
        return problems;
      }
      const m = jsonMismatch(expectedJson, actualJson);
      if (m) problems.push(`body: ${m}`);
    } else if (!matchesPattern(expected.body, actual.body)) {
      problems.push(`body: expected ${JSON.stringify(expected.body)}, got ${JSON.stringify(actual.body.slice(0, 300))}`);
    }
  }
  return problems;
}

/** Variables a block reads that are neither example inputs nor set by the block itself. */
export function foreignVariables(script: string): string[] {
  const assigned = new Set<string>();
  for (const m of script.matchAll(/(?:^|[\s;(])([A-Za-z_][A-Za-z0-9_]*)=/g)) assigned.add(m[1]!);
  for (const m of script.matchAll(/\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b/g)) assigned.add(m[1]!);
  const allowed = new Set<string>([...EXAMPLE_ENV, ...assigned]);
  // Single-quoted text is literal (sed's `$p`, JSON bodies), so it is left out.
  const used = new Set<string>();
  const expanding = script.replace(/^\s*#.*$/gm, '').replace(/'[^']*'/g, "''");
  for (const m of expanding.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) used.add(m[1]!);
  return [...used].filter((v) => !allowed.has(v));
}

/** Routes from `app.printRoutes({ commonPrefix: false })`, as `METHOD /path`, without HEAD. */
export function routesFromTree(tree: string): string[] {
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(.+?)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = [...m[1]!].length / 4;
    const full = (depth > 0 ? stack[depth - 1]! : '') + m[2]!;
    stack[depth] = full;
    stack.length = depth + 1;
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
      if (method !== 'HEAD') routes.push(`${method} ${full}`);
    }
  }
  return routes;
}
