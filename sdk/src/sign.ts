/**
 * The X-Panopticon-Signature header of HMAC mode:
 * `t=<unix s>,v1=<hex HMAC-SHA256(pak_secret, "<t>.<METHOD>.<path and query>.<raw body>")>`.
 * Signed at send time (not when the trace was queued) because the server accepts a timestamp at
 * most 300 s away from its clock, and a resend after an outage may come much later.
 */
import crypto from 'node:crypto';

export function signatureHeader(secret: string, method: string, pathAndQuery: string, body: string, nowMs: number = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  const mac = crypto.createHmac('sha256', secret).update(`${t}.${method.toUpperCase()}.${pathAndQuery}.${body}`).digest('hex');
  return `t=${t},v1=${mac}`;
}
