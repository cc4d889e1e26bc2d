import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, type IssuedPak } from '../api';
import { CopyButton, CurlHint, Dialog, ErrorBox, fmtTime, StatusBadge } from '../ui';
import { useApp } from './AppShell';
import { HmacCard } from './Hmac';

const GRACES: Array<[number, string]> = [
  [0, 'none: the old key stops now'],
  [3600, '1 hour'],
  [86400, '24 hours'],
  [7 * 86400, '7 days'],
];

export function PanopticonTab() {
  const app = useApp();
  const id = app.client_id;
  const queryClient = useQueryClient();
  const paks = useQuery({ queryKey: ['paks', id], queryFn: () => api.paks(id) });
  const [shown, setShown] = useState<IssuedPak | null>(null);
  const [rotateOpen, setRotateOpen] = useState(false);
  const [grace, setGrace] = useState(86400);
  // The switch moves on click (a controlled checkbox would snap back until the server answered);
  // a refusal puts it back and says why.
  const [pendingEnabled, setPendingEnabled] = useState<boolean | null>(null);
  const enabled = pendingEnabled ?? app.panopticon_enabled;
  const [revokeOpen, setRevokeOpen] = useState<string | 'all' | null>(null);
  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: ['paks', id] });
    void queryClient.invalidateQueries({ queryKey: ['audit', id] });
  };

  const toggle = useMutation({
    mutationFn: (enabled: boolean) => api.updateApp(id, { panopticon_enabled: enabled }),
    onSettled: () => setPendingEnabled(null),
    onSuccess: (updated) => {
      queryClient.setQueryData(['app', id], updated);
      void queryClient.invalidateQueries({ queryKey: ['apps'] });
    },
  });
  const issue = useMutation({ mutationFn: () => api.issuePak(id), onSuccess: (p) => (setShown(p), refresh()) });
  const rotate = useMutation({ mutationFn: () => api.rotatePak(id, grace), onSuccess: (p) => (setRotateOpen(false), setShown(p), refresh()) });
  const revoke = useMutation({
    mutationFn: (which: string) => api.revokePaks(id, which === 'all' ? undefined : which),
    onSuccess: () => (setRevokeOpen(null), refresh()),
  });

  const list = paks.data?.paks ?? [];
  const hasActive = list.some((p) => p.status === 'active');
  const hasUnrevoked = list.some((p) => p.status === 'active' || p.status === 'expiring');

  return (
    <>
      <section className="card">
        <h2>Enable</h2>
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            checked={enabled}
            disabled={toggle.isPending}
            onChange={(e) => {
              setPendingEnabled(e.target.checked);
              toggle.mutate(e.target.checked);
            }}
            aria-describedby="enable-help"
          />
          <span>Panopticon {enabled ? 'enabled' : 'disabled'}</span>
        </label>
        <p id="enable-help" className="hint">
          {app.panopticon_enabled
            ? 'Traces sent with this application’s key are accepted.'
            : 'While off, every key of this application is refused with 403 panopticon_disabled (the keys stay valid).'}
        </p>
        <ErrorBox error={toggle.error} />
      </section>

      <section className="card">
        <h2>Panopticon API key (PAK)</h2>
        <div className="actions">
          {!hasActive && (
            <button type="button" className="primary" onClick={() => issue.mutate()} disabled={issue.isPending}>
              Issue PAK
            </button>
          )}
          {hasActive && (
            <button type="button" onClick={() => setRotateOpen(true)}>
              Rotate PAK…
            </button>
          )}
          {hasUnrevoked && (
            <button type="button" className="danger" onClick={() => setRevokeOpen('all')}>
              Revoke all keys…
            </button>
          )}
        </div>
        <ErrorBox error={issue.error ?? paks.error} />
        {list.length === 0 && paks.data && <p>No key yet. Issue one, then send your first trace with it.</p>}
        {list.length > 0 && (
          <div className="scroll">
            <table>
              <caption className="visually-hidden">Keys of this application</caption>
              <thead>
                <tr>
                  <th scope="col">Prefix</th>
                  <th scope="col">Status</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Expires</th>
                  <th scope="col"><span className="visually-hidden">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                {list.map((p) => (
                  <tr key={p.id}>
                    <td><code>{p.prefix}…</code></td>
                    <td><StatusBadge status={p.status} /></td>
                    <td>{fmtTime(p.created_at)}</td>
                    <td>{fmtTime(p.last_used_at)}</td>
                    <td>{p.revoked_at ? `revoked ${fmtTime(p.revoked_at)}` : fmtTime(p.expires_at)}</td>
                    <td>
                      {(p.status === 'active' || p.status === 'expiring') && (
                        <button type="button" className="link danger" onClick={() => setRevokeOpen(p.id)} aria-label={`Revoke ${p.prefix}`}>
                          Revoke
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <p className="hint">Last used is written every few seconds, so it can lag by about 5 s.</p>
      </section>

      <HmacCard clientId={id} />

      {app.panopticon_enabled && list.some((p) => p.status === 'active') && <CurlHint clientId={id} />}

      <Dialog open={shown !== null} title="Your new PAK" onClose={() => setShown(null)} dismissable={false}>
        {shown && (
          <>
            <p className="warning" role="note">
              ⚠️ This key is shown <strong>only once</strong>. Store it now somewhere safe (a password manager, your
              deployment’s secrets). If you lose it, rotate to get a new one.
            </p>
            <label>
              PAK
              <input readOnly value={shown.pak} className="mono" data-testid="new-pak" onFocus={(e) => e.target.select()} />
            </label>
            <div className="actions">
              <CopyButton text={shown.pak} />
              <button type="button" className="primary" onClick={() => setShown(null)}>
                I have stored it
              </button>
            </div>
          </>
        )}
      </Dialog>

      <Dialog open={rotateOpen} title="Rotate the PAK" onClose={() => setRotateOpen(false)}>
        <p>A new key is issued. The current one keeps working for the grace period, so you can roll the new one out first.</p>
        <label>
          Grace period
          <select value={grace} onChange={(e) => setGrace(Number(e.target.value))}>
            {GRACES.map(([s, label]) => (
              <option key={s} value={s}>{label}</option>
            ))}
          </select>
        </label>
        <ErrorBox error={rotate.error} />
        <div className="actions">
          <button type="button" onClick={() => setRotateOpen(false)}>Cancel</button>
          <button type="button" className="primary" onClick={() => rotate.mutate()} disabled={rotate.isPending}>Rotate</button>
        </div>
      </Dialog>

      <Dialog open={revokeOpen !== null} title={revokeOpen === 'all' ? 'Revoke every key?' : 'Revoke this key?'} onClose={() => setRevokeOpen(null)}>
        <p>Every node refuses {revokeOpen === 'all' ? 'these keys' : 'this key'} at once with 401 pak_revoked. This cannot be undone.</p>
        <ErrorBox error={revoke.error} />
        <div className="actions">
          <button type="button" onClick={() => setRevokeOpen(null)}>Cancel</button>
          <button type="button" className="danger" onClick={() => revokeOpen && revoke.mutate(revokeOpen)} disabled={revoke.isPending}>Revoke</button>
        </div>
      </Dialog>
    </>
  );
}
