/** What the MCP proxy tests share: the servers they launch, the proxy's command line, and reading back traces. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { http, LOGI_BIN, REPO_ROOT, type RunningServer, type Tenant } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const FILESYSTEM_SERVER = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');
export const EVERYTHING_SERVER = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
export const RAW_SERVER = path.join(here, 'mcp-raw-server.js');
export const RUG_PULL_SERVER = path.join(here, 'mcp-rug-pull-server.js');


/** `node bin/logi.js mcp proxy …flags -- <server>`: argv after the node binary. */
export function proxyArgs(url: string, clientId: string, flags: readonly string[], server: readonly string[]): string[] {
  return [LOGI_BIN, '--url', url, 'mcp', 'proxy', '--client-id', clientId, ...flags, '--', ...server];
}

/** The environment of a proxy: the PAK in LOGI_PAK, nothing else of ours. */
export function proxyEnv(pak: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOGI_PAK: pak, ...extra };
}

export interface ProxiedClient {
  client: Client;
  transport: StdioClientTransport;
  stderr: () => string;
  close: () => Promise<void>;
}

/** The official MCP client, over stdio, to `server` launched through the proxy (or directly, with `direct`). */
export async function connect(
  target: { url: string; tenant: Pick<Tenant, 'clientId' | 'pak'>; flags?: readonly string[]; direct?: boolean },
  server: readonly string[],
  capabilities: ConstructorParameters<typeof Client>[1] = {},
): Promise<ProxiedClient> {
  // `server` is a script and its arguments, run by this node binary.
  const args = target.direct === true ? [...server] : proxyArgs(target.url, target.tenant.clientId, target.flags ?? [], [process.execPath, ...server]);
  const transport = new StdioClientTransport({ command: process.execPath, args, env: proxyEnv(target.tenant.pak), stderr: 'pipe', cwd: REPO_ROOT });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'proxy-test', version: '1.0.0' }, capabilities);
  await client.connect(transport);
  return { client, transport, stderr: () => stderr, close: () => client.close() };
}

export interface TraceJson {
  event_id: string;
  tool: string;
  status: string;
  scope_used: string;
  user_sub: string | null;
  session_id: string | null;
  error_message: string | null;
  duration_ms: number;
  check_id: string | null;
  attributes: Record<string, unknown> | null;
}

export async function traces(server: RunningServer, tenant: Pick<Tenant, 'clientId' | 'token'>): Promise<TraceJson[]> {
  const res = await http(server.url, 'GET', `/api/apps/${tenant.clientId}/traces?limit=200`, { token: tenant.token });
  return res.body.traces as TraceJson[];
}

export async function addRule(server: RunningServer, tenant: Pick<Tenant, 'clientId' | 'token'>, rule: Record<string, unknown>): Promise<void> {
  const res = await http(server.url, 'POST', `/api/apps/${tenant.clientId}/policies/rules`, { token: tenant.token, body: rule });
  if (res.status !== 201) throw new Error(`rule not added: ${res.status} ${res.text}`);
}
