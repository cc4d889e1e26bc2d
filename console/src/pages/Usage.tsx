import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { api, type UsageReport } from '../api';
import { CurlHint, Empty, ErrorBox } from '../ui';
import { useApp } from './AppShell';

const day = (d: Date) => d.toISOString().slice(0, 10);
const COUNTERS = [
  ['traces', 'Traces', '#3563e9'],
  ['errors', 'Errors', '#d64545'],
  ['hitl_requests', 'HITL requests', '#b7791f'],
  ['kill_switch', 'Kill switch', '#6b46c1'],
] as const;

function toCsv(report: UsageReport): string {
  const lines = ['date,traces,errors,hitl_requests,kill_switch'];
  for (const r of report.rows) lines.push([r.date, r.traces, r.errors, r.hitl_requests, r.kill_switch].join(','));
  const t = report.totals;
  lines.push(['total', t.traces, t.errors, t.hitl_requests, t.kill_switch].join(','));
  return lines.join('\n') + '\n';
}

function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  URL.revokeObjectURL(url);
}

export function UsageTab() {
  const app = useApp();
  const today = new Date();
  const [until, setUntil] = useState(day(today));
  const [since, setSince] = useState(day(new Date(today.getTime() - 29 * 86400_000)));
  const usage = useQuery({ queryKey: ['usage', app.client_id, since, until], queryFn: () => api.usage(app.client_id, since, until), enabled: since !== '' && until !== '' && since <= until });
  const r = usage.data;

  return (
    <>
      <form className="filters" aria-label="Date range" onSubmit={(e) => e.preventDefault()}>
        <label>From (UTC date)<input type="date" value={since} max={until} onChange={(e) => setSince(e.target.value)} required /></label>
        <label>Until (UTC date, inclusive)<input type="date" value={until} min={since} onChange={(e) => setUntil(e.target.value)} required /></label>
        <div className="actions">
          <button type="button" onClick={() => r && download(`usage-${app.client_id}-${since}-${until}.csv`, toCsv(r))} disabled={!r || r.rows.length === 0}>
            Export CSV
          </button>
        </div>
      </form>
      {since > until && <p role="alert" className="error">“From” must not be after “Until”.</p>}
      <ErrorBox error={usage.error} />
      {r && (
        <>
          <dl className="totals" aria-label="Totals for the range">
            {COUNTERS.map(([k, label]) => (
              <div key={k}>
                <dt>{label}</dt>
                <dd data-testid={`total-${k}`}>{r.totals[k]}</dd>
              </div>
            ))}
          </dl>
          {r.rows.length === 0 ? (
            <Empty title="No activity in this range">
              <p>Counters are per UTC date of each trace’s <code>started_at</code>. Widen the range, or send a trace:</p>
              <CurlHint clientId={app.client_id} />
            </Empty>
          ) : (
            <>
              <figure className="chart" aria-label="Daily counters chart">
                <ResponsiveContainer width="100%" height={280}>
                  <BarChart data={r.rows} margin={{ top: 8, right: 8, bottom: 8, left: 0 }}>
                    <CartesianGrid strokeDasharray="3 3" />
                    <XAxis dataKey="date" />
                    <YAxis allowDecimals={false} />
                    <Tooltip />
                    <Legend />
                    {COUNTERS.map(([k, label, color]) => <Bar key={k} dataKey={k} name={label} fill={color} isAnimationActive={false} />)}
                  </BarChart>
                </ResponsiveContainer>
              </figure>
              <div className="scroll">
                <table>
                  <caption className="visually-hidden">Daily counters</caption>
                  <thead>
                    <tr>
                      <th scope="col">Date (UTC)</th>
                      {COUNTERS.map(([k, label]) => <th key={k} scope="col" className="num">{label}</th>)}
                    </tr>
                  </thead>
                  <tbody>
                    {r.rows.map((row) => (
                      <tr key={row.date}>
                        <td>{row.date}</td>
                        {COUNTERS.map(([k]) => <td key={k} className="num">{row[k]}</td>)}
                      </tr>
                    ))}
                  </tbody>
                  <tfoot>
                    <tr>
                      <th scope="row">Total</th>
                      {COUNTERS.map(([k]) => <td key={k} className="num">{r.totals[k]}</td>)}
                    </tr>
                  </tfoot>
                </table>
              </div>
            </>
          )}
        </>
      )}
    </>
  );
}
