/**
 * Server-Sent Events as the MCP Streamable HTTP transport uses them: a stream of events separated
 * by a blank line, each with `data:` lines (one JSON-RPC message) and optionally `id:` and `event:`.
 * The splitter hands over each event's exact text (so an event left alone is relayed byte for byte)
 * and its data.
 */
import { StringDecoder } from 'node:string_decoder';

const BOUNDARY = /\r\n\r\n|\n\n|\r\r/;

export class SseSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private buffer = '';

  /** `raw`: the event including its terminating blank line; `data`: its data lines joined, or null. */
  constructor(private readonly onEvent: (raw: string, data: string | null) => void) {}

  push(chunk: Buffer): void {
    this.buffer += this.decoder.write(chunk);
    for (let m = BOUNDARY.exec(this.buffer); m !== null; m = BOUNDARY.exec(this.buffer)) {
      const end = m.index + m[0].length;
      const raw = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end);
      this.onEvent(raw, dataOf(raw.slice(0, m.index)));
    }
  }

  /** What is left unterminated at the end of the stream, as it was. */
  end(): string {
    const rest = this.buffer + this.decoder.end();
    this.buffer = '';
    return rest;
  }
}

function dataOf(block: string): string | null {
  const data: string[] = [];
  for (const line of block.split(/\r\n|\n|\r/)) {
    if (line === 'data' || line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  return data.length === 0 ? null : data.join('\n');
}

/** The same event with its data replaced (one `data:` line), its other fields and line ending kept. */
export function replaceData(raw: string, data: string): string {
  const eol = raw.includes('\r\n') ? '\r\n' : raw.includes('\r') && !raw.includes('\n') ? '\r' : '\n';
  const lines = raw.split(/\r\n|\n|\r/).filter((l) => l !== '');
  const kept = lines.filter((l) => !(l === 'data' || l.startsWith('data:')));
  return [...kept, `data: ${data}`].join(eol) + eol + eol;
}
