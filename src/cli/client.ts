/** The CLI's HTTP client: operator API calls with the stored or given token. */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { CliConfig } from '../cli-config.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface Credentials {
  url?: string;
  token?: string;
}

export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
  }
}

export function readCredentials(file: string): Credentials {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Credentials;
  } catch {
    return {};
  }
}

/** Written 0600 in a 0700 directory: the token is as good as the password. */
export function writeCredentials(file: string, credentials: Credentials): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
  fs.chmodSync(file, 0o600);
}

export function removeCredentials(file: string): boolean {
  try {
    fs.unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | undefined,
  ) {}

  static fromConfig(config: CliConfig, urlOverride?: string): ApiClient {
    const saved = readCredentials(config.credentialsFile);
    const url = urlOverride ?? config.url ?? saved.url ?? DEFAULT_URL;
    return new ApiClient(url.replace(/\/+$/, ''), config.token ?? saved.token);
  }

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  async request<T>(method: string, pathAndQuery: string, body?: unknown, options: { auth?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (options.auth !== false && this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    let response: { status: number; location: string | undefined; text: string };
    try {
      response = await send(this.baseUrl + pathAndQuery, method, headers, payload);
    } catch (err) {
      // A system error is named by its code (ECONNREFUSED, ENOTFOUND), anything else (a bad URL) by its message.
      const e = err as NodeJS.ErrnoException;
      const cause = e.syscall !== undefined && e.code !== undefined ? e.code : e.message;
      throw new ApiCallError(0, { error: { code: 'connection_failed', message: `cannot reach ${this.baseUrl} (${cause})` } }, `cannot reach ${this.baseUrl} (${cause}); is the server running? (set LOGI_URL or --url)`);
    }
    const parsed: unknown = response.text === '' ? null : safeJson(response.text);
    if (response.status < 200 || response.status > 299) {
      const error = (parsed as { error?: { code?: string; message?: string; request_id?: string; fields?: Array<{ field: string; message: string }> } } | null)?.error;
      const fields = error?.fields?.map((f) => `\n  ${f.field}: ${f.message}`).join('') ?? '';
      // A redirect is not followed (it would resend the token, or turn a POST into a GET): the
      // operator learns where the server is instead.
      const redirect = response.location === undefined ? '' : ` (redirected to ${response.location}: set LOGI_URL or --url to the server itself)`;
      const message = error ? `${error.message} [${error.code}${error.request_id ? `, request ${error.request_id}` : ''}]${fields}` : `HTTP ${response.status}${redirect}`;
      throw new ApiCallError(response.status, parsed, message);
    }
    return parsed as T;
  }
}

/**
 * One request with node:http(s) rather than fetch: on Node 20 the first fetch in a process loads
 * undici and compiles its WebAssembly HTTP parser, and the process then waits for V8 to finish
 * optimising that code before it can exit. That was half of every `logi` call that talks to a
 * server (`logi apps list`: 0.44 s, 0.22 s without fetch, on the 2-core CI machine).
 */
function send(url: string, method: string, headers: Record<string, string>, payload: Buffer | undefined): Promise<{ status: number; location: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      throw Object.assign(new Error(`unsupported protocol ${target.protocol}`), { code: 'ERR_UNSUPPORTED_PROTOCOL' });
    }
    const req = (target.protocol === 'https:' ? https : http).request(target, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { raw: text };
  }
}
