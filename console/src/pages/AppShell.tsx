import { NavLink, Outlet, useOutletContext, useParams } from 'react-router-dom';
import { useQuery } from '@tanstack/react-query';
import { api, type AppInfo } from '../api';
import { ErrorBox } from '../ui';

const TABS = [
  ['panopticon', 'Panopticon'],
  ['timeline', 'Activity Timeline'],
  ['live', 'Live Trace'],
  ['usage', 'Usage'],
  ['policies', 'Policies'],
  ['approvals', 'Approvals'],
  ['tools', 'Tools'],
  ['audit', 'Audit'],
] as const;

export function useApp(): AppInfo {
  return useOutletContext<AppInfo>();
}

/** One application: its name, client_id, and the tabs (each a route, so links and Back work). */
export function AppShell() {
  const { clientId = '' } = useParams();
  const app = useQuery({ queryKey: ['app', clientId], queryFn: () => api.app(clientId) });
  if (app.error) return <ErrorBox error={app.error} />;
  if (!app.data) return <p className="loading">Loading…</p>;
  return (
    <>
      <h1>
        {app.data.name} <code className="client-id">{app.data.client_id}</code>
      </h1>
      <nav className="tabs" aria-label="Application">
        {TABS.map(([path, label]) => (
          <NavLink key={path} to={path}>
            {label}
          </NavLink>
        ))}
      </nav>
      <section className="tab-body">
        <Outlet context={app.data} />
      </section>
    </>
  );
}
