/**
 * The benchmark's CEILING: a bare Fastify 5 route, in its own process, that does only what no
 * ingest design can avoid - parse the JSON body, validate it against the same TraceEvent schema
 * through the same validatorCompiler, and answer 202 with the same body. No auth, no rate limit,
 * no store.
 *
 *   node dist/bench/ceiling.js      -> prints { url, clientId, pak: "", pid } and serves until SIGTERM
 */
import Fastify from 'fastify';
import { validatorCompiler } from '../src/http/validation.js';
import { TraceEvent } from '../src/traces/schema.js';

async function main(): Promise<void> {
  const app = Fastify({ logger: false });
  app.setValidatorCompiler(validatorCompiler);
  app.post('/panopticon/trace', { schema: { body: TraceEvent } }, async (request, reply) => {
    const event = request.body as TraceEvent;
    return reply
      .code(202)
      .type('application/json; charset=utf-8')
      .send(`{"event_id":"${event.event_id}","status":"accepted"}`);
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const stop = () => {
    void app.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify({ mark: true, hrtimeUs: Number(process.hrtime.bigint() / 1000n), stats: null })}\n`));
  process.stdout.write(`${JSON.stringify({ url, clientId: 'logi_0123456789ab', pak: '', pid: process.pid, engine: null, mode: 'ceiling' })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench ceiling: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
