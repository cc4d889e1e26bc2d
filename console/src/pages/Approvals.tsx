import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ApiError, type Account, type Approval, type ApprovalStatus, type Remember } from '../api';
import { Dialog, Empty, ErrorBox, fmtTime, StatusBadge } from '../ui';
import { useApp } from './AppShell';
import { WebhooksSection } from './Webhooks';

type Connection = 'connecting' | 'live' | 'reconnecting';
type Shown = ApprovalStatus | '';
type ApprovalList = { approvals: Approval[]; next_cursor: string | null };

const DURATIONS: Array<[number | null, string]> = [
  [null, 'until revoked'],
  [3600, '1 hour'],
  [86400, '24 hours'],
  [7 * 86400, '7 days'],
  [30 * 86400, '30 days'],
];

/** The clock the countdowns read; one tick a second is enough for mm:ss. */
function useNow(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, []);
  return now;
}

function countdown(expiresAt: string, now: number): string {
  const s = Math.floor((Date.parse(expiresAt) - now) / 1000);
  if (s <= 0) return 'expired';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** "account:<id>" as a person reads it: you, or the account id. */
function who(decidedBy: string | null, me: Account | undefined): string {
  if (decidedBy === null) return 'nobody (it expired)';
  if (me && decidedBy === `account:${me.id}`) return `you (${me.email})`;
  return decidedBy;
}

/**
 * Applies one stream event to a cached list. A request never goes back to pending (an event read
 * before a decision can arrive after it), and a list filtered by status keeps only its status.
 */
function applyEvent(queryClient: QueryClient, clientId: string, approval: Approval): void {
  for (const [key, data] of queryClient.getQueriesData<ApprovalList>({ queryKey: ['approvals', clientId] })) {
    if (data === undefined) continue;
    const shown = key[2] as Shown;
    const current = data.approvals.find((a) => a.id === approval.id);
    if (current && current.status !== 'pending' && approval.status === 'pending') continue;
    let next = data.approvals.filter((a) => a.id !== approval.id);
    if (shown === '' || shown === approval.status) {
      next = [approval, ...next].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? 1 : -1));
    }
    queryClient.setQueryData<ApprovalList>(key, { ...data, approvals: next });
  }
}

function DecisionDialog({ approval, action, onClose, me }: { approval: Approval | null; action: 'approve' | 'deny'; onClose: () => void; me: Account | undefined }) {
  const queryClient = useQueryClient();
  const [remember, setRemember] = useState<Remember>('once');
  const [duration, setDuration] = useState<number | null>(null);
  const decide = useMutation({
    mutationFn: ({ id, comment }: { id: string; comment: string }) => {
      const c = comment.trim() === '' ? {} : { comment: comment.trim() };
      if (action === 'deny') return api.deny(id, c);
      return api.approve(id, { ...c, remember, ...(remember !== 'once' && duration !== null ? { remember_for_seconds: duration } : {}) });
    },
    onSuccess: (result) => {
      applyEvent(queryClient, result.approval.client_id, result.approval);
      if (result.grant) void queryClient.invalidateQueries({ queryKey: ['grants', result.approval.client_id] });
      onClose();
    },
    onError: (err) => {
      if (err instanceof ApiError && err.code === 'approval_decided' && approval) void queryClient.invalidateQueries({ queryKey: ['approvals', approval.client_id] });
    },
  });
  useEffect(() => {
    setRemember('once');
    setDuration(null);
    decide.reset();
    // Each opening starts clean; `decide` is stable enough for this.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [approval?.id, action]);

  const lost = decide.error instanceof ApiError && decide.error.code === 'approval_decided' ? decide.error.details : null;
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    if (approval === null) return;
    decide.mutate({ id: approval.id, comment: String(new FormData(e.currentTarget).get('comment') ?? '') });
  }
  const title = approval === null ? '' : `${action === 'approve' ? 'Approve' : 'Deny'} ${approval.tool}?`;
  return (
    <Dialog open={approval !== null} title={title} onClose={onClose}>
      {approval && (
        <form onSubmit={submit}>
          <p>
            {approval.user_sub ?? 'An unnamed user'} asked to call <code>{approval.tool}</code> ({approval.reason}).{' '}
            {action === 'approve' ? 'The waiting agent goes ahead at once.' : 'The waiting agent is told no at once.'}
          </p>
          <label>
            Comment (the agent reads it)
            <textarea name="comment" rows={2} maxLength={1000} autoFocus />
          </label>
          {action === 'approve' && (
            <fieldset>
              <legend>Remember</legend>
              <label className="inline">
                <input type="radio" name="remember" value="once" checked={remember === 'once'} onChange={() => setRemember('once')} />
                Once: this request only
              </label>
              <label className="inline">
                <input type="radio" name="remember" value="session" checked={remember === 'session'} onChange={() => setRemember('session')} disabled={approval.session_id === null} />
                This session: identical calls in session {approval.session_id ?? '(none: the request had no session_id)'}
              </label>
              <label className="inline">
                <input type="radio" name="remember" value="always" checked={remember === 'always'} onChange={() => setRemember('always')} />
                Always: identical calls by this user, in any session
              </label>
              {remember !== 'once' && (
                <label>
                  For
                  <select value={duration ?? ''} onChange={(e) => setDuration(e.target.value === '' ? null : Number(e.target.value))}>
                    {DURATIONS.map(([s, label]) => <option key={label} value={s ?? ''}>{label}</option>)}
                  </select>
                </label>
              )}
            </fieldset>
          )}
          {lost ? (
            <div role="alert" className="error">
              <strong>Already {String(lost.status)}</strong> by {who((lost.decided_by as string | null) ?? null, me)}
              {typeof lost.decided_at === 'string' ? ` at ${fmtTime(lost.decided_at)}` : ''}. Nothing was changed.
            </div>
          ) : (
            <ErrorBox error={decide.error} />
          )}
          <div className="actions">
            <button type="button" onClick={onClose}>{lost ? 'Close' : 'Cancel'}</button>
            {!lost && (
              <button type="submit" className={action === 'approve' ? 'primary' : 'danger'} disabled={decide.isPending}>
                {action === 'approve' ? 'Approve' : 'Deny'}
              </button>
            )}
          </div>
        </form>
      )}
    </Dialog>
  );
}

function PendingCard({ a, now, onDecide }: { a: Approval; now: number; onDecide: (a: Approval, action: 'approve' | 'deny') => void }) {
  const left = countdown(a.expires_at, now);
  return (
    <li className="approval" aria-label={`${a.tool} for ${a.user_sub ?? 'unknown user'}`}>
      <div className="approval-head">
        <strong><code>{a.tool}</code></strong>
        <span className={`badge ${left === 'expired' ? 'badge-expired' : 'badge-require_approval'}`} aria-label={left === 'expired' ? 'expired' : `expires in ${left}`}>
          {left === 'expired' ? 'expired' : `expires in ${left}`}
        </span>
      </div>
      <dl className="fields">
        <dt>User</dt><dd>{a.user_sub ?? '—'}</dd>
        <dt>Reason</dt><dd>{a.reason}</dd>
        <dt>Scope</dt><dd><code>{a.scope}</code></dd>
        <dt>Session</dt><dd>{a.session_id ?? '—'}</dd>
        <dt>Arguments</dt><dd><code title={`keyed hash (HMAC-SHA-256) ${a.arguments_hash}`}>hash {a.arguments_hash.slice(0, 16)}…</code></dd>
        <dt>Asked</dt><dd>{fmtTime(a.created_at)}</dd>
        <dt>Expires</dt><dd>{fmtTime(a.expires_at)}</dd>
      </dl>
      <div className="actions">
        <button type="button" className="primary" onClick={() => onDecide(a, 'approve')} disabled={left === 'expired'} aria-label={`Approve ${a.tool} (${a.id})`}>Approve…</button>
        <button type="button" className="danger" onClick={() => onDecide(a, 'deny')} disabled={left === 'expired'} aria-label={`Deny ${a.tool} (${a.id})`}>Deny…</button>
      </div>
    </li>
  );
}

function GrantsSection({ clientId }: { clientId: string }) {
  const queryClient = useQueryClient();
  const [showRevoked, setShowRevoked] = useState(false);
  const [revoking, setRevoking] = useState<string | null>(null);
  const grants = useQuery({ queryKey: ['grants', clientId, showRevoked], queryFn: () => api.grants(clientId, showRevoked) });
  const revoke = useMutation({
    mutationFn: (id: string) => api.revokeGrant(clientId, id),
    onSuccess: () => {
      setRevoking(null);
      void queryClient.invalidateQueries({ queryKey: ['grants', clientId] });
    },
  });
  const list = grants.data?.grants ?? [];
  return (
    <section className="card" aria-labelledby="grants-title">
      <h2 id="grants-title">Grants (remembered approvals)</h2>
      <label className="inline">
        <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} />
        Show revoked
      </label>
      <ErrorBox error={grants.error} />
      {grants.data && list.length === 0 && <p className="hint">None. Approving with “this session” or “always” lets the next identical calls through without asking.</p>}
      {list.length > 0 && (
        <div className="scroll">
          <table>
            <caption className="visually-hidden">Grants, newest first</caption>
            <thead>
              <tr><th scope="col">Tool</th><th scope="col">User</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col" className="num">Uses</th><th scope="col">Expires</th><th scope="col" className="wide">Arguments</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr>
            </thead>
            <tbody>
              {list.map((g) => (
                <tr key={g.id}>
                  <td><code>{g.tool}</code></td>
                  <td>{g.user_sub ?? '—'}</td>
                  <td>{g.kind === 'session' ? `session ${g.session_id ?? ''}` : 'always'}</td>
                  <td><StatusBadge status={g.status} /></td>
                  <td className="num">{g.uses}</td>
                  <td>{g.expires_at === null ? 'never' : fmtTime(g.expires_at)}</td>
                  <td className="wide"><code title={g.arguments_hash}>{g.arguments_hash.slice(0, 12)}…</code></td>
                  <td>
                    {g.status === 'active' && (
                      <button type="button" className="link danger" onClick={() => setRevoking(g.id)} aria-label={`Revoke the grant for ${g.tool} (${g.user_sub ?? 'any user'})`}>Revoke</button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Dialog open={revoking !== null} title="Revoke this grant?" onClose={() => setRevoking(null)}>
        <p>Every node stops applying it at once: the next identical call asks a human again.</p>
        <ErrorBox error={revoke.error} />
        <div className="actions">
          <button type="button" onClick={() => setRevoking(null)}>Cancel</button>
          <button type="button" className="danger" onClick={() => revoking && revoke.mutate(revoking)} disabled={revoke.isPending}>Revoke grant</button>
        </div>
      </Dialog>
    </section>
  );
}

/**
 * Approvals: the pending inbox, kept current by an EventSource on /approvals/live (the list is
 * re-read on every `ready` and `resync`, and each event is applied to the cached lists), the
 * decided and expired ones on request, the grants, and the webhooks that notify people.
 */
export function ApprovalsTab() {
  const app = useApp();
  const id = app.client_id;
  const queryClient = useQueryClient();
  const me = useQuery({ queryKey: ['me'], queryFn: api.me });
  const [shown, setShown] = useState<Shown>('pending');
  const [conn, setConn] = useState<Connection>('connecting');
  const [announce, setAnnounce] = useState('');
  const [deciding, setDeciding] = useState<{ approval: Approval; action: 'approve' | 'deny' } | null>(null);
  const now = useNow();
  const list = useQuery({ queryKey: ['approvals', id, shown], queryFn: () => api.approvals(id, shown) });

  useEffect(() => {
    const es = new EventSource(api.approvalsLiveUrl(id));
    const reread = () => void queryClient.invalidateQueries({ queryKey: ['approvals', id] });
    // The first list read raced the stream's start, and a reconnect may have missed events: the
    // stream is listening by `ready`, so a read from then on misses nothing.
    es.addEventListener('ready', () => {
      setConn('live');
      reread();
    });
    es.addEventListener('resync', reread);
    for (const name of ['requested', 'decided', 'expired'] as const) {
      es.addEventListener(name, (e) => {
        const a = JSON.parse((e as MessageEvent<string>).data) as Approval;
        applyEvent(queryClient, id, a);
        if (name === 'requested' && a.status === 'pending') setAnnounce(`New approval request: ${a.tool} for ${a.user_sub ?? 'an unnamed user'}`);
        else setAnnounce(`${a.tool}: ${a.status}${a.comment ? `, “${a.comment}”` : ''}`);
        if (a.grant_id !== null) void queryClient.invalidateQueries({ queryKey: ['grants', id] });
      });
    }
    es.onerror = () => setConn('reconnecting');
    return () => es.close();
  }, [id, queryClient]);

  const approvals = list.data?.approvals ?? [];
  const pending = approvals.filter((a) => a.status === 'pending');
  const others = approvals.filter((a) => a.status !== 'pending');
  const label: Record<Connection, string> = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…' };

  return (
    <>
      <div className="live-bar">
        <span className={`conn conn-${conn}`} role="status" data-testid="approvals-state">{label[conn]}</span>
        <label className="inline">
          Show
          <select value={shown} onChange={(e) => setShown(e.target.value as Shown)}>
            <option value="pending">pending</option>
            <option value="approved">approved</option>
            <option value="denied">denied</option>
            <option value="expired">expired</option>
            <option value="">all</option>
          </select>
        </label>
      </div>
      <p className="visually-hidden" aria-live="polite" aria-atomic="true">{announce}</p>
      <ErrorBox error={list.error} />

      <section aria-labelledby="inbox-title">
        <h2 id="inbox-title">{shown === 'pending' ? 'Waiting for a decision' : shown === '' ? 'All requests' : `${shown[0]!.toUpperCase()}${shown.slice(1)} requests`}</h2>
        {list.data && approvals.length === 0 && (
          <Empty title={shown === 'pending' ? 'Nothing is waiting for you' : 'None'}>
            {shown === 'pending' && (
              <p>
                A guard rule with the effect <code>require_approval</code> (see <b>Policies</b>) opens a request here when an agent asks for a
                matching call; it appears without reloading, and the agent waiting on it goes ahead the moment you approve.
              </p>
            )}
          </Empty>
        )}
        {pending.length > 0 && (
          <ul className="approvals" aria-label="Pending approval requests">
            {pending.map((a) => <PendingCard key={a.id} a={a} now={now} onDecide={(approval, action) => setDeciding({ approval, action })} />)}
          </ul>
        )}
        {others.length > 0 && (
          <div className="scroll">
            <table>
              <caption className="visually-hidden">Decided and expired requests, newest first</caption>
              <thead>
                <tr><th scope="col">Tool</th><th scope="col">User</th><th scope="col">Status</th><th scope="col">Decided</th><th scope="col">By</th><th scope="col">Comment</th><th scope="col" className="wide">Reason</th></tr>
              </thead>
              <tbody>
                {others.map((a) => (
                  <tr key={a.id}>
                    <td><code>{a.tool}</code></td>
                    <td>{a.user_sub ?? '—'}</td>
                    <td><StatusBadge status={a.status} />{a.remember && a.remember !== 'once' ? ` (${a.remember})` : ''}</td>
                    <td>{fmtTime(a.decided_at)}</td>
                    <td>{a.status === 'expired' ? '—' : who(a.decided_by, me.data?.account)}</td>
                    <td>{a.comment ?? '—'}</td>
                    <td className="wide">{a.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <GrantsSection clientId={id} />
      <WebhooksSection clientId={id} />

      <DecisionDialog approval={deciding?.approval ?? null} action={deciding?.action ?? 'approve'} onClose={() => setDeciding(null)} me={me.data?.account} />
    </>
  );
}
