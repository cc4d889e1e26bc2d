import { useInfiniteQuery, useMutation } from '@tanstack/react-query';
import { api } from '../api';
import { Empty, ErrorBox, fmtTime } from '../ui';
import { useApp } from './AppShell';

export function AuditTab() {
  const app = useApp();
  const pages = useInfiniteQuery({
    queryKey: ['audit', app.client_id],
    queryFn: ({ pageParam }) => api.audit(app.client_id, pageParam),
    initialPageParam: null as number | null,
    getNextPageParam: (last) => last.next_before_seq,
  });
  const verify = useMutation({ mutationFn: () => api.verifyAudit(app.client_id) });
  const entries = pages.data?.pages.flatMap((p) => p.entries) ?? [];
  const v = verify.data;

  return (
    <>
      <div className="actions">
        <button type="button" onClick={() => verify.mutate()} disabled={verify.isPending}>Verify the hash chain</button>
        <span role="status" aria-live="polite">
          {v && (v.ok ? <span className="ok">✓ Intact: {v.entries} entries{v.head !== null && <>, head {v.head.slice(0, 12)}…</>}</span> : <span className="error">✗ {v.problem} at entry {v.seq}: {v.detail}</span>)}
          {v && v.unkeyed_entries > 0 && (
            <span> Entries 1–{v.unkeyed_entries} were written before the chain was keyed: changes made to them before {fmtTime(v.unkeyed_sealed_at)} cannot be detected.</span>
          )}
        </span>
      </div>
      <ErrorBox error={pages.error ?? verify.error} />
      {pages.data && entries.length === 0 && (
        <Empty title="Nothing audited yet"><p>Key issues, rotations and revocations, policy changes, kill switches and changes to the application are recorded here.</p></Empty>
      )}
      {entries.length > 0 && (
        <div className="scroll">
          <table>
            <caption className="visually-hidden">Audit log, newest first</caption>
            <thead>
              <tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col" className="wide">Change</th></tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.seq}>
                  <td>{e.seq}</td>
                  <td>{fmtTime(e.at)}</td>
                  <td>{e.actor_email ?? e.actor}</td>
                  <td><code>{e.action}</code></td>
                  <td>{e.target ?? '—'}</td>
                  <td className="wide">
                    <details>
                      <summary>before → after</summary>
                      <pre>{JSON.stringify({ before: e.before, after: e.after }, null, 2)}</pre>
                    </details>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {pages.hasNextPage && <button type="button" onClick={() => void pages.fetchNextPage()}>Load older entries</button>}
    </>
  );
}
