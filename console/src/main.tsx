import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { createBrowserRouter, Navigate, RouterProvider } from 'react-router-dom';
import { ApiError } from './api';
import { AuthPage } from './pages/Auth';
import { Layout } from './pages/Layout';
import { AppsPage } from './pages/Apps';
import { AppShell } from './pages/AppShell';
import { PanopticonTab } from './pages/Panopticon';
import { TimelineTab } from './pages/Timeline';
import { LiveTab } from './pages/Live';
import { PoliciesTab } from './pages/Policies';
import { AuditTab } from './pages/Audit';
import { ApprovalsTab } from './pages/Approvals';
import { ToolsTab } from './pages/Tools';
import './styles.css';

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A 4xx will not get better by asking again; a network blip might.
      retry: (count, error) => !(error instanceof ApiError && error.status >= 400 && error.status < 500) && count < 2,
      refetchOnWindowFocus: false,
    },
  },
});

const router = createBrowserRouter([
  { path: '/login', element: <AuthPage mode="login" /> },
  { path: '/signup', element: <AuthPage mode="signup" /> },
  {
    path: '/',
    element: <Layout />,
    children: [
      { index: true, element: <AppsPage /> },
      {
        path: 'apps/:clientId',
        element: <AppShell />,
        children: [
          { index: true, element: <Navigate to="panopticon" replace /> },
          { path: 'panopticon', element: <PanopticonTab /> },
          { path: 'timeline', element: <TimelineTab /> },
          { path: 'live', element: <LiveTab /> },
          // The chart library is most of the bundle: it loads when the Usage tab is first opened.
          { path: 'usage', lazy: async () => ({ Component: (await import('./pages/Usage')).UsageTab }) },
          { path: 'policies', element: <PoliciesTab /> },
          { path: 'approvals', element: <ApprovalsTab /> },
          { path: 'tools', element: <ToolsTab /> },
          { path: 'audit', element: <AuditTab /> },
        ],
      },
      { path: '*', element: <Navigate to="/" replace /> },
    ],
  },
]);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  </StrictMode>,
);
