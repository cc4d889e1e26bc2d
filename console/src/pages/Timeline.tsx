import { useMemo, useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router-dom';
import { useInfiniteQuery } from '@tanstack/react-query';
import { api, type Trace, type TraceFilters, type TraceStatus } from '../api';
import { CurlHint, Empty, ErrorBox } from '../ui';
import { useApp } from './AppShell';
import { TraceDetail, TraceTable } from './TraceDetail';

const STATUSES: TraceStatus[] = ['ok', 'error', 'denied', 'timeout'];

/** datetime-local has no offset; the API needs one, so the browser's zone is made explicit. */
function localToIso(v: string): string | undefined {
  if (v === '') return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function TimelineTab() {
  const app = useApp();
  const [params, setParams] = useSearchParams();
  const [text, setText] = useState('');
  const [open, setOpen] = useState<Trace | null>(null);
  // Filters live in the URL, so a filtered view can be linked and survives a reload.
  const filters: TraceFilters = {
    tool: params.get('tool') ?? '',
    status: (params.get('status') ?? '') as TraceStatus | '',
    user_sub: params.get('user_sub') ?? '',
    since: params.get('since') ?? '',
    until: params.get('until') ?? '',
  };
  const apiFilters: TraceFilters = { ...filters, since: localToIso(filters.since ?? ''), until: localToIso(filters.until ?? '') };
  const pages = useInfiniteQuery({
    queryKey: ['traces', app.client_id, apiFilters],
    queryFn: ({ pageParam }) => api.traces(app.client_id, apiFilters, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const loaded = useMemo(() => pages.data?.pages.flatMap((p) => p.traces) ?? [], [pages.data]);
  const needle = text.trim().toLowerCase();
  const shown = needle === '' ? loaded : loaded.filter((t) => JSON.stringify(t).toLowerCase().includes(needle));
  const filtered = Object.values(filters).some((v) => v !== '' && v !== undefined);

  function apply(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const next = new URLSearchParams();
    for (const key of ['tool', 'status', 'user_sub', 'since', 'until']) {
      const v = String(form.get(key) ?? '').trim();
      if (v !== '') next.set(key, v);
    }
    setParams(next);
  }

  return (
    <>
      <form className="filters" onSubmit={apply} aria-label="Timeline filters" key={params.toString()}>
        <label>Tool<input name="tool" defaultValue={filters.tool} maxLength={256} /></label>
        <label>
          Status
          <select name="status" defaultValue={filters.status}>
            <option value="">any</option>
            {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>User (user_sub)<input name="user_sub" defaultValue={filters.user_sub} maxLength={256} /></label>
        <label>From<input type="datetime-local" name="since" defaultValue={filters.since} step={1} /></label>
        <label>Until<input type="datetime-local" name="until" defaultValue={filters.until} step={1} /></label>
        <div className="actions">
          <button type="submit" className="primary">Apply filters</button>
          {filtered && <button type="button" onClick={() => setParams(new URLSearchParams())}>Clear</button>}
          <button type="button" onClick={() => void pages.refetch()}>Refresh</button>
        </div>
      </form>
      <label className="text-filter">
        Text search in loaded traces
        <input type="search" value={text} onChange={(e) => setText(e.target.value)} aria-describedby="text-help" />
      </label>
      <p id="text-help" className="hint">
        Searches only the {loaded.length} traces loaded so far, in this browser (the server filters by tool, status, user and time).
      </p>
      <ErrorBox error={pages.error} />
      {pages.isPending && <p className="loading">Loading…</p>}
      {pages.data && loaded.length === 0 && (
        filtered ? (
          <Empty title="No trace matches these filters"><p>Clear the filters or widen the time range.</p></Empty>
        ) : (
          <Empty title="No traces yet">
            {!app.panopticon_enabled && <p>First turn Panopticon on and issue a key in the <b>Panopticon</b> tab.</p>}
            <CurlHint clientId={app.client_id} />
          </Empty>
        )
      )}
      {shown.length > 0 && <TraceTable traces={shown} onOpen={setOpen} caption="Traces, newest first" />}
      {needle !== '' && shown.length === 0 && loaded.length > 0 && <p>No loaded trace contains “{text}”.</p>}
      {pages.hasNextPage && (
        <button type="button" onClick={() => void pages.fetchNextPage()} disabled={pages.isFetchingNextPage}>
          {pages.isFetchingNextPage ? 'Loading…' : 'Load more'}
        </button>
      )}
      {pages.data && !pages.hasNextPage && loaded.length > 0 && <p className="hint">End of the timeline.</p>}
      <TraceDetail trace={open} onClose={() => setOpen(null)} />
    </>
  );
}
