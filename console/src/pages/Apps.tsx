import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router-dom';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../api';
import { Empty, ErrorBox, fmtTime } from '../ui';

export function AppsPage() {
  const apps = useQuery({ queryKey: ['apps'], queryFn: api.apps });
  const [name, setName] = useState('');
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const create = useMutation({
    mutationFn: (n: string) => api.createApp(n),
    onSuccess: (app) => {
      void queryClient.invalidateQueries({ queryKey: ['apps'] });
      navigate(`/apps/${app.client_id}/panopticon`);
    },
  });

  return (
    <>
      <h1>Applications</h1>
      <form
        className="inline-form"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          create.mutate(name.trim());
        }}
      >
        <label>
          New application name
          <input required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} placeholder="my-agent" />
        </label>
        <button type="submit" className="primary" disabled={create.isPending || name.trim() === ''}>
          Create application
        </button>
      </form>
      <ErrorBox error={create.error ?? apps.error} />
      {apps.data && apps.data.apps.length === 0 && (
        <Empty title="No applications yet">
          <p>Create one above: each agent or MCP server that sends traces is an application with its own <code>client_id</code> and key.</p>
        </Empty>
      )}
      {apps.data && apps.data.apps.length > 0 && (
        <table>
          <caption className="visually-hidden">Your applications</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">client_id</th>
              <th scope="col">Panopticon</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {apps.data.apps.map((a) => (
              <tr key={a.client_id}>
                <td>
                  <Link to={`/apps/${a.client_id}/panopticon`}>{a.name}</Link>
                </td>
                <td><code>{a.client_id}</code></td>
                <td>{a.panopticon_enabled ? 'Enabled' : 'Off'}</td>
                <td>{fmtTime(a.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
