/**
 * On-disk spool: traces not yet acknowledged survive a process restart.
 *
 * One append-only JSONL file. `{"e": WireTrace}` adds a trace; `{"d": [event_id, …]}` marks traces
 * done (acknowledged, rejected, or dropped from the bounded buffer). Appends are batched and written
 * asynchronously, so `trace()` never waits for the disk. When the file outgrows `maxBytes`, or
 * holds mostly finished records, it is rewritten (temp file + rename, atomic) with only the traces
 * still pending; the pending set is bounded by the in-memory buffer, so the file is too.
 *
 * One process per spool file: two writers would interleave and each resend the other's traces
 * (harmless for the server, which dedupes by event_id, but wasteful).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { WireTrace } from './types.js';

export interface SpoolLoad {
  pending: WireTrace[];
  /** Lines that could not be parsed (a torn last line after a crash). */
  corrupt: number;
}

export class Spool {
  private lines: string[] = [];
  private writing: Promise<void> = Promise.resolve();
  private scheduled = false;
  /** Records in the file (including ones still queued for it), and how many are finished. */
  private records = 0;
  private finished = 0;
  private bytes = 0;

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    /** The traces currently pending, for compaction. */
    private readonly snapshot: () => WireTrace[],
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Reads what a previous process left, then rewrites the file with just that. */
  load(): SpoolLoad {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    let text = '';
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const byId = new Map<string, WireTrace>();
    let corrupt = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        const rec = JSON.parse(line) as { e?: WireTrace; d?: string[] };
        if (rec.e !== undefined && typeof rec.e.event_id === 'string') byId.set(rec.e.event_id, rec.e);
        else if (Array.isArray(rec.d)) for (const id of rec.d) byId.delete(id);
        else corrupt++;
      } catch {
        corrupt++;
      }
    }
    const pending = [...byId.values()];
    this.rewrite(pending);
    return { pending, corrupt };
  }

  add(trace: WireTrace): void {
    this.push(JSON.stringify({ e: trace }));
  }

  done(eventIds: readonly string[]): void {
    if (eventIds.length === 0) return;
    this.finished += eventIds.length;
    this.push(JSON.stringify({ d: eventIds }));
  }

  /** Resolves once every record handed over so far is in the file. */
  async drain(): Promise<void> {
    while (this.scheduled || this.lines.length > 0) {
      this.writeNow();
      await this.writing;
    }
    await this.writing;
  }

  private push(line: string): void {
    this.lines.push(line);
    this.records++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.writeNow());
    }
  }

  private writeNow(): void {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const chunk = this.lines.join('\n') + '\n';
    this.lines = [];
    this.writing = this.writing.then(async () => {
      try {
        await fs.promises.appendFile(this.file, chunk);
        this.bytes += Buffer.byteLength(chunk);
        // Mostly finished records, or over the size bound: keep only what is pending.
        if (this.bytes > this.maxBytes || (this.records > 1000 && this.finished * 2 > this.records)) {
          this.rewrite(this.snapshot());
        }
      } catch (err) {
        this.onError(err);
      }
    });
  }

  /**
   * Synchronous so no append can slip between the snapshot and the rename; records queued but not
   * yet appended are already part of the snapshot, so they are dropped from the queue.
   */
  private rewrite(pending: WireTrace[]): void {
    const tmp = `${this.file}.tmp`;
    const text = pending.map((e) => JSON.stringify({ e })).join('\n') + (pending.length > 0 ? '\n' : '');
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, this.file);
    this.lines = [];
    this.records = pending.length;
    this.finished = 0;
    this.bytes = Buffer.byteLength(text);
  }
}
