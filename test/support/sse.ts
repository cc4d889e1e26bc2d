/**
 * A Server-Sent Events reader on fetch for tests: events arrive in a queue the test waits on.
 * Unlike EventSource it shows the status of a refused stream and never reconnects by itself.
 */
export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

/** A Server-Sent Events reader on fetch: events arrive in a queue the test waits on. */
export class SseClient {
  readonly events: SseEvent[] = [];
  status = 0;
  contentType = '';
  ended = false;
  private waiters: Array<() => void> = [];
  private readonly controller = new AbortController();

  static async open(url: string, headers: Record<string, string>): Promise<SseClient> {
    const client = new SseClient();
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: client.controller.signal });
    client.status = res.status;
    client.contentType = res.headers.get('content-type') ?? '';
    if (res.status !== 200) {
      client.events.push({ id: null, event: 'http-error', data: await res.text() });
      client.ended = true;
      return client;
    }
    void client.pump(res.body!);
    return client;
  }

  private async pump(body: ReadableStream<Uint8Array>) {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const ev: SseEvent = { id: null, event: 'message', data: '' };
          let isComment = true;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            isComment = false;
            const [field, ...rest] = line.split(':');
            const value = rest.join(':').replace(/^ /, '');
            if (field === 'id') ev.id = value;
            else if (field === 'event') ev.event = value;
            else if (field === 'data') ev.data += value;
          }
          if (!isComment && ev.event !== 'message') this.events.push(ev);
          this.wake();
        }
      }
    } catch {
      /* aborted */
    }
    this.ended = true;
    this.wake();
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  traces(): Array<{ seq: number; event_id: string; tool: string; status: string }> {
    return this.events.filter((e) => e.event === 'trace').map((e) => JSON.parse(e.data));
  }

  lastId(): string | null {
    return this.events.at(-1)?.id ?? null;
  }

  /** Waits until `predicate` holds, failing after `ms`. */
  async until(predicate: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}; events: ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close() {
    this.controller.abort();
  }
}
