import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decoyHash, hashPassword, verifyPassword } from '../../src/accounts/passwords.js';
import { OWASP_SCRYPT_N } from '../../src/config.js';

describe('password hashes', () => {
  it("default to OWASP's scrypt cost, and record the cost they were made with", async () => {
    assert.match(await hashPassword('correct horse battery staple'), new RegExp(`^scrypt\\$${OWASP_SCRYPT_N}\\$8\\$1\\$`));
    assert.match(await hashPassword('correct horse battery staple', 2 ** 14), /^scrypt\$16384\$8\$1\$/);
  });

  it('verify at the cost each hash records, whatever the cost new hashes use now', async () => {
    const cheap = await hashPassword('correct horse battery staple', 2 ** 14);
    assert.equal(await verifyPassword('correct horse battery staple', cheap), true);
    assert.equal(await verifyPassword('correct horse battery stapler', cheap), false);
    assert.equal(await verifyPassword('anything', 'plaintext'), false);
  });

  it('make the decoy for unknown emails at the same cost as real hashes', async () => {
    assert.match(await decoyHash(2 ** 14), /^scrypt\$16384\$/);
    assert.match(await decoyHash(), new RegExp(`^scrypt\\$${OWASP_SCRYPT_N}\\$`));
  });
});
