/**
 * The one PostgreSQL session of a node that LISTENs for the other nodes' signals. It must outlive
 * any restart of the database: a listener that gave up after one retry left every node serving
 * revoked keys and lifted kill switches from its caches, and long polls waiting for decisions made
 * elsewhere, with /healthz still 200. So it reconnects forever (capped exponential backoff with
 * jitter), re-issues LISTEN every `livenessMs` to find a connection that died without a word (a
 * cut network never sends the FATAL an immediate shutdown does), and reports each loss and each
 * recovery, so the store can tell its caches to stop trusting signals and, once back, to re-read
 * what they missed.
 */
import pg from 'pg';

export interface ListenerOptions {
  /** How often the live connection proves itself (and how long that proof may take). */
  livenessMs: number;
  /** First reconnect delay; doubles per failed attempt up to `maxBackoffMs`. */
  minBackoffMs: number;
  maxBackoffMs: number;
  connectTimeoutMs: number;
}

export const DEFAULT_LISTENER_OPTIONS: ListenerOptions = { livenessMs: 2_000, minBackoffMs: 100, maxBackoffMs: 1_000, connectTimeoutMs: 5_000 };

export interface ListenerState {
  /** Whether notifications from other nodes reach this node now. */
  listening: boolean;
  /** When the current state began (ms since the epoch). */
  since: number;
  /** Connections re-established after a loss, since the node started. */
  reconnects: number;
  /** Why the last connection was lost or the last attempt failed. */
  lastError: string | null;
}

export interface ListenerEvents {
  notification(payload: string): void;
  /** The connection was lost: signals from other nodes may be missed until `restored`. */
  lost(): void;
  /** Listening again after a loss: anything may have changed meanwhile. */
  restored(): void;
}

export class PgListener {
  private state: ListenerState = { listening: false, since: Date.now(), reconnects: 0, lastError: null };
  private closed = false;
  private running: Promise<void> | undefined;
  private wakeBackoff: (() => void) | undefined;
  private breakCurrent: ((reason: string) => void) | undefined;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly events: ListenerEvents,
    private readonly options: ListenerOptions = DEFAULT_LISTENER_OPTIONS,
  ) {}

  get status(): ListenerState {
    return { ...this.state };
  }

  /** Connects and listens; rejects if the first connection fails (the node cannot start then). */
  async start(): Promise<void> {
    if (this.running !== undefined) return;
    const first = await this.connect();
    this.state = { ...this.state, listening: true, since: Date.now() };
    this.running = this.run(first);
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: this.options.connectTimeoutMs,
      keepAlive: true,
      application_name: 'panopticon-listener',
    });
    // Errors are handled through `broken` below; without a listener one would crash the process.
    client.on('error', () => {});
    client.on('notification', (msg) => {
      if (msg.channel === this.channel && msg.payload !== undefined) this.events.notification(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
      return client;
    } catch (err) {
      discard(client);
      throw err;
    }
  }

  private async run(first: pg.Client): Promise<void> {
    let client: pg.Client | undefined = first;
    let attempt = 0;
    while (!this.closed) {
      if (client !== undefined) {
        const reason = await this.untilBroken(client);
        discard(client);
        client = undefined;
        if (this.closed) break;
        this.state = { ...this.state, listening: false, since: Date.now(), lastError: reason };
        this.events.lost();
        attempt = 0;
      }
      await this.backoff(attempt++);
      if (this.closed) break;
      try {
        client = await this.connect();
        if (this.closed) {
          await client.end().catch(() => {});
          break;
        }
        this.state = { ...this.state, listening: true, since: Date.now(), reconnects: this.state.reconnects + 1 };
        this.events.restored();
      } catch (err) {
        this.state.lastError = err instanceof Error ? err.message : String(err);
      }
    }
  }

  /** Resolves with why the connection stopped being usable: an error, its end, or a failed proof. */
  private untilBroken(client: pg.Client): Promise<string> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (reason: string) => {
        if (done) return;
        done = true;
        clearInterval(timer);
        this.breakCurrent = undefined;
        client.off('error', onError);
        client.off('end', onEnd);
        resolve(reason);
      };
      const onError = (err: Error) => finish(err.message);
      const onEnd = () => finish('connection ended');
      client.on('error', onError);
      client.on('end', onEnd);
      this.breakCurrent = finish;
      let proving = false;
      const timer = setInterval(() => {
        if (proving) return finish(`no answer to LISTEN within ${this.options.livenessMs} ms`);
        proving = true;
        // LISTEN again rather than SELECT 1: a no-op on a live session, and pg_stat_activity keeps
        // showing this session as the listener.
        client.query(`LISTEN "${this.channel}"`).then(
          () => {
            proving = false;
          },
          (err: unknown) => finish(err instanceof Error ? err.message : String(err)),
        );
      }, this.options.livenessMs);
      timer.unref();
      if (this.closed) finish('closed');
    });
  }

  private backoff(attempt: number): Promise<void> {
    const cap = Math.min(this.options.maxBackoffMs, this.options.minBackoffMs * 2 ** Math.min(attempt, 20));
    // Jitter on the upper half: nodes that lost the database together do not reconnect in step.
    const delay = cap / 2 + Math.random() * (cap / 2);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      this.wakeBackoff = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      this.wakeBackoff = undefined;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakeBackoff?.();
    this.breakCurrent?.('closed');
    await this.running;
  }
}

/**
 * Lets go of a connection without waiting on it: `end()` waits for the server to close the
 * socket, which a backend that stopped answering never does, so the socket is destroyed too.
 */
function discard(client: pg.Client): void {
  client.end().catch(() => {});
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
