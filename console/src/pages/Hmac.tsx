import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../api';
import { Dialog, ErrorBox, fmtTime, ShownOnceDialog, StatusBadge } from '../ui';

const GRACES: Array<[number, string]> = [
  [0, 'none: the old secret stops now'],
  [3600, '1 hour'],
  [86400, '24 hours'],
  [7 * 86400, '7 days'],
];

/**
 * HMAC request signing: the switch, the signing secrets by prefix, rotation with a grace period.
 * The secret itself is shown once, in the response to enable or rotate, like the PAK.
 */
export function HmacCard({ clientId }: { clientId: string }) {
  const queryClient = useQueryClient();
  const state = useQuery({ queryKey: ['hmac', clientId], queryFn: () => api.hmac(clientId) });
  const [secret, setSecret] = useState<string | null>(null);
  const [disableOpen, setDisableOpen] = useState(false);
  const [rotateOpen, setRotateOpen] = useState(false);
  const [grace, setGrace] = useState(86400);
  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: ['hmac', clientId] });
    void queryClient.invalidateQueries({ queryKey: ['audit', clientId] });
  };
  const enable = useMutation({ mutationFn: () => api.enableHmac(clientId), onSuccess: (r) => (setSecret(r.pak_secret), refresh()) });
  const rotate = useMutation({ mutationFn: () => api.rotateHmac(clientId, grace), onSuccess: (r) => (setRotateOpen(false), setSecret(r.pak_secret), refresh()) });
  const disable = useMutation({ mutationFn: () => api.disableHmac(clientId), onSuccess: () => (setDisableOpen(false), refresh()) });

  const enabled = state.data?.enabled ?? false;
  const secrets = (state.data?.secrets ?? []).filter((s) => s.status === 'active' || s.status === 'expiring');
  return (
    <section className="card" aria-labelledby="hmac-title">
      <h2 id="hmac-title">Request signing (HMAC)</h2>
      <label className="switch">
        <input
          type="checkbox"
          role="switch"
          checked={enabled}
          disabled={state.data === undefined || enable.isPending || disable.isPending}
          onChange={(e) => {
            // Turning it off opens every key to unsigned requests again: only after a confirmation.
            if (e.target.checked) enable.mutate();
            else setDisableOpen(true);
          }}
          aria-describedby="hmac-help"
        />
        <span>Signed requests {enabled ? 'required' : 'not required'}</span>
      </label>
      <p id="hmac-help" className="hint">
        {enabled
          ? 'Every request with this application’s PAK must carry X-Panopticon-Signature; others are refused with 401 signature_missing.'
          : 'When on, a leaked PAK alone is not enough: each request must also be signed with a second secret (HMAC-SHA256). It takes effect at once, on every node.'}
      </p>
      <ErrorBox error={state.error ?? enable.error ?? disable.error} />
      {enabled && (
        <>
          {secrets.length > 0 && (
            <div className="scroll">
              <table>
                <caption className="visually-hidden">Signing secrets</caption>
                <thead>
                  <tr><th scope="col">Prefix</th><th scope="col">Status</th><th scope="col">Created</th><th scope="col">Expires</th></tr>
                </thead>
                <tbody>
                  {secrets.map((s) => (
                    <tr key={s.id}>
                      <td><code>{s.prefix}…</code></td>
                      <td><StatusBadge status={s.status} /></td>
                      <td>{fmtTime(s.created_at)}</td>
                      <td>{fmtTime(s.expires_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <div className="actions">
            <button type="button" onClick={() => setRotateOpen(true)}>Rotate signing secret…</button>
          </div>
        </>
      )}

      <ShownOnceDialog secret={secret} title="Your signing secret" label="pak_secret" testId="new-pak-secret" onClose={() => setSecret(null)}>
        <p className="hint">
          Sign each request: <code>X-Panopticon-Signature: t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256(pak_secret, "t.METHOD.path.body")&gt;</code> (docs/api.md, HMAC request signing).
        </p>
      </ShownOnceDialog>

      <Dialog open={rotateOpen} title="Rotate the signing secret" onClose={() => setRotateOpen(false)}>
        <p>A new secret is issued. The current one keeps working for the grace period, so you can roll the new one out first.</p>
        <label>
          Grace period
          <select value={grace} onChange={(e) => setGrace(Number(e.target.value))}>
            {GRACES.map(([s, label]) => <option key={s} value={s}>{label}</option>)}
          </select>
        </label>
        <ErrorBox error={rotate.error} />
        <div className="actions">
          <button type="button" onClick={() => setRotateOpen(false)}>Cancel</button>
          <button type="button" className="primary" onClick={() => rotate.mutate()} disabled={rotate.isPending}>Rotate</button>
        </div>
      </Dialog>

      <Dialog open={disableOpen} title="Stop requiring signed requests?" onClose={() => setDisableOpen(false)}>
        <p>Every signing secret is revoked, and requests with the PAK alone are accepted again, on every node at once.</p>
        <ErrorBox error={disable.error} />
        <div className="actions">
          <button type="button" onClick={() => setDisableOpen(false)}>Cancel</button>
          <button type="button" className="danger" onClick={() => disable.mutate()} disabled={disable.isPending}>Turn signing off</button>
        </div>
      </Dialog>
    </section>
  );
}
