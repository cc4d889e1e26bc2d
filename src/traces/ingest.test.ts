/** The pure steps of ingestion: timestamp parsing against the RFC 3339 grammar it implements. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatMicros, parseTimestampMicros } from './ingest.js';

// The grammar as one regex: the reference the hand-written parser must agree with.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|([+-])(\d{2}):(\d{2}))$/;

function reference(text: string): number | null {
  const m = RFC3339.exec(text);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (sign !== undefined) ms -= (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000;
  const micros = frac === undefined ? 0 : Number(frac.slice(0, 6).padEnd(6, '0'));
  return ms * 1000 + micros;
}

describe('parseTimestampMicros', () => {
  const cases = [
    '2026-05-09T10:11:12Z',
    '2026-05-09T10:11:12.345Z',
    '2026-05-09t10:11:12.345z',
    '2026-05-09 10:11:12.1+02:00',
    '2026-05-09T12:11:12.123456+02:00',
    '2026-05-09T12:11:12.1234567891-11:30',
    '1970-01-01T00:00:00.000001Z',
    '1969-12-31T23:59:59.999999Z',
    '9999-12-31T23:59:59.999999+00:00',
    '2026-05-09T10:11:12',
    '2026-05-09T10:11:12.Z',
    '2026-05-09T10:11:12.5',
    '2026-05-09T10:11:12+0200',
    '2026-05-09T10:11:12+02:00Z',
    '2026-05-09T10:11:12Z ',
    ' 2026-05-09T10:11:12Z',
    '2026-5-09T10:11:12Z',
    '2026-05-09X10:11:12Z',
    '2026-05-09T10-11-12Z',
    '2026-05-09T10:11:1aZ',
    '2026-05-09T10:11:12.12a4Z',
    '2026-05-09T10:11:12+02:0x',
    '2026-05-09T10:11:12.000+1:00',
    '',
    'not a date',
  ];
  for (const text of cases) {
    it(`agrees with the grammar on ${JSON.stringify(text)}`, () => {
      assert.equal(parseTimestampMicros(text), reference(text));
    });
  }

  it('agrees with the grammar on random well-formed and mangled timestamps', () => {
    const pad = (v: number, w: number) => String(v).padStart(w, '0');
    let seed = 7;
    const rand = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % k);
    for (let i = 0; i < 5000; i++) {
      let text = `${pad(1900 + rand(200), 4)}-${pad(1 + rand(12), 2)}-${pad(1 + rand(28), 2)}T${pad(rand(24), 2)}:${pad(rand(60), 2)}:${pad(rand(60), 2)}`;
      if (rand(2)) text += `.${String(rand(10 ** (1 + rand(9))))}`;
      text += rand(3) === 0 ? 'Z' : `${rand(2) ? '+' : '-'}${pad(rand(15), 2)}:${pad(rand(60), 2)}`;
      if (rand(4) === 0) {
        const at = rand(text.length);
        text = text.slice(0, at) + String.fromCharCode(32 + rand(90)) + text.slice(at + 1);
      }
      assert.equal(parseTimestampMicros(text), reference(text), text);
    }
  });

  it('round-trips through formatMicros', () => {
    for (const text of ['2026-05-09T10:11:12.345Z', '2026-05-09T10:11:12.345678Z', '2026-05-09T10:11:12.000Z']) {
      assert.equal(formatMicros(parseTimestampMicros(text)!), text);
    }
  });
});
