import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../support/locations.js';
import { KEY_FILE_NAME, loadServerKey, SecretBox } from '../../src/crypto/secret-box.js';

describe('secret box', () => {
  const box = new SecretBox(Buffer.alloc(32, 1));

  it('round-trips, with a fresh nonce each time', () => {
    const a = box.seal('pano_sec_abc', 'logi_000000000001');
    const b = box.seal('pano_sec_abc', 'logi_000000000001');
    assert.notEqual(a, b);
    assert.ok(!a.includes('pano_sec_abc'));
    assert.equal(box.open(a, 'logi_000000000001'), 'pano_sec_abc');
  });

  it('refuses another context, another key, and a changed byte', () => {
    const sealed = box.seal('secret', 'logi_000000000001');
    assert.throws(() => box.open(sealed, 'logi_000000000002'));
    assert.throws(() => new SecretBox(Buffer.alloc(32, 2)).open(sealed, 'logi_000000000001'));
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[2]!, 'base64url');
    ct[0] = ct[0]! ^ 1;
    parts[2] = ct.toString('base64url');
    assert.throws(() => box.open(parts.join('.'), 'logi_000000000001'));
  });

  it('generates a 0600 key file once and reuses it', () => {
    const dir = tempDir('key');
    const first = loadServerKey(undefined, dir);
    const second = loadServerKey(undefined, dir);
    assert.deepEqual(first, second);
    assert.equal(fs.statSync(path.join(dir, KEY_FILE_NAME)).mode & 0o777, 0o600);
    const configured = Buffer.alloc(32, 9);
    assert.equal(loadServerKey(configured, dir), configured);
    fs.rmSync(dir, { recursive: true });
  });
});
