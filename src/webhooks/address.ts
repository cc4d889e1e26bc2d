/**
 * Where webhooks may go. Any account can register a webhook URL, and the server (not the account)
 * makes the request: without a check, a tenant could aim it at the server's own network (the
 * database port, a cloud metadata endpoint at 169.254.169.254) and read the status codes back from
 * the delivery log. So by default a delivery may only reach public addresses; an install whose
 * receivers live on its own network opts in with PANOPTICON_WEBHOOK_ALLOW_PRIVATE=true.
 *
 * The check runs where the connection is made (a `lookup` hook on the request), on every address
 * the name resolves to, so a name that resolves to a public address at registration and to a
 * private one later (DNS rebinding) is refused too.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

const blocked = new net.BlockList();
for (const [prefix, bits] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(prefix, bits, 'ipv4');
}
for (const [prefix, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96], // NAT64: an IPv4 address inside
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(prefix, bits, 'ipv6');
}

/** True for loopback, private, link-local, multicast and other non-public addresses. */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family !== 6) return true;
  // ::ffff:a.b.c.d (and its hex form) is the IPv4 address a.b.c.d.
  const mapped = /^::ffff:(?:0:)?(.+)$/i.exec(address)?.[1];
  if (mapped !== undefined) {
    if (net.isIPv4(mapped)) return blocked.check(mapped, 'ipv4');
    const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(mapped);
    if (hex !== null) {
      const v = (parseInt(hex[1]!, 16) << 16) | parseInt(hex[2]!, 16);
      return blocked.check([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.'), 'ipv4');
    }
  }
  return blocked.check(address, 'ipv6');
}

export class PrivateAddressError extends Error {
  readonly code = 'EPRIVATEADDR';
  constructor(host: string, address: string) {
    super(`${host} resolves to ${address}, a private or loopback address; webhooks may not reach those unless PANOPTICON_WEBHOOK_ALLOW_PRIVATE=true`);
  }
}

/** The URL's host without the brackets of an IPv6 literal. */
function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

/** Why this URL may not be registered (an IP literal or a name that is local by definition), or null. */
export function privateUrlProblem(url: URL): string | null {
  const host = bareHost(url);
  if (net.isIP(host) !== 0 ? isPrivateAddress(host) : host === 'localhost' || host.endsWith('.localhost')) {
    return 'must not point at a private or loopback address (an operator can allow them with PANOPTICON_WEBHOOK_ALLOW_PRIVATE=true)';
  }
  return null;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** A `lookup` for http.request that refuses names resolving to a private address. */
export function publicOnlyLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad !== undefined) return callback(new PrivateAddressError(hostname, bad.address), []);
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    if (first === undefined) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}

/**
 * POSTs a delivery and resolves with the status code (the body is discarded). Redirects are not
 * followed: the signature covers this URL only. Private addresses are refused unless allowed,
 * for IP literals here and for names at connect time.
 */
export function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  options: { timeoutMs: number; allowPrivate: boolean },
): Promise<number> {
  const target = new URL(url);
  const host = bareHost(target);
  if (!options.allowPrivate && net.isIP(host) !== 0 && isPrivateAddress(host)) return Promise.reject(new PrivateAddressError(host, host));
  const client = target.protocol === 'https:' ? https : http;
  return new Promise<number>((resolve, reject) => {
    const request = client.request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: options.allowPrivate ? undefined : (publicOnlyLookup as unknown as net.LookupFunction),
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
        response.on('error', reject);
      },
    );
    // One deadline for the whole exchange (connect, send, answer), as AbortSignal.timeout gave fetch.
    const timer = setTimeout(() => request.destroy(Object.assign(new Error(`timeout after ${options.timeoutMs} ms`), { name: 'TimeoutError' })), options.timeoutMs);
    request.on('close', () => clearTimeout(timer));
    request.on('error', reject);
    request.end(body);
  });
}
