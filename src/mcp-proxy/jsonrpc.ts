/** The JSON-RPC 2.0 pieces the MCP proxy reads: message kinds, id keys, and newline framing (MCP's stdio transport). */
import { StringDecoder } from 'node:string_decoder';

export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

export type Message = Record<string, unknown>;

export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isId = (v: unknown): v is JsonRpcId => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

export function isRequest(m: unknown): m is JsonRpcRequest {
  return isObject(m) && typeof m.method === 'string' && isId(m.id);
}

export function isNotification(m: unknown): m is Message & { method: string } {
  return isObject(m) && typeof m.method === 'string' && m.id === undefined;
}

export function isResponse(m: unknown): m is JsonRpcResponse {
  return isObject(m) && m.method === undefined && (isId(m.id) || m.id === null) && ('result' in m || 'error' in m);
}

/** A map key for an id: the string "1" and the number 1 are different ids. */
export const idKey = (id: JsonRpcId): string => (typeof id === 'number' ? `n:${id}` : `s:${id}`);

export const response = (id: JsonRpcId | null, result: unknown): string => JSON.stringify({ jsonrpc: '2.0', id, result });
export const errorResponse = (id: JsonRpcId | null, code: number, message: string): string => JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } });

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const INVALID_PARAMS = -32602;

/**
 * Splits a byte stream into lines (without their `\n`), decoding UTF-8 across chunk boundaries.
 * A line is passed on exactly as received, `\r` included: relaying must not change a byte.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    let text = this.partial + this.decoder.write(chunk);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      this.onLine(text.slice(start, nl));
      start = nl + 1;
    }
    text = text.slice(start);
    this.partial = text;
  }

  /** What is left without a final newline, at the end of the stream. */
  end(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (rest !== '') this.onLine(rest);
  }
}

/** What the proxy sends a client when a tool it hid may be shown now (governor.ts, watchHidden). */
export const TOOL_LIST_CHANGED = { jsonrpc: '2.0', method: 'notifications/tools/list_changed' } as const;

/**
 * The server's answer to `initialize`, declaring `tools.listChanged` when the server has tools: the
 * proxy announces the tools it starts showing, so the client should listen. Anything else as it is.
 */
export function declaringToolListChanges(m: JsonRpcResponse): { message: JsonRpcResponse; hasTools: boolean } {
  const result = m.result;
  if (!isObject(result) || !isObject(result.capabilities) || !isObject(result.capabilities.tools)) return { message: m, hasTools: false };
  const capabilities = { ...result.capabilities, tools: { ...result.capabilities.tools, listChanged: true } };
  return { message: { ...m, result: { ...result, capabilities } }, hasTools: true };
}
