/** Which addresses a webhook may reach by default, and the lookup that enforces it at connect time. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPrivateAddress, PrivateAddressError, privateUrlProblem, publicOnlyLookup } from '../../src/webhooks/address.js';

describe('webhook address rules', () => {
  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true], ['127.255.0.9', true], ['10.1.2.3', true], ['172.16.0.1', true], ['172.31.255.255', true],
    ['192.168.1.1', true], ['169.254.169.254', true], ['100.64.0.1', true], ['0.0.0.0', true], ['224.0.0.1', true],
    ['255.255.255.255', true], ['::1', true], ['::', true], ['fe80::1', true], ['fd12:3456::1', true], ['ff02::1', true],
    ['::ffff:127.0.0.1', true], ['::ffff:7f00:1', true], ['::ffff:10.0.0.1', true], ['64:ff9b::a00:1', true],
    ['8.8.8.8', false], ['172.32.0.1', false], ['192.169.0.1', false], ['93.184.216.34', false], ['2606:4700::1111', false],
    ['::ffff:8.8.8.8', false], ['not an ip', true],
    // IPv4 inside IPv6: the IPv4 rules decide, whatever the spelling the URL parser leaves
    ['::127.0.0.1', true], ['::7f00:1', true], ['::10.0.0.1', true], ['::ffff:0:127.0.0.1', true], ['::8.8.8.8', false],
    ['64:ff9b::127.0.0.1', true], ['64:ff9b::7f00:1', true], ['64:ff9b::a9fe:a9fe', true], ['64:ff9b::8.8.8.8', false],
    ['64:ff9b:1::7f00:1', true], ['64:ff9b:1:7f00:0:100::', true], ['64:ff9b:1:ffff:ff00:7f00:1:0', true], ['64:ff9b:1:808:8:800:808:808', false],
    ['2002:7f00:1::', true], ['2002:a00:1::1', true], ['2002:a9fe:a9fe::', true], ['2002:c0a8:101::5', true], ['2002:808:808::1', false],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', true], ['2001:0:7f00:1::', true], ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', false],
    ['fec0::1', true], ['100::1', true],
  ];
  for (const [address, expected] of cases) {
    it(`${address} is ${expected ? 'refused' : 'allowed'}`, () => assert.equal(isPrivateAddress(address), expected));
  }

  it('refuses URLs naming a private IP literal or localhost; the URL parser normalises 127.1 and 0x7f000001 first', () => {
    for (const url of [
      'http://127.0.0.1:9/x', 'http://127.1/', 'http://0x7f000001/', 'http://[::1]:8080/', 'http://169.254.169.254/latest', 'http://localhost:3000/', 'https://api.localhost/',
      'http://[::127.0.0.1]/', 'http://[64:ff9b::127.0.0.1]/', 'http://[64:ff9b:1::10.0.0.1]/', 'http://[2002:7f00:1::]/', 'http://[2002:a9fe:a9fe::]/latest',
      'http://localhost./', 'http://LOCALHOST../', 'http://api.localhost./', 'http://127.0.0.1./',
    ]) {
      assert.notEqual(privateUrlProblem(new URL(url)), null, url);
    }
    for (const url of ['https://hooks.slack.com/services/x', 'http://8.8.8.8/', 'https://example.com:8443/hook', 'https://example.com./hook', 'http://[64:ff9b::8.8.8.8]/', 'http://[2002:808:808::1]/']) {
      assert.equal(privateUrlProblem(new URL(url)), null, url);
    }
  });

  it('the connect-time lookup refuses a name that resolves to loopback, in both callback forms', async () => {
    for (const all of [false, true]) {
      const err = await new Promise<unknown>((resolve) => publicOnlyLookup('localhost', { all }, (e) => resolve(e)));
      assert.ok(err instanceof PrivateAddressError, String(err));
      assert.match((err as Error).message, /localhost resolves to .*private or loopback/);
    }
  });
});
