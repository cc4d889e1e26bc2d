/**
 * OTLP/HTTP ingest with the OpenTelemetry JS SDK's own exporters (http/json and http/protobuf) and
 * serializers against a real server: tool spans (GenAI and MCP conventions) become traces with the
 * documented mapping, other spans are counted and ignored, resends dedupe, bad keys and bodies are
 * refused, and an app enforcing HMAC needs /v1/traces signed over the raw protobuf bytes.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { signatureHeader } from '@panopticon/sdk';
import { createTenant, ENGINES, http, startServer, type RunningServer, type Tenant } from '../support/harness.js';
import { storedRows } from '../support/sdk.js';
import { decodeTraceResponse } from '../../src/otlp/decode.js';
import { spanEventId } from '../../src/otlp/mapping.js';

const KINDS = [
  { name: 'http/json', make: (url: string, pak: string) => new JsonExporter({ url: `${url}/v1/traces`, headers: { Authorization: `Bearer ${pak}` } }) },
  { name: 'http/protobuf', make: (url: string, pak: string) => new ProtoExporter({ url: `${url}/v1/traces`, headers: { Authorization: `Bearer ${pak}` } }) },
] as const;

/** Two tool spans (GenAI and MCP conventions) and two that are not tool executions. */
function emitSpans(tracer: Tracer, tag: string): void {
  tracer.startActiveSpan(`invoke_agent ${tag}`, (root) => {
    const weather = tracer.startSpan(`execute_tool get_weather_${tag}`, {
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': `get_weather_${tag}`,
        'gen_ai.tool.call.arguments': '{"city":"Paris"}',
        'gen_ai.conversation.id': 'conv-1',
        'panopticon.scope': 'weather:read',
        'enduser.id': 'alice',
      },
    });
    weather.end();
    const mail = tracer.startSpan(`tools/call send_email_${tag}`, {
      attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': `send_email_${tag}`, 'mcp.session.id': 'sess-9', 'error.type': 'SmtpError' },
    });
    mail.setStatus({ code: SpanStatusCode.ERROR, message: 'smtp down' });
    mail.end();
    tracer.startSpan('chat gpt-5', { attributes: { 'gen_ai.operation.name': 'chat' } }).end();
    root.end();
  });
}

function exportOnce(exporter: SpanExporter, spans: ReadableSpan[]): Promise<number> {
  return new Promise((resolve) => exporter.export(spans, (result) => resolve(result.code)));
}

for (const engine of ENGINES) {
  describe(`OTLP ingest with the OpenTelemetry exporters [${engine}]`, () => {
    let server: RunningServer;
    let t: Tenant;
    before(async () => {
      server = await startServer(engine);
      t = await createTenant(server.url);
    });
    after(() => server.close());

    for (const kind of KINDS) {
      it(`${kind.name}: tool spans become traces with the documented mapping; others are ignored; a resend is stored once`, async () => {
        const memory = new InMemorySpanExporter();
        const exporter = kind.make(server.url, t.pak);
        const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter }), new SimpleSpanProcessor({ exporter: memory })] });
        const tag = kind.name.replace(/\W/g, '');
        emitSpans(provider.getTracer('otlp-test'), tag);
        await provider.forceFlush();
        const spans = memory.getFinishedSpans();
        assert.equal(spans.length, 4);

        const res = await http(server.url, 'GET', `/api/apps/${t.clientId}/traces?limit=100`, { token: t.token });
        const mine = (res.body.traces as Array<Record<string, any>>).filter((x) => String(x.tool).endsWith(`_${tag}`));
        assert.equal(mine.length, 2, 'only the two tool spans became traces');
        const byTool = new Map(mine.map((x) => [x.tool as string, x]));

        const weatherSpan = spans.find((s) => s.name === `execute_tool get_weather_${tag}`)!;
        const weather = byTool.get(`get_weather_${tag}`)!;
        const ctx = weatherSpan.spanContext();
        assert.equal(weather.event_id, spanEventId(t.clientId, ctx.traceId, ctx.spanId), 'event_id derives from the span id');
        assert.equal(weather.status, 'ok');
        assert.equal(weather.scope_used, 'weather:read');
        assert.equal(weather.user_sub, 'alice');
        assert.equal(weather.session_id, 'conv-1');
        const startMs = weatherSpan.startTime[0] * 1000 + Math.floor(weatherSpan.startTime[1] / 1e6);
        assert.equal(Date.parse(weather.started_at), startMs);
        assert.equal(weather.attributes['otel.span_id'], ctx.spanId);
        assert.equal(weather.attributes['gen_ai.tool.name'], `get_weather_${tag}`);
        assert.equal(weather.attributes['gen_ai.tool.call.arguments'], undefined, 'call arguments are never copied');

        const mail = byTool.get(`send_email_${tag}`)!;
        assert.equal(mail.status, 'error');
        assert.equal(mail.error_message, 'smtp down');
        assert.equal(mail.scope_used, 'otel', 'no scope attribute: the documented default');
        assert.equal(mail.session_id, 'sess-9');

        // The exporter sends the same spans again (as its retry would): nothing new is stored.
        const before = await storedRows(server, t.clientId);
        assert.equal(await exportOnce(exporter, spans), 0, 'ExportResultCode.SUCCESS');
        const again = await storedRows(server, t.clientId);
        assert.equal(again.size, before.size);
        assert.ok([...again.values()].every((n) => n === 1));
        await provider.shutdown();
      });
    }

    it('answers with partialSuccess: ignored spans as a warning, rejected tool spans counted; protobuf in, protobuf out', async () => {
      const memory = new InMemorySpanExporter();
      const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
      const tracer = provider.getTracer('otlp-test');
      emitSpans(tracer, 'partial');
      // A tool span with no tool name anywhere (no attribute, no "<operation> <tool>" span name).
      tracer.startSpan('nameless', { attributes: { 'gen_ai.operation.name': 'execute_tool' } }).end();
      const spans = memory.getFinishedSpans();

      const json = await fetch(`${server.url}/v1/traces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.pak}`, 'content-type': 'application/json' },
        body: JsonTraceSerializer.serializeRequest(spans) as Uint8Array<ArrayBuffer>,
      });
      assert.equal(json.status, 200);
      assert.equal(json.headers.get('x-panopticon-spans'), 'accepted=2, duplicate=0, ignored=2, rejected=1');
      const body = (await json.json()) as { partialSuccess: { rejectedSpans: string; errorMessage: string } };
      assert.equal(body.partialSuccess.rejectedSpans, '1');
      assert.match(body.partialSuccess.errorMessage, /gen_ai\.tool\.name/);
      assert.match(body.partialSuccess.errorMessage, /2 span\(s\) ignored/);

      const proto = await fetch(`${server.url}/v1/traces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.pak}`, 'content-type': 'application/x-protobuf' },
        body: ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array<ArrayBuffer>,
      });
      assert.equal(proto.status, 200);
      assert.equal(proto.headers.get('content-type'), 'application/x-protobuf');
      assert.equal(proto.headers.get('x-panopticon-spans'), 'accepted=0, duplicate=2, ignored=2, rejected=1', 'the same spans over protobuf: same event_ids');
      const decoded = decodeTraceResponse(new Uint8Array(await proto.arrayBuffer())) as { partialSuccess: { rejectedSpans: number; errorMessage: string } };
      assert.equal(decoded.partialSuccess.rejectedSpans, 1);
      assert.match(decoded.partialSuccess.errorMessage, /ignored/);

      const onlyTools = await fetch(`${server.url}/v1/traces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.pak}`, 'content-type': 'application/json' },
        body: JsonTraceSerializer.serializeRequest(spans.filter((s) => s.attributes['gen_ai.tool.name'] !== undefined)) as Uint8Array<ArrayBuffer>,
      });
      assert.deepEqual(await onlyTools.json(), {}, 'nothing rejected or ignored: no partialSuccess');
      await provider.shutdown();
    });

    it('refuses a bad key (401), a malformed body (400) and another content type (415)', async () => {
      const r = await createTenant(server.url);
      const memory = new InMemorySpanExporter();
      const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
      emitSpans(provider.getTracer('otlp-test'), 'refused');
      const spans = memory.getFinishedSpans();
      for (const kind of KINDS) {
        assert.equal(await exportOnce(kind.make(server.url, 'pano_pak_AJBudVd5U4cp6Hbe6glfeRxKR94jem754SDSkj'), spans), 1, `${kind.name}: ExportResultCode.FAILED`);
      }
      const post = (headers: Record<string, string>, body: string | Uint8Array<ArrayBuffer>) =>
        fetch(`${server.url}/v1/traces`, { method: 'POST', headers: { authorization: `Bearer ${r.pak}`, ...headers }, body });
      const noKey = await fetch(`${server.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(noKey.status, 401);
      assert.equal(((await noKey.json()) as any).error.code, 'pak_missing');

      const garbage = await post({ 'content-type': 'application/x-protobuf' }, new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
      assert.equal(garbage.status, 400);
      assert.equal(((await garbage.json()) as any).error.code, 'malformed_protobuf');
      const badJson = await post({ 'content-type': 'application/json' }, '{"resourceSpans": ');
      assert.equal(((await badJson.json()) as any).error.code, 'malformed_json');
      const wrongShape = await post({ 'content-type': 'application/json' }, '{"resourceSpans": "all of them"}');
      assert.equal(wrongShape.status, 400);
      assert.equal(((await wrongShape.json()) as any).error.code, 'validation_failed');
      const text = await post({ 'content-type': 'text/plain' }, 'spans');
      assert.equal(text.status, 415);
      assert.equal((await storedRows(server, r.clientId)).size, 0, 'nothing of the refused requests was stored');
      await provider.shutdown();
    });

    it('for an app enforcing HMAC: unsigned OTLP is refused, protobuf signed over its raw bytes is accepted', async () => {
      const h = await createTenant(server.url);
      const enabled = await http(server.url, 'POST', `/api/apps/${h.clientId}/hmac/enable`, { token: h.token });
      const secret = enabled.body.pak_secret as string;
      const memory = new InMemorySpanExporter();
      const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
      emitSpans(provider.getTracer('otlp-test'), 'signed');
      const spans = memory.getFinishedSpans();
      assert.equal(await exportOnce(KINDS[1].make(server.url, h.pak), spans), 1, 'a stock exporter cannot sign: refused');

      const bytes = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);
      const send = (signature: string, body: Buffer) =>
        fetch(`${server.url}/v1/traces`, { method: 'POST', headers: { authorization: `Bearer ${h.pak}`, 'content-type': 'application/x-protobuf', 'x-panopticon-signature': signature }, body: new Uint8Array(body) });
      // The signed text is "<t>.POST./v1/traces." followed by the body's bytes as sent.
      const ts = Math.floor(Date.now() / 1000);
      const mac = crypto.createHmac('sha256', secret).update(`${ts}.POST./v1/traces.`).update(bytes).digest('hex');
      const tampered = Buffer.from(bytes);
      tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 1;
      const mismatch = await send(`t=${ts},v1=${mac}`, tampered);
      assert.equal(mismatch.status, 401);
      assert.equal(((await mismatch.json()) as any).error.code, 'signature_mismatch');
      const unsignedJson = await fetch(`${server.url}/v1/traces`, { method: 'POST', headers: { authorization: `Bearer ${h.pak}`, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(((await unsignedJson.json()) as any).error.code, 'signature_missing');
      const signedJson = await fetch(`${server.url}/v1/traces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.pak}`, 'content-type': 'application/json', 'x-panopticon-signature': signatureHeader(secret, 'POST', '/v1/traces', '{}') },
        body: '{}',
      });
      assert.equal(signedJson.status, 200, 'OTLP/JSON is signed like any JSON request');

      const ok = await send(`t=${ts},v1=${mac}`, bytes);
      assert.equal(ok.status, 200, await ok.clone().text());
      assert.equal(ok.headers.get('x-panopticon-spans'), 'accepted=2, duplicate=0, ignored=2, rejected=0');
      assert.equal((await storedRows(server, h.clientId)).size, 2);
      await provider.shutdown();
    });
  });
}
