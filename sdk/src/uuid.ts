/**
 * UUIDv7 (RFC 9562): a 48-bit Unix millisecond timestamp, then a 12-bit counter, then 62 random
 * bits. Ids made one after another sort in the order they were made, so the server's unique index
 * on (client_id, event_id) grows at its end instead of at a random leaf per trace: with random (v4)
 * ids nearly every insert dirties a page of its own, which is what bounds ingest throughput.
 *
 * Monotonic within this process: several ids in one millisecond count up in the 12-bit field (it
 * starts at a random value in its lower half), and past 4,096 the timestamp field moves on a
 * millisecond early rather than repeat or go backwards, as RFC 9562 §6.2 allows.
 */
import crypto from 'node:crypto';

let lastMs = -1;
let counter = 0;

// Random bytes for 256 ids at a time: one randomFillSync per 256 ids instead of one call per id
// (a batch of 100 traces makes 100 ids).
const pool = Buffer.alloc(16 * 256);
let poolOffset = pool.length;

export function uuidv7(now: number = Date.now()): string {
  if (poolOffset >= pool.length) {
    crypto.randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  if (now > lastMs) {
    lastMs = now;
    counter = ((bytes[6]! & 0x07) << 8) | bytes[7]!;
  } else if (++counter > 0xfff) {
    lastMs++;
    counter = 0;
  }
  const ms = lastMs;
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff;
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff;
  bytes[2] = (ms >>> 24) & 0xff;
  bytes[3] = (ms >>> 16) & 0xff;
  bytes[4] = (ms >>> 8) & 0xff;
  bytes[5] = ms & 0xff;
  bytes[6] = 0x70 | (counter >>> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
