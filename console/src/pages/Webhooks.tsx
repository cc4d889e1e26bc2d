import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, WEBHOOK_EVENTS, type Webhook, type WebhookEvent } from '../api';
import { Dialog, ErrorBox, fmtTime, ShownOnceDialog, StatusBadge } from '../ui';

function Deliveries({ clientId, webhook }: { clientId: string; webhook: Webhook }) {
  const deliveries = useQuery({ queryKey: ['deliveries', clientId, webhook.id], queryFn: () => api.deliveries(clientId, webhook.id), refetchInterval: 5000 });
  const list = deliveries.data?.deliveries ?? [];
  return (
    <>
      <ErrorBox error={deliveries.error} />
      {deliveries.data && list.length === 0 && <p className="hint">Nothing sent to it yet.</p>}
      {list.length > 0 && (
        <div className="scroll">
          <table>
            <caption className="visually-hidden">Recent deliveries to {webhook.url}, newest first</caption>
            <thead>
              <tr><th scope="col">Event</th><th scope="col">Status</th><th scope="col" className="num">Attempts</th><th scope="col">Last answer</th><th scope="col">Created</th><th scope="col">Done / next try</th></tr>
            </thead>
            <tbody>
              {list.map((d) => (
                <tr key={d.id}>
                  <td><code>{d.event}</code></td>
                  <td><StatusBadge status={d.status} /></td>
                  <td className="num">{d.attempts}</td>
                  <td>{d.last_status_code !== null ? `HTTP ${d.last_status_code}` : d.last_error ?? '—'}</td>
                  <td>{fmtTime(d.created_at)}</td>
                  <td>{d.status === 'pending' ? `retry ${fmtTime(d.next_attempt_at)}` : fmtTime(d.completed_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

/** Webhooks: the endpoints that notify people of approvals and kill switches, and what reached them. */
export function WebhooksSection({ clientId }: { clientId: string }) {
  const queryClient = useQueryClient();
  const hooks = useQuery({ queryKey: ['webhooks', clientId], queryFn: () => api.webhooks(clientId) });
  const [secret, setSecret] = useState<string | null>(null);
  const [removing, setRemoving] = useState<Webhook | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const refresh = () => void queryClient.invalidateQueries({ queryKey: ['webhooks', clientId] });
  const add = useMutation({
    mutationFn: (body: { url: string; format: 'json' | 'slack'; events: WebhookEvent[] }) => api.addWebhook(clientId, body),
    onSuccess: (created, _vars) => {
      setSecret(created.secret);
      refresh();
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => api.removeWebhook(clientId, id),
    onSuccess: () => {
      setRemoving(null);
      refresh();
    },
  });

  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const events = WEBHOOK_EVENTS.filter((ev) => f.get(`event-${ev}`) === 'on');
    add.mutate(
      { url: String(f.get('url') ?? '').trim(), format: f.get('format') === 'slack' ? 'slack' : 'json', events },
      { onSuccess: () => form.reset() },
    );
  }

  const list = hooks.data?.webhooks ?? [];
  return (
    <section className="card" aria-labelledby="webhooks-title">
      <h2 id="webhooks-title">Webhooks</h2>
      <p className="hint">Each event is POSTed, signed with the endpoint’s secret, and retried with backoff until it is answered with a 2xx.</p>
      <ErrorBox error={hooks.error} />
      {list.length > 0 && (
        <ul className="webhooks">
          {list.map((w) => (
            <li key={w.id}>
              <div className="actions">
                <code className="url">{w.url}</code>
                <span className="badge">{w.format}</span>
                <span className="hint">{w.events.join(', ')} · added {fmtTime(w.created_at)}</span>
              </div>
              <div className="actions">
                <button type="button" aria-expanded={open === w.id} onClick={() => setOpen(open === w.id ? null : w.id)}>
                  {open === w.id ? 'Hide deliveries' : 'Recent deliveries'}
                </button>
                <button type="button" className="danger" onClick={() => setRemoving(w)} aria-label={`Remove ${w.url}`}>Remove…</button>
              </div>
              {open === w.id && <Deliveries clientId={clientId} webhook={w} />}
            </li>
          ))}
        </ul>
      )}
      {hooks.data && list.length === 0 && <p className="hint">No endpoint yet.</p>}
      <form className="webhook-form" onSubmit={submit} aria-label="Add a webhook">
        <label>
          Endpoint URL
          <input name="url" type="url" required maxLength={2048} placeholder="https://hooks.example.com/panopticon" />
        </label>
        <label>
          Format
          <select name="format" defaultValue="json">
            <option value="json">JSON (signed)</option>
            <option value="slack">Slack incoming webhook</option>
          </select>
        </label>
        <fieldset>
          <legend>Events</legend>
          {WEBHOOK_EVENTS.map((ev) => (
            <label key={ev} className="inline">
              <input type="checkbox" name={`event-${ev}`} defaultChecked />
              <code>{ev}</code>
            </label>
          ))}
        </fieldset>
        <ErrorBox error={add.error} />
        <div className="actions"><button type="submit" disabled={add.isPending}>Add webhook</button></div>
      </form>

      <ShownOnceDialog secret={secret} title="Webhook signing secret" label="Secret" testId="new-webhook-secret" onClose={() => setSecret(null)}>
        <p className="hint">Deliveries carry a signature made with it, so your endpoint can tell them from forgeries (see docs/api.md, Webhook deliveries).</p>
      </ShownOnceDialog>
      <Dialog open={removing !== null} title="Remove this webhook?" onClose={() => setRemoving(null)}>
        <p>Nothing more is sent to <code>{removing?.url}</code>; deliveries not yet sent are dropped.</p>
        <ErrorBox error={remove.error} />
        <div className="actions">
          <button type="button" onClick={() => setRemoving(null)}>Cancel</button>
          <button type="button" className="danger" onClick={() => removing && remove.mutate(removing.id)} disabled={remove.isPending}>Remove</button>
        </div>
      </Dialog>
    </section>
  );
}
