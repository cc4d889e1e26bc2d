/** Waiting in tests for what happens on its own time (a delivery, a sweeper, another node). */

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a value (anything but undefined, null or false) and returns it; fails
 * naming `what` after `timeoutMs`. The timeout is a ceiling for a loaded machine, not an expected
 * time: a passing test returns as soon as the value is there.
 */
export async function eventually<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
