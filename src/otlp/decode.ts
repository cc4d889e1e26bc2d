/**
 * OTLP/protobuf bodies, decoded and encoded with the protobufjs code that OpenTelemetry JS generates
 * from the official opentelemetry-proto definitions. The current @opentelemetry/otlp-transformer
 * only encodes requests, so the decoder comes from its 0.215.0 release, installed under the alias
 * `otlp-transformer-protos` (it ships build/src/generated/root.js with decode()).
 */
import { createRequire } from 'node:module';
import type { OtlpTraceRequest } from './mapping.js';

interface MessageType {
  decode(reader: Uint8Array): object;
  encode(message: object): { finish(): Uint8Array };
  toObject(message: object, options: Record<string, unknown>): Record<string, unknown>;
  fromObject(object: Record<string, unknown>): object;
}

interface GeneratedRoot {
  opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: MessageType; ExportTraceServiceResponse: MessageType } } } } };
}

type TraceMessages = GeneratedRoot['opentelemetry']['proto']['collector']['trace']['v1'];
let messages: TraceMessages | null = null;

/** The generated code is several megabytes resident: loaded on the first protobuf request, not at boot. */
function traceMessages(): TraceMessages {
  messages ??= (createRequire(import.meta.url)('otlp-transformer-protos/build/src/generated/root.js') as GeneratedRoot).opentelemetry.proto.collector.trace.v1;
  return messages;
}

/** Bytes fields (ids) become hex, as in OTLP/JSON; other bytes values stay base64. */
function hexIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(hexIds);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = (k === 'traceId' || k === 'spanId' || k === 'parentSpanId') && typeof v === 'string' ? Buffer.from(v, 'base64').toString('hex') : hexIds(v);
  }
  return out;
}

/** Throws on a body that is not an ExportTraceServiceRequest. */
export function decodeTraceRequest(body: Buffer): OtlpTraceRequest {
  const { ExportTraceServiceRequest } = traceMessages();
  const message = ExportTraceServiceRequest.decode(body);
  // int64 as decimal strings and enums as numbers: the OTLP/JSON representation.
  return hexIds(ExportTraceServiceRequest.toObject(message, { longs: String, enums: Number, bytes: String })) as OtlpTraceRequest;
}

export function encodeTraceResponse(partialSuccess: { rejectedSpans: number; errorMessage: string } | null): Buffer {
  const { ExportTraceServiceResponse } = traceMessages();
  const message = ExportTraceServiceResponse.fromObject(partialSuccess === null ? {} : { partialSuccess });
  return Buffer.from(ExportTraceServiceResponse.encode(message).finish());
}

/** For tests: the decoded response of a protobuf request. */
export function decodeTraceResponse(body: Uint8Array): Record<string, unknown> {
  const { ExportTraceServiceResponse } = traceMessages();
  return ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(body), { longs: Number, defaults: false });
}
