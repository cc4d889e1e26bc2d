import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SyncPipeline } from './sync-pipeline.js';

/** A pipeline whose fsyncs the test finishes by hand, recording what each made durable. */
function harness(maxSyncsInFlight = 1) {
  const syncs: Array<(err: Error | null) => void> = [];
  const durable: string[][] = [];
  const failed: Array<{ replies: string[]; err: Error }> = [];
  let idle = 0;
  const pipeline = new SyncPipeline<string>({
    sync: (done) => syncs.push(done),
    durable: (replies) => durable.push(replies),
    syncFailed: (replies, err) => failed.push({ replies, err }),
    maxSyncsInFlight,
    idle: () => idle++,
  });
  return { pipeline, syncs, durable, failed, idles: () => idle };
}

describe('SyncPipeline: a commit is answered only after an fsync that started after it', () => {
  it('answers nothing before the fsync ends', () => {
    const { pipeline, syncs, durable } = harness();
    pipeline.committed('a');
    assert.equal(syncs.length, 1);
    assert.deepEqual(durable, []);
    assert.equal(pipeline.busy, true);
    syncs[0]!(null);
    assert.deepEqual(durable, [['a']]);
    assert.equal(pipeline.busy, false);
  });

  it('a commit made while an fsync runs waits for the next fsync, not the running one', () => {
    const { pipeline, syncs, durable } = harness();
    pipeline.committed('a');
    pipeline.committed('b');
    pipeline.committed('c');
    // One fsync at a time: b and c were written after the first fsync began.
    assert.equal(syncs.length, 1);
    syncs[0]!(null);
    assert.deepEqual(durable, [['a']]);
    // b and c share the next one.
    assert.equal(syncs.length, 2);
    assert.equal(pipeline.busy, true);
    syncs[1]!(null);
    assert.deepEqual(durable, [['a'], ['b', 'c']]);
    assert.equal(syncs.length, 2);
    assert.equal(pipeline.busy, false);
  });

  it('starts a new fsync for a commit that arrives after the pipeline went idle', () => {
    const { pipeline, syncs, durable } = harness();
    pipeline.committed('a');
    syncs[0]!(null);
    pipeline.committed('b');
    assert.equal(syncs.length, 2);
    syncs[1]!(null);
    assert.deepEqual(durable, [['a'], ['b']]);
  });

  it('a failed fsync fails what it covered and what waits behind it, and nothing after it is ever called durable', () => {
    const { pipeline, syncs, durable, failed } = harness();
    pipeline.committed('a');
    pipeline.committed('b');
    const eio = Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    syncs[0]!(eio);
    assert.deepEqual(durable, []);
    assert.deepEqual(failed, [{ replies: ['a', 'b'], err: eio }]);
    // A retried fsync after a failure proves nothing (the kernel may have dropped the pages).
    pipeline.committed('c');
    assert.equal(syncs.length, 1);
    assert.deepEqual(failed[1], { replies: ['c'], err: eio });
    assert.equal(pipeline.busy, false);
  });

  it('with two fsyncs allowed, a commit made during the first starts its own at once', () => {
    const { pipeline, syncs, durable } = harness(2);
    pipeline.committed('a');
    pipeline.committed('b');
    assert.equal(syncs.length, 2);
    // A third waits: both slots are taken.
    pipeline.committed('c');
    assert.equal(syncs.length, 2);
    syncs[0]!(null);
    assert.deepEqual(durable, [['a']]);
    // The freed slot goes to c.
    assert.equal(syncs.length, 3);
    syncs[2]!(null);
    // c's fsync started after b's commit too, so it answers both, in commit order.
    assert.deepEqual(durable, [['a'], ['b', 'c']]);
    // b's own fsync, ending last, has nothing left to answer.
    syncs[1]!(null);
    assert.deepEqual(durable, [['a'], ['b', 'c']]);
    assert.equal(pipeline.busy, false);
  });

  it('a later fsync that ends first answers the earlier commits it covers, never one made after it started', () => {
    const { pipeline, syncs, durable } = harness(2);
    pipeline.committed('a');
    pipeline.committed('b');
    syncs[1]!(null);
    assert.deepEqual(durable, [['a', 'b']]);
    pipeline.committed('c');
    // One slot is free (b's ended): c gets its own fsync; a's still runs and must not answer c.
    assert.equal(syncs.length, 3);
    syncs[0]!(null);
    assert.deepEqual(durable, [['a', 'b']]);
    syncs[2]!(null);
    assert.deepEqual(durable, [['a', 'b'], ['c']]);
  });

  it('tells when the last fsync ended with nothing waiting, not before', () => {
    const { pipeline, syncs, idles } = harness(2);
    pipeline.committed('a');
    pipeline.committed('b');
    syncs[1]!(null);
    // a and b are answered, but a's fsync still runs on the descriptor.
    assert.equal(pipeline.busy, true);
    assert.equal(idles(), 0);
    syncs[0]!(null);
    assert.equal(pipeline.busy, false);
    assert.equal(idles(), 1);
  });
});
