import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, type McpTool, type NewTools, type ToolDefinition } from '../api';
import { Dialog, Empty, ErrorBox, fmtTime, StatusBadge } from '../ui';
import { useApp } from './AppShell';

/** A line diff (longest common subsequence): ' ' kept, '-' only before, '+' only after. */
function lineDiff(before: string[], after: string[]): Array<[' ' | '-' | '+', string]> {
  const n = before.length;
  const m = after.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = before[i] === after[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: Array<[' ' | '-' | '+', string]> = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && before[i] === after[j]) {
      out.push([' ', before[i]!]);
      i++;
      j++;
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(['-', before[i++]!]);
    else out.push(['+', after[j++]!]);
  }
  return out;
}

const pretty = (d: ToolDefinition | null) => (d === null ? [] : JSON.stringify(d.definition, null, 2).split('\n'));
const short = (hash: string | null | undefined) => (hash ? hash.slice(0, 12) : '—');

function Diff({ before, after }: { before: ToolDefinition | null; after: ToolDefinition }) {
  const lines = lineDiff(pretty(before), pretty(after));
  return (
    <pre className="diff" aria-label={before === null ? 'The new definition' : 'Pinned definition (−) against the new one (+)'}>
      {lines.map(([mark, text], k) => (
        <span key={k} className={mark === '+' ? 'diff-add' : mark === '-' ? 'diff-del' : undefined}>
          {mark} {text}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}

function Change({ tool, change, clientId }: { tool: McpTool; change: ToolDefinition; clientId: string }) {
  const queryClient = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const decide = useMutation({
    mutationFn: (decision: 'approve' | 'reject') => api.decideTool(clientId, change.id, decision),
    onSuccess: () => {
      setConfirming(false);
      void queryClient.invalidateQueries({ queryKey: ['tools', clientId] });
      void queryClient.invalidateQueries({ queryKey: ['audit', clientId] });
    },
  });
  const isNew = tool.pinned === null;
  return (
    <li className="tool-change" aria-label={`${isNew ? 'New tool' : 'Changed definition of'} ${tool.name}`}>
      <div className="approval-head">
        <strong><code>{tool.name}</code> {isNew ? 'is new' : 'changed'}</strong>
        <StatusBadge status={change.status} />
      </div>
      <p className="hint">
        {isNew ? 'Hidden from the MCP client and refused until approved.' : `Pinned ${short(tool.pinned?.hash)} → shown ${short(change.hash)}. The new definition is hidden and its calls refused until approved.`}{' '}
        First seen {fmtTime(change.first_seen_at)}, last seen {fmtTime(change.last_seen_at)}.
        {change.status === 'rejected' && ` Rejected by ${change.decided_by ?? '?'} ${fmtTime(change.decided_at)}.`}
      </p>
      <Diff before={tool.pinned} after={change} />
      <ErrorBox error={decide.error} />
      <div className="actions">
        <button type="button" className="primary" onClick={() => setConfirming(true)} disabled={decide.isPending}>Approve…</button>
        {change.status === 'pending' && (
          <button type="button" className="danger" onClick={() => decide.mutate('reject')} disabled={decide.isPending}>Reject</button>
        )}
      </div>
      <Dialog open={confirming} title={`Approve this definition of ${tool.name}?`} onClose={() => setConfirming(false)}>
        <p>
          The MCP client (and its model) will see this description and schema, and calls to <code>{tool.name}</code> will go through to the guard again.
          {!isNew && ' The definition pinned until now is superseded.'}
        </p>
        <p className="hint">Hash <code>{change.hash}</code></p>
        <ErrorBox error={decide.error} />
        <div className="actions">
          <button type="button" onClick={() => setConfirming(false)}>Cancel</button>
          <button type="button" className="primary" onClick={() => decide.mutate('approve')} disabled={decide.isPending}>Approve</button>
        </div>
      </Dialog>
    </li>
  );
}

const SNIPPET = (clientId: string) => `{
  "mcpServers": {
    "filesystem": {
      "command": "node",
      "args": ["/path/to/panopticon/bin/logi.js", "mcp", "proxy", "--client-id", "${clientId}", "--",
               "npx", "-y", "@modelcontextprotocol/server-filesystem", "/path/to/files"],
      "env": { "LOGI_PAK": "pano_pak_…", "LOGI_URL": "${window.location.origin}" }
    }
  }
}`;

/** Tools: every MCP tool the proxy reported, its pinned definition, and quarantined changes to approve or reject. */
export function ToolsTab() {
  const app = useApp();
  const clientId = app.client_id;
  const queryClient = useQueryClient();
  const tools = useQuery({ queryKey: ['tools', clientId], queryFn: () => api.tools(clientId), refetchInterval: 5000 });
  const settings = useMutation({
    mutationFn: (newTools: NewTools) => api.setNewTools(clientId, newTools),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ['tools', clientId] }),
  });
  const list = tools.data?.tools ?? [];
  const changes = list.flatMap((t) => t.changes.map((c) => ({ tool: t, change: c })));
  const pending = changes.filter((c) => c.change.status === 'pending');

  return (
    <>
      <ErrorBox error={tools.error} />
      {tools.data && (
        <section className="card" aria-labelledby="new-tools-title">
          <h2 id="new-tools-title">Tool pinning</h2>
          <p className="hint">
            The MCP proxy (<code>logi mcp proxy</code>) reports every tool the server lists. A definition that differs from the pinned one is quarantined: hidden from the client and refused.
          </p>
          <label className="inline">
            New tools
            <select value={tools.data.new_tools} onChange={(e) => settings.mutate(e.target.value as NewTools)} disabled={settings.isPending} aria-label="New tools">
              <option value="allow">are pinned when first seen</option>
              <option value="require_approval">stay hidden until approved</option>
            </select>
          </label>
          <ErrorBox error={settings.error} />
        </section>
      )}

      {changes.length > 0 && (
        <section className="card" aria-labelledby="quarantine-title">
          <h2 id="quarantine-title">Quarantined ({pending.length} to decide)</h2>
          <ul className="tool-changes">
            {changes.map(({ tool, change }) => <Change key={change.id} tool={tool} change={change} clientId={clientId} />)}
          </ul>
        </section>
      )}

      {tools.data && list.length === 0 && (
        <Empty title="No MCP tools seen yet">
          <p>Put <code>logi mcp proxy</code> between your MCP client and the server; for Claude Desktop, in <code>claude_desktop_config.json</code>:</p>
          <pre>{SNIPPET(clientId)}</pre>
          <p className="hint">See docs/mcp-proxy.md for every flag, Streamable HTTP servers and the fail modes.</p>
        </Empty>
      )}

      {list.length > 0 && (
        <div className="scroll">
          <table>
            <caption className="visually-hidden">MCP tools of {app.name}</caption>
            <thead>
              <tr>
                <th scope="col">Tool</th><th scope="col">Status</th><th scope="col">Pinned hash</th><th scope="col" className="wide">First seen</th>
                <th scope="col">Last seen</th><th scope="col" className="num">Calls (30 days)</th>
              </tr>
            </thead>
            <tbody>
              {list.map((t) => (
                <tr key={t.name}>
                  <td>
                    <code>{t.name}</code>
                    {typeof t.pinned?.definition.description === 'string' && <div className="hint">{String(t.pinned.definition.description).slice(0, 160)}</div>}
                  </td>
                  <td><StatusBadge status={t.status} /></td>
                  <td><code title={t.pinned?.hash}>{short(t.pinned?.hash)}</code></td>
                  <td className="wide">{fmtTime(t.first_seen_at)}</td>
                  <td>{fmtTime(t.last_seen_at)}</td>
                  <td className="num">{t.calls.toLocaleString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
