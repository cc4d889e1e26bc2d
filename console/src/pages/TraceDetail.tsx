import type { Trace } from '../api';
import { Dialog, fmtTime, StatusBadge } from '../ui';

/** Every field of one trace, in a side drawer (a modal dialog: Escape or Close returns to the list). */
export function TraceDetail({ trace, onClose }: { trace: (Trace & { seq?: number }) | null; onClose: () => void }) {
  return (
    <Dialog open={trace !== null} title="Trace" onClose={onClose}>
      {trace && (
        <div className="drawer">
          <dl className="fields">
            <dt>event_id</dt><dd><code>{trace.event_id}</code></dd>
            <dt>tool</dt><dd>{trace.tool}</dd>
            <dt>scope_used</dt><dd>{trace.scope_used}</dd>
            <dt>status</dt><dd><StatusBadge status={trace.status} /></dd>
            <dt>started_at</dt><dd>{trace.started_at} <small>({fmtTime(trace.started_at)})</small></dd>
            <dt>duration_ms</dt><dd>{trace.duration_ms}</dd>
            <dt>user_sub</dt><dd>{trace.user_sub ?? '—'}</dd>
            <dt>session_id</dt><dd>{trace.session_id ?? '—'}</dd>
            <dt>error_message</dt><dd>{trace.error_message ?? '—'}</dd>
            <dt>received_at</dt><dd>{trace.received_at}</dd>
            <dt>key_id</dt><dd><code>{trace.key_id}</code></dd>
            <dt>client_id</dt><dd><code>{trace.client_id}</code></dd>
            {trace.seq !== undefined && (<><dt>seq</dt><dd>{trace.seq}</dd></>)}
            <dt>attributes</dt>
            <dd>{trace.attributes === null ? '—' : <pre tabIndex={0}>{JSON.stringify(trace.attributes, null, 2)}</pre>}</dd>
          </dl>
          <div className="actions">
            <button type="button" className="primary" onClick={onClose}>Close</button>
          </div>
        </div>
      )}
    </Dialog>
  );
}

export function TraceTable({ traces, onOpen, caption }: { traces: Array<Trace & { seq?: number }>; onOpen: (t: Trace) => void; caption: string }) {
  return (
    <div className="scroll">
      <table className="traces">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Started</th>
            <th scope="col">Tool</th>
            <th scope="col">Status</th>
            <th scope="col" className="wide">Scope</th>
            <th scope="col" className="wide">User</th>
            <th scope="col" className="num">ms</th>
          </tr>
        </thead>
        <tbody>
          {traces.map((t) => (
            <tr key={t.event_id}>
              <td>{fmtTime(t.started_at)}</td>
              <td>
                <button type="button" className="link" onClick={() => onOpen(t)} aria-label={`Details of ${t.tool} at ${t.started_at}`}>
                  {t.tool}
                </button>
              </td>
              <td><StatusBadge status={t.status} /></td>
              <td className="wide">{t.scope_used}</td>
              <td className="wide">{t.user_sub ?? '—'}</td>
              <td className="num">{t.duration_ms}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
