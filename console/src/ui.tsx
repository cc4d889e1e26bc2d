/** Small shared pieces: modal dialog (native <dialog>), copy button, error and empty states, formatting. */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError } from './api';

/**
 * A modal on the native <dialog> element: showModal() makes the rest of the page inert (focus
 * stays inside), Escape closes it, and focus returns to where it was.
 */
export function Dialog(props: { open: boolean; title: string; onClose: () => void; children: ReactNode; dismissable?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d === null) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return (
    <dialog
      ref={ref}
      aria-labelledby="dialog-title"
      onCancel={(e) => {
        if (props.dismissable === false) e.preventDefault();
        else props.onClose();
      }}
      onClose={() => props.open && props.dismissable !== false && props.onClose()}
    >
      {props.open && (
        <>
          <h2 id="dialog-title">{props.title}</h2>
          {props.children}
        </>
      )}
    </dialog>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  return (
    <button
      type="button"
      onClick={() => {
        navigator.clipboard.writeText(text).then(
          () => setState('copied'),
          () => setState('failed'),
        );
      }}
    >
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed: select and copy' : label}
      <span className="visually-hidden" aria-live="polite">{state === 'copied' ? 'Copied to the clipboard' : ''}</span>
    </button>
  );
}

export function ErrorBox({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  const e = error instanceof ApiError ? error : null;
  return (
    <div role="alert" className="error">
      <strong>{e ? e.message : String(error)}</strong>
      {e?.fields && (
        <ul>
          {e.fields.map((f) => (
            <li key={f.field}>
              <code>{f.field}</code>: {f.message}
            </li>
          ))}
        </ul>
      )}
      {e?.requestId && <small> (code {e.code}, request {e.requestId})</small>}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <section className="empty">
      <h3>{title}</h3>
      {children}
    </section>
  );
}

export const fmtTime = (iso: string | null) => (iso === null ? '—' : new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }));

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${status}`}>{status}</span>;
}

/** The seed's first trace, for this app and this server: what empty states tell people to run. */
export function curlFor(clientId: string, pak = 'pano_pak_YOUR_PAK_HERE'): string {
  return `curl -X POST ${window.location.origin}/panopticon/trace \\
  -H "Authorization: Bearer ${pak}" \\
  -H "Content-Type: application/json" \\
  -d '{
    "event_id": "${crypto.randomUUID()}",
    "client_id": "${clientId}",
    "tool": "hello",
    "scope_used": "agent:read",
    "status": "ok",
    "started_at": "${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}",
    "duration_ms": 12
  }'`;
}

export function CurlHint({ clientId }: { clientId: string }) {
  const [cmd] = useState(() => curlFor(clientId));
  return (
    <div className="curl">
      <p>
        Send a trace from your agent (or this <code>curl</code>, with your PAK from the <b>Panopticon</b> tab):
      </p>
      <pre tabIndex={0}>{cmd}</pre>
      <CopyButton text={cmd} label="Copy command" />
    </div>
  );
}

/**
 * A secret the server shows only in this response (a signing secret, a webhook secret): read-only,
 * copyable, and closed only by the explicit button so Escape cannot lose it.
 */
export function ShownOnceDialog({ secret, title, label, testId, onClose, children }: { secret: string | null; title: string; label: string; testId: string; onClose: () => void; children?: ReactNode }) {
  return (
    <Dialog open={secret !== null} title={title} onClose={onClose} dismissable={false}>
      {secret !== null && (
        <>
          <p className="warning" role="note">
            ⚠️ This secret is shown <strong>only once</strong>. Store it now somewhere safe (a password manager, your
            deployment’s secrets); the server keeps it encrypted and never shows it again.
          </p>
          <label>
            {label}
            <input readOnly value={secret} className="mono" data-testid={testId} onFocus={(e) => e.target.select()} />
          </label>
          {children}
          <div className="actions">
            <CopyButton text={secret} />
            <button type="button" className="primary" onClick={onClose}>
              I have stored it
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}
