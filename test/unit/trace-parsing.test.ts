/** The pure steps of ingestion: timestamp parsing against the RFC 3339 grammar it implements, and its accepted range. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatMicros, parseRfc3339Micros, parseTimestampMicros, timestampProblem, utcDay } from '../../src/traces/ingest.js';

// The grammar as one regex: the reference the hand-written parser must agree with.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|([+-])(\d{2}):(\d{2}))$/;
const LATEST_US = Date.UTC(2200, 0, 1) * 1000 - 1;

/**
 * The reference: Date with setUTCFullYear (Date.UTC reads years 0-99 as 19xx), a real calendar
 * date and time (nothing may roll over), an offset under 24 h, then the accepted range.
 */
function unbounded(text: string): number | null {
  const m = RFC3339.exec(text);
  if (m === null) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const [frac, , sign, oh, om] = m.slice(7);
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  const same = date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && date.getUTCHours() === h && date.getUTCMinutes() === mi && date.getUTCSeconds() === s;
  if (!same) return null;
  let ms = date.getTime();
  if (sign !== undefined) {
    if (Number(oh) > 23 || Number(om) > 59) return null;
    ms -= (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000;
  }
  const micros = frac === undefined ? 0 : Number(frac.slice(0, 6).padEnd(6, '0'));
  return ms * 1000 + micros;
}

function reference(text: string): number | null {
  const us = unbounded(text);
  return us === null || us < 0 || us > LATEST_US ? null : us;
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
    '9999-12-31T23:59:59.999999Z',
    '0026-05-09T10:11:12Z',
    '0000-01-01T00:00:00Z',
    '0099-12-31T23:59:59Z',
    '1970-01-01T00:00:00Z',
    '1970-01-01T00:30:00+01:00',
    '1969-12-31T23:30:00-01:00',
    '2199-12-31T23:59:59.999999Z',
    '2199-12-31T23:59:59.9999999Z',
    '2199-12-31T23:30:00-01:00',
    '2200-01-01T00:30:00+01:00',
    '2200-01-01T00:00:00Z',
    '2024-02-29T12:00:00Z',
    '2023-02-29T12:00:00Z',
    '2100-02-29T12:00:00Z',
    '2000-02-29T12:00:00Z',
    '2026-04-31T12:00:00Z',
    '2026-00-10T12:00:00Z',
    '2026-13-10T12:00:00Z',
    '2026-05-00T12:00:00Z',
    '2026-05-09T24:00:00Z',
    '2026-05-09T10:60:00Z',
    '2016-12-31T23:59:60Z',
    '2026-05-09T10:11:12+24:00',
    '2026-05-09T10:11:12+23:59',
    '2026-05-09T10:11:12-00:60',
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
      // Mostly inside the accepted years, some on either side and across 0000-9999; days up to 31
      // and hours, seconds and offsets one past their end, so impossible values come up too.
      const year = rand(4) === 0 ? rand(10_000) : 1965 + rand(240);
      let text = `${pad(year, 4)}-${pad(1 + rand(12), 2)}-${pad(1 + rand(31), 2)}T${pad(rand(25), 2)}:${pad(rand(61), 2)}:${pad(rand(61), 2)}`;
      if (rand(2)) text += `.${String(rand(10 ** (1 + rand(9))))}`;
      text += rand(3) === 0 ? 'Z' : `${rand(2) ? '+' : '-'}${pad(rand(25), 2)}:${pad(rand(61), 2)}`;
      if (rand(4) === 0) {
        const at = rand(text.length);
        text = text.slice(0, at) + String.fromCharCode(32 + rand(90)) + text.slice(at + 1);
      }
      assert.equal(parseTimestampMicros(text), reference(text), text);
      assert.equal(parseRfc3339Micros(text), unbounded(text), text);
    }
  });

  it('explains a refusal: the grammar, or the accepted range', () => {
    assert.match(timestampProblem('2026-02-30T10:11:12Z'), /RFC 3339/);
    assert.match(timestampProblem('0026-05-09T10:11:12Z'), /between 1970-01-01T00:00:00Z and 2199-12-31T23:59:59.999999Z/);
    assert.match(timestampProblem('9999-12-31T23:59:59.999999Z'), /between/);
  });

  it('reads back what it parsed: every accepted instant formats to a text that parses to it again', () => {
    let seed = 11;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const samples = [0, 1, LATEST_US, LATEST_US - 1, Date.UTC(2026, 4, 9) * 1000];
    for (let i = 0; i < 5000; i++) samples.push(Math.floor(rand() * rand() * LATEST_US));
    for (const us of samples) {
      const text = formatMicros(us);
      assert.equal(parseTimestampMicros(text), us, text);
      assert.equal(text.slice(0, 10), utcDay(us));
    }
  });

  it('round-trips through formatMicros', () => {
    for (const text of ['2026-05-09T10:11:12.345Z', '2026-05-09T10:11:12.345678Z', '2026-05-09T10:11:12.000Z']) {
      assert.equal(formatMicros(parseTimestampMicros(text)!), text);
    }
  });
});
