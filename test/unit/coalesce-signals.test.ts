/** coalesceSignals: the traces_committed signal under load — first at once, then one per window. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { coalesceSignals } from '../../src/http/services.js';
import { sleep } from '../support/wait.js';


describe('coalesceSignals', () => {
  it('sends the first signal at once, merges what follows within the window into one, and sends it when the window ends', async () => {
    const sent: string[][] = [];
    const signal = coalesceSignals((ids) => sent.push([...ids].sort()), 40);
    signal(new Set(['a']));
    assert.deepEqual(sent, [['a']], 'no wait when idle');
    signal(new Set(['b']));
    signal(new Set(['c', 'b']));
    signal(new Set(['a']));
    assert.equal(sent.length, 1, 'held inside the window');
    await sleep(70);
    assert.deepEqual(sent, [['a'], ['a', 'b', 'c']], 'one merged signal at the end of the window');
    await sleep(100);
    assert.equal(sent.length, 2, 'an empty window sends nothing');
    signal(new Set(['d']));
    assert.deepEqual(sent[2], ['d'], 'idle again: at once');
    signal.flush();
  });

  it('flush sends what is held without waiting (shutdown), and nothing when nothing is held', () => {
    const sent: string[][] = [];
    const signal = coalesceSignals((ids) => sent.push([...ids]), 10_000);
    signal(new Set(['a']));
    signal(new Set(['b']));
    signal.flush();
    assert.deepEqual(sent, [['a'], ['b']]);
    signal.flush();
    assert.equal(sent.length, 2);
  });
});
