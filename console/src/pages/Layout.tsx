import { Link, Navigate, Outlet, useNavigate } from 'react-router-dom';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError } from '../api';
import { ErrorBox } from '../ui';

/** Everything behind sign-in: the header, and a redirect to /login when the session is gone. */
export function Layout() {
  const me = useQuery({ queryKey: ['me'], queryFn: api.me });
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  if (me.error instanceof ApiError && me.error.code === 'unauthenticated') return <Navigate to="/login" replace />;
  if (me.isPending) return <p className="loading">Loading…</p>;
  if (me.error) return <ErrorBox error={me.error} />;
  return (
    <>
      <header className="top">
        <Link to="/" className="brand">Panopticon</Link>
        <span className="who">{me.data.account.email}</span>
        <button
          type="button"
          onClick={async () => {
            await api.logout().catch(() => {});
            queryClient.clear();
            navigate('/login');
          }}
        >
          Sign out
        </button>
      </header>
      <main className="page">
        <Outlet />
      </main>
    </>
  );
}
