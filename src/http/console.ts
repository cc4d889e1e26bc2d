/**
 * Serves the built console (console/dist) from `/`. It registers no route: files and the SPA
 * fallback are answered from the not-found handler, so the API's route table (and the docs test
 * that checks it against docs/api.md) stays exactly the API, and a miss under /api or /panopticon
 * is still a JSON `route_not_found`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** console/dist of this checkout; this file runs as dist/src/http/console.js. */
export const DEFAULT_CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../console/dist');

/** Answers the request from the console when it is the console's; false leaves it to the 404. */
export type ConsoleFallback = (request: FastifyRequest, reply: FastifyReply) => boolean;

const API_PREFIXES = ['/api/', '/panopticon/'];

/**
 * The console is same-origin only: no framing (clickjacking), scripts and API calls from here only.
 * Inline styles are allowed because the chart library sets style attributes.
 */
const CSP = "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

function listFiles(root: string, dir = root, out = new Set<string>()): Set<string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) listFiles(root, full, out);
    else out.add('/' + path.relative(root, full).split(path.sep).join('/'));
  }
  return out;
}

export async function registerConsole(app: FastifyInstance, dir = DEFAULT_CONSOLE_DIR): Promise<ConsoleFallback | null> {
  if (!fs.existsSync(path.join(dir, 'index.html'))) {
    app.log.warn({ dir }, 'console not built (npm run build:console); serving the API only');
    return null;
  }
  await app.register(fastifyStatic, { root: dir, serve: false, index: false });
  // Only files present at start are served: a path is matched against this set, never joined blindly.
  const files = listFiles(dir);
  return (request, reply) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    const pathname = request.url.split('?')[0]!;
    if (pathname === '/api' || pathname === '/panopticon' || API_PREFIXES.some((p) => pathname.startsWith(p))) return false;
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return false;
    }
    if (files.has(decoded) && decoded !== '/index.html') {
      // Vite puts a content hash in every asset name, so an asset never changes under its URL.
      const immutable = decoded.startsWith('/assets/');
      void reply.sendFile(decoded.slice(1), { immutable, maxAge: immutable ? 365 * 24 * 3600 * 1000 : 0 });
      return true;
    }
    const accept = request.headers.accept ?? '';
    if (!accept.includes('text/html')) return false;
    void reply.header('cache-control', 'no-cache').header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').sendFile('index.html', { cacheControl: false });
    return true;
  };
}
