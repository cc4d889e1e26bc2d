import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, type LiveTrace, type TraceStatus } from '../api';
import { CurlHint, Empty } from '../ui';
import { useApp } from './AppShell';
import { TraceDetail, TraceTable } from './TraceDetail';

type Connection = 'connecting' | 'live' | 'reconnecting' | 'stopped';
const KEEP = 500;

/**
 * Live Trace: an EventSource on /api/apps/:id/live. The browser reconnects by itself after a drop
 * and sends Last-Event-ID, so the server resumes after the last trace we got; when the browser gives
 * up (the server answered an error), we open a new stream with ?after=<last seq> after a pause.
 * Rows are also de-duplicated by seq here, as a second line of defence.
 */
export function LiveTab() {
  const app = useApp();
  const [filters, setFilters] = useState<{ tool?: string; status?: string; user_sub?: string }>({});
  const [rows, setRows] = useState<LiveTrace[]>([]);
  const [paused, setPaused] = useState(false);
  const [buffered, setBuffered] = useState<LiveTrace[]>([]);
  const [conn, setConn] = useState<Connection>('connecting');
  const [total, setTotal] = useState(0);
  const [open, setOpen] = useState<LiveTrace | null>(null);
  const lastSeq = useRef<number | null>(null);
  const seen = useRef(new Set<number>());
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  useEffect(() => {
    let es: EventSource | null = null;
    let retry: number | undefined;
    let stopped = false;
    const connect = () => {
      setConn((c) => (c === 'live' ? 'reconnecting' : c));
      es = new EventSource(api.liveUrl(app.client_id, filters, lastSeq.current));
      es.addEventListener('ready', (e) => {
        setConn('live');
        const after = Number(JSON.parse((e as MessageEvent<string>).data).after);
        if (lastSeq.current === null) lastSeq.current = after;
      });
      es.addEventListener('trace', (e) => {
        const t = JSON.parse((e as MessageEvent<string>).data) as LiveTrace;
        if (seen.current.has(t.seq)) return;
        seen.current.add(t.seq);
        lastSeq.current = Math.max(lastSeq.current ?? 0, t.seq);
        setTotal((n) => n + 1);
        if (pausedRef.current) setBuffered((b) => [t, ...b].slice(0, KEEP));
        else setRows((r) => [t, ...r].slice(0, KEEP));
      });
      es.onerror = () => {
        if (stopped || es === null) return;
        if (es.readyState === EventSource.CONNECTING) {
          setConn('reconnecting');
          return;
        }
        // CLOSED: the browser will not retry (e.g. an error status); we do, from where we were.
        setConn('reconnecting');
        es.close();
        retry = window.setTimeout(connect, 3000);
      };
    };
    connect();
    return () => {
      stopped = true;
      es?.close();
      window.clearTimeout(retry);
      setConn('stopped');
    };
  }, [app.client_id, filters]);

  function applyFilters(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const pick = (k: string) => String(form.get(k) ?? '').trim() || undefined;
    setFilters({ tool: pick('tool'), status: pick('status') as TraceStatus | undefined, user_sub: pick('user_sub') });
    setRows([]);
    setBuffered([]);
  }

  const label: Record<Connection, string> = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', stopped: 'Stopped' };
  return (
    <>
      <div className="live-bar">
        <span className={`conn conn-${conn}`} role="status" data-testid="live-state">{label[conn]}</span>
        <button
          type="button"
          aria-pressed={paused}
          onClick={() => {
            if (paused) {
              setRows((r) => [...buffered, ...r].slice(0, KEEP));
              setBuffered([]);
            }
            setPaused(!paused);
          }}
        >
          {paused ? `Resume (${buffered.length} waiting)` : 'Pause'}
        </button>
        <button type="button" onClick={() => setRows([])}>Clear</button>
      </div>
      <form className="filters" onSubmit={applyFilters} aria-label="Live filters">
        <label>Tool<input name="tool" maxLength={256} /></label>
        <label>
          Status
          <select name="status" defaultValue="">
            <option value="">any</option>
            {['ok', 'error', 'denied', 'timeout'].map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>User (user_sub)<input name="user_sub" maxLength={256} /></label>
        <div className="actions"><button type="submit">Apply filters</button></div>
      </form>
      <p className="visually-hidden" aria-live="polite" aria-atomic="true">
        {total > 0 && rows[0] ? `${total} traces received; latest ${rows[0].tool}, ${rows[0].status}` : ''}
      </p>
      {rows.length === 0 && buffered.length === 0 ? (
        <Empty title="Waiting for traces">
          <p>New traces appear here within a second of being accepted, without reloading.</p>
          {!app.panopticon_enabled && <p>Panopticon is off for this application: turn it on in the <b>Panopticon</b> tab.</p>}
          <CurlHint clientId={app.client_id} />
        </Empty>
      ) : (
        <TraceTable traces={rows} onOpen={(t) => setOpen(t as LiveTrace)} caption="Live traces, newest first" />
      )}
      <TraceDetail trace={open} onClose={() => setOpen(null)} />
    </>
  );
}
