export { createPanopticon, Panopticon, PanopticonError, type PanopticonOptions } from './client.js';
export { instrumentMcpServer, type InstrumentOptions, type McpRequestExtra } from './mcp.js';
export { signatureHeader } from './sign.js';
export { uuidv7 } from './uuid.js';
export type {
  ApprovalOutcome, ApprovalRef, ApprovalResult, CheckInput, Decision, GuardDecision, Stats, ToolDefinition, ToolReport, ToolVerdict, TraceInput, TraceStatus, WireTrace,
} from './types.js';
