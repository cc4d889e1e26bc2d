/**
 * Bodies the server refuses must still get their answer to the client.
 *
 * `Expect: 100-continue` (curl sends it for bodies over 1 MB): Node answers `100 Continue` at once
 * by default, before any hook has run, inviting a 5 MB upload that the route then refuses for its
 * size, key or content type. Here the 100 goes out only once the request got past authentication
 * (onRequest hooks) and only when the body could be accepted: a Content-Length over the route's
 * limit gets its complete `413`, a bad key its `401`, an unknown content type its `415`, before a
 * byte of the body is sent (and the connection then closes, as the client may still send it).
 *
 * A body that turns out too large while it streams in (chunked, or sent without Expect): Fastify
 * answers 413 and closes the connection at once, while the client is still writing; the kernel
 * then resets the connection and the client loses the 413 it had not read yet (curl reported
 * "100", or a reset). So the rest of the body is read and dropped (the connection stays usable,
 * as HTTP framing is intact), bounded in bytes and time, after which the socket is let go.
 */
import type { FastifyInstance } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** At most this much of a refused body is read to let the client see its answer. */
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;
const MAX_DRAIN_MS = 10_000;

const continued = new WeakSet<ServerResponse>();

export function continueOnlyWhenWanted(app: FastifyInstance): void {
  // With a 'checkContinue' listener Node no longer sends the 100 itself; the request goes through
  // Fastify as any other, and the preParsing hook below decides.
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res));
  app.addHook('preParsing', (request, reply, payload, done) => {
    if (expectsContinue(request.raw) && !reply.raw.headersSent) {
      const length = Number(request.headers['content-length']);
      const tooLarge = Number.isFinite(length) && length > request.routeOptions.bodyLimit;
      const type = request.headers['content-type'];
      const parsable = type === undefined || request.server.hasContentTypeParser(type.split(';')[0]!.trim().toLowerCase());
      // Otherwise Fastify answers 413 from the Content-Length, or 415, without reading the body.
      if (!tooLarge && parsable) {
        reply.raw.writeContinue();
        continued.add(reply.raw);
      }
    }
    done(null, payload);
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    const req = request.raw;
    const bodyOnTheWire = !req.complete && (!expectsContinue(req) || continued.has(reply.raw));
    if (bodyOnTheWire && reply.statusCode >= 400) {
      // Fastify asks for `connection: close`; the body is drained instead, so the connection stays
      // as the client asked (an HTTP/1.1 default of keep-alive, said explicitly).
      reply.removeHeader('connection');
      if (reply.raw.shouldKeepAlive) reply.header('connection', 'keep-alive');
      reply.raw.once('finish', () => drain(req));
    }
    done(null, payload);
  });
}

function expectsContinue(req: IncomingMessage): boolean {
  const expect = req.headers.expect;
  return typeof expect === 'string' && expect.toLowerCase() === '100-continue';
}

function drain(req: IncomingMessage): void {
  if (req.complete) return;
  let read = 0;
  const giveUp = () => req.socket.destroy();
  const timer = setTimeout(giveUp, MAX_DRAIN_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > MAX_DRAIN_BYTES) giveUp();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}
