/**
 * The group commit core (group-commit.ts) on its own, against a commit function the test answers
 * by hand: nothing is timed, each step waits for the commit call it expects.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit, takeBatch, type BatchSource } from '../../src/store/group-commit.js';
import { StoreUnavailableError } from '../../src/store/errors.js';

interface Call<T, R> {
  items: T[];
  answer(results: R[]): void;
  fail(err: unknown): void;
}

/** A commit function whose calls wait until the test answers them. */
function manualCommit<T, R>() {
  const calls: Array<Call<T, R>> = [];
  let waiters: Array<() => void> = [];
  const commit = (items: T[]) =>
    new Promise<R[]>((resolve, reject) => {
      calls.push({ items, answer: resolve, fail: reject });
      for (const w of waiters.splice(0)) w();
    });
  /** The n-th call (1-based), once it was made. */
  const call = async (n: number): Promise<Call<T, R>> => {
    while (calls.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    return calls[n - 1]!;
  };
  return { commit, calls, call };
}

/** Lets every setImmediate already scheduled (a commit about to start) run, then the promises they settle. */
const turns = async (n = 3) => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

/** Settles to its value or error, so a test can look at promises it does not await yet. */
function settled<T>(p: Promise<T>) {
  const state: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (value) => Object.assign(state, { done: true, value }),
    (error: unknown) => Object.assign(state, { done: true, error }),
  );
  return state;
}

describe('group commit', () => {
  it('items written together ride one commit, in order, and each gets its own result', async () => {
    const c = manualCommit<string, string>();
    const gc = new GroupCommit(c.commit, { maxBatch: 10 });
    const answers = Promise.all(['a', 'b', 'c'].map((item) => gc.write(item)));
    const first = await c.call(1);
    assert.deepEqual(first.items, ['a', 'b', 'c']);
    first.answer(['A', 'B', 'C']);
    assert.deepEqual(await answers, ['A', 'B', 'C']);
    assert.equal(c.calls.length, 1);
  });

  it('an item is answered only after its commit returned; items queued meanwhile ride the next commit', async () => {
    const c = manualCommit<number, number>();
    const gc = new GroupCommit(c.commit, { maxBatch: 10 });
    const one = settled(gc.write(1));
    const first = await c.call(1);
    const later = [settled(gc.write(2)), settled(gc.write(3))];
    await turns();
    assert.equal(one.done, false, 'not answered before its commit returned');
    assert.equal(c.calls.length, 1, 'one commit in flight at a time');
    first.answer([10]);
    const second = await c.call(2);
    assert.equal(one.value, 10);
    assert.deepEqual(second.items, [2, 3]);
    assert.ok(later.every((s) => !s.done));
    second.answer([20, 30]);
    await turns();
    assert.deepEqual(later.map((s) => s.value), [20, 30]);
  });

  it('a commit takes whole items up to the bound, in order; an item heavier than the bound commits alone, unsplit', async () => {
    const c = manualCommit<number[], number>();
    const gc = new GroupCommit(c.commit, { maxBatch: 5, weight: (rows) => rows.length, maxInFlight: 1 });
    const items = [[1, 2], [3, 4], [5, 6], [7, 8, 9, 10, 11, 12, 13], [14], [15]];
    const answers = Promise.all(items.map((item) => gc.write(item)));
    const seen: number[][][] = [];
    for (let n = 1; n <= 4; n++) {
      const call = await c.call(n);
      seen.push(call.items);
      call.answer(call.items.map((rows) => rows.length));
    }
    // 2+2 fit in 5, the third pair does not; 2 + 7 does not; the 7 goes alone; 1+1 after it.
    assert.deepEqual(seen, [[[1, 2], [3, 4]], [[5, 6]], [[7, 8, 9, 10, 11, 12, 13]], [[14], [15]]]);
    assert.deepEqual(await answers, [2, 2, 2, 7, 1, 1]);
  });

  it('runs at most maxInFlight commits at once', async () => {
    const c = manualCommit<number, number>();
    const gc = new GroupCommit(c.commit, { maxBatch: 1, maxInFlight: 2 });
    const answers = Promise.all([1, 2, 3, 4].map((i) => gc.write(i)));
    const [first, second] = [await c.call(1), await c.call(2)];
    await turns();
    assert.equal(c.calls.length, 2, 'a third commit waits for a free slot');
    second.answer([2]);
    const third = await c.call(3);
    assert.deepEqual(third.items, [3]);
    await turns();
    assert.equal(c.calls.length, 3);
    first.answer([1]);
    third.answer([3]);
    (await c.call(4)).answer([4]);
    assert.deepEqual(await answers, [1, 2, 3, 4]);
  });

  it("a failing commit fails every item in it with the commit's own error, and only those", async () => {
    const c = manualCommit<string, string>();
    const gc = new GroupCommit(c.commit, { maxBatch: 2 });
    const results = ['a', 'b', 'c'].map((item) => gc.write(item).then((v) => v, (err: unknown) => err));
    const boom = new Error('disk on fire');
    (await c.call(1)).fail(boom);
    const second = await c.call(2);
    assert.deepEqual(second.items, ['c']);
    second.answer(['C']);
    const [a, b, cResult] = await Promise.all(results);
    assert.equal(a, boom);
    assert.equal(b, boom);
    assert.equal(cResult, 'C');
  });

  it('refuses at once with StoreUnavailableError past maxQueued waiting weight, and takes writes again once the queue moved', async () => {
    const c = manualCommit<number[], number>();
    const gc = new GroupCommit(c.commit, { maxBatch: 4, maxQueued: 6, weight: (rows) => rows.length });
    const first = gc.write([1, 2, 3, 4]);
    const call1 = await c.call(1);
    // In flight no longer counts as waiting: 6 rows may wait behind it, not 7.
    const waiting = [gc.write([5, 6, 7]), gc.write([8, 9, 10])];
    await assert.rejects(gc.write([11]), (err: unknown) => err instanceof StoreUnavailableError && /queue full/.test(err.message));
    call1.answer([4]);
    assert.equal(await first, 4);
    const call2 = await c.call(2);
    assert.deepEqual(call2.items, [[5, 6, 7]]);
    const after = gc.write([11]);
    call2.answer([3]);
    const call3 = await c.call(3);
    assert.deepEqual(call3.items, [[8, 9, 10], [11]]);
    call3.answer([3, 1]);
    assert.deepEqual(await Promise.all([...waiting, after]), [3, 3, 1]);
  });

  it('drain waits for queued and in-flight items, those written while draining included; close then refuses new writes', async () => {
    const c = manualCommit<number, number>();
    const gc = new GroupCommit(c.commit, { maxBatch: 1 });
    await gc.drain();
    const one = settled(gc.write(1));
    const two = settled(gc.write(2));
    const closed = settled(gc.close());
    (await c.call(1)).answer([1]);
    const three = settled(gc.write(3));
    (await c.call(2)).answer([2]);
    await turns();
    assert.equal(closed.done, false, 'item 3 still waits');
    (await c.call(3)).answer([3]);
    await turns();
    assert.deepEqual([one.value, two.value, three.value], [1, 2, 3]);
    assert.equal(closed.done, true);
    await assert.rejects(gc.write(4), StoreUnavailableError);
    assert.equal(c.calls.length, 3);
  });
});

describe('takeBatch', () => {
  /** A queue as the SQLite worker's port is one: look at the next item, then take it. */
  function source<T>(items: T[]): BatchSource<T> {
    return { peek: () => items[0], shift: () => items.shift()! };
  }

  it('takes the first item whatever its weight, then whole items while they fit, and leaves the rest in order', () => {
    const items = [9, 1, 1, 3, 2];
    const from = source(items);
    assert.deepEqual(takeBatch(from, (n) => n, 4), [9]);
    assert.deepEqual(takeBatch(from, (n) => n, 4), [1, 1]);
    assert.deepEqual(takeBatch(from, (n) => n, 4), [3]);
    assert.deepEqual(takeBatch(from, (n) => n, 4), [2]);
    assert.deepEqual(takeBatch(from, (n) => n, 4), []);
  });
});
