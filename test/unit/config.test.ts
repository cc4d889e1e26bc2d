/** The server's configuration from the environment: defaults, and a bad value named with what it may be. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadServerConfig, OWASP_SCRYPT_N } from '../../src/config.js';

describe('PANOPTICON_PASSWORD_SCRYPT_N', () => {
  it("defaults to OWASP's scrypt cost, 2^17", () => {
    assert.equal(OWASP_SCRYPT_N, 131072);
    assert.equal(loadServerConfig({}).passwordScryptN, 131072);
    assert.equal(loadServerConfig({ PANOPTICON_PASSWORD_SCRYPT_N: '' }).passwordScryptN, 131072);
  });

  it('takes a power of two from 2^14 to 2^20', () => {
    for (const n of [16384, 65536, 1048576]) assert.equal(loadServerConfig({ PANOPTICON_PASSWORD_SCRYPT_N: String(n) }).passwordScryptN, n);
  });

  it('refuses anything else, naming the variable', () => {
    for (const value of ['8192', '2097152', '100000', '16384.5', 'cheap', '-16384']) {
      assert.throws(() => loadServerConfig({ PANOPTICON_PASSWORD_SCRYPT_N: value }), (err: unknown) => err instanceof ConfigError && err.message.includes('PANOPTICON_PASSWORD_SCRYPT_N'), value);
    }
  });
});

describe('integer settings', () => {
  it('are read as plain decimal numbers only: "1e3", "0x10" and "2.5" are refused, not read as 1, 16 and 2', () => {
    assert.equal(loadServerConfig({ PANOPTICON_PAK_RATE_LIMIT: '1000', PORT: ' 8081 ' }).pakRateLimitPerSecond, 1000);
    assert.equal(loadServerConfig({ PORT: ' 8081 ' }).port, 8081);
    for (const [name, value] of [['PANOPTICON_PAK_RATE_LIMIT', '1e3'], ['PORT', '0x10'], ['PANOPTICON_LOCK_TIMEOUT_MS', '2.5'], ['PANOPTICON_PG_POOL', 'ten']]) {
      assert.throws(() => loadServerConfig({ [name!]: value }), (err: unknown) => err instanceof ConfigError && err.message.includes(name!) && err.message.includes(JSON.stringify(value)), `${name}=${value}`);
    }
  });
});
