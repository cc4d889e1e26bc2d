/** The CLI's HTTP client: operator API calls with the stored or given token. */
import fs from 'node:fs';
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
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (options.auth !== false && this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    let response: Response;
    try {
      response = await fetch(this.baseUrl + pathAndQuery, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ApiCallError(0, { error: { code: 'connection_failed', message: `cannot reach ${this.baseUrl} (${cause})` } }, `cannot reach ${this.baseUrl} (${cause}); is the server running? (set LOGI_URL or --url)`);
    }
    const text = await response.text();
    const parsed: unknown = text === '' ? null : safeJson(text);
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string; request_id?: string; fields?: Array<{ field: string; message: string }> } } | null)?.error;
      const fields = error?.fields?.map((f) => `\n  ${f.field}: ${f.message}`).join('') ?? '';
      const message = error ? `${error.message} [${error.code}${error.request_id ? `, request ${error.request_id}` : ''}]${fields}` : `HTTP ${response.status}`;
      throw new ApiCallError(response.status, parsed, message);
    }
    return parsed as T;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { raw: text };
  }
}
