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

const blockedV4 = new net.BlockList();
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
  blockedV4.addSubnet(prefix, bits, 'ipv4');
}
const blockedV6 = new net.BlockList();
for (const [prefix, bits] of [
  ['::', 128],
  ['::1', 128],
  ['100::', 64], // discard-only
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated, still routed by some stacks)
  ['ff00::', 8], // multicast
] as const) {
  blockedV6.addSubnet(prefix, bits, 'ipv6');
}

/**
 * IPv6 forms that carry an IPv4 address, and where: a packet to one of them may end up at that IPv4
 * address (a translator, a tunnel, or the host's own stack), so the IPv4 rules decide. Each entry:
 * the prefix's leading bytes, and the positions of the bytes of each IPv4 address it may embed.
 */
const LAST_FOUR = [12, 13, 14, 15] as const;
const EMBEDDING: ReadonlyArray<{ prefix: readonly number[]; ipv4: ReadonlyArray<readonly number[]>; inverted?: boolean }> = [
  // ::a.b.c.d, IPv4-compatible (deprecated, RFC 4291)
  { prefix: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], ipv4: [LAST_FOUR] },
  // ::ffff:a.b.c.d, IPv4-mapped
  { prefix: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], ipv4: [LAST_FOUR] },
  // ::ffff:0:a.b.c.d, IPv4-translated (RFC 2765)
  { prefix: [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0], ipv4: [LAST_FOUR] },
  // 64:ff9b::/96, the NAT64 well-known prefix (RFC 6052)
  { prefix: [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], ipv4: [LAST_FOUR] },
  // 64:ff9b:1::/48, NAT64 local use (RFC 8215): the operator picks the prefix length (/48 to /96),
  // so every position RFC 6052 allows for those, around the reserved byte 8
  { prefix: [0, 0x64, 0xff, 0x9b, 0, 1], ipv4: [[6, 7, 9, 10], [7, 9, 10, 11], [9, 10, 11, 12], LAST_FOUR] },
  // 2002:a.b.c.d::/48, 6to4 (RFC 3056)
  { prefix: [0x20, 0x02], ipv4: [[2, 3, 4, 5]] },
  // 2001:0::/32, Teredo (RFC 4380): the server in bytes 4-7, the client, inverted, in the last four
  { prefix: [0x20, 0x01, 0, 0], ipv4: [[4, 5, 6, 7]] },
  { prefix: [0x20, 0x01, 0, 0], ipv4: [LAST_FOUR], inverted: true },
];

/** The 16 bytes of an IPv6 address (any textual form, with or without a trailing dotted quad). */
function ipv6Bytes(address: string): number[] | null {
  if (net.isIPv6(address) === false) return null;
  let text = address.toLowerCase().replace(/%.*$/, '');
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, dotted.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const groups = (part: string | undefined) => (part === undefined || part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = groups(tail);
  const words = tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  if (words.length !== 8) return null;
  return words.flatMap((w) => [w >> 8, w & 255]);
}

/** True for loopback, private, link-local, multicast and other non-public addresses, IPv4 embedded in IPv6 included. */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blockedV4.check(address, 'ipv4');
  if (family !== 6) return true;
  const bytes = ipv6Bytes(address);
  if (bytes === null) return true;
  for (const form of EMBEDDING) {
    if (!form.prefix.every((b, i) => bytes[i] === b)) continue;
    const embedded = form.ipv4.map((at) => at.map((i) => (form.inverted ? ~bytes[i]! & 255 : bytes[i]!)).join('.'));
    if (embedded.some((ipv4) => blockedV4.check(ipv4, 'ipv4'))) return true;
  }
  return blockedV6.check(address, 'ipv6');
}

export class PrivateAddressError extends Error {
  readonly code = 'EPRIVATEADDR';
  constructor(host: string, address: string) {
    super(`${host} resolves to ${address}, a private or loopback address; webhooks may not reach those unless PANOPTICON_WEBHOOK_ALLOW_PRIVATE=true`);
  }
}

/** The URL's host without the brackets of an IPv6 literal, or the trailing dot of a fully qualified name. */
function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').replace(/\.+$/, '').toLowerCase();
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
