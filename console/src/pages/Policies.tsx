import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, type Effect, type Policy, type Rule, type RuleInput, type Simulation } from '../api';
import { Dialog, ErrorBox, fmtTime, StatusBadge } from '../ui';
import { useApp } from './AppShell';
import policiesDoc from '../../../docs/policies.md?raw';

const EFFECTS: Effect[] = ['allow', 'deny', 'require_approval'];
const list = (s: string) => s.split(',').map((x) => x.trim()).filter((x) => x !== '');

/** The enforcement status table of docs/policies.md, read at build time so the two cannot drift. */
function statusRows(): string[][] {
  const section = policiesDoc.split(/^## Enforcement status/m)[1] ?? '';
  return section
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|\s*-/.test(l))
    .slice(1)
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim().replace(/`/g, '')));
}

function summary(r: Rule): string {
  const parts = [];
  if (r.match.tools.length) parts.push(`tools ${r.match.tools.join(', ')}`);
  if (r.match.scopes.length) parts.push(`scopes ${r.match.scopes.join(', ')}`);
  if (r.match.users.length) parts.push(`users ${r.match.users.join(', ')}`);
  if (r.match.arguments.length) parts.push(`${r.match.arguments.length} argument condition(s)`);
  if (r.rate_limit) parts.push(`over ${r.rate_limit.max}/${r.rate_limit.period} per ${r.rate_limit.per}`);
  return parts.length ? parts.join('; ') : 'every call';
}

function RuleEditor({ rule, onSave, onCancel, saving, error }: { rule: Rule | null; onSave: (r: RuleInput) => void; onCancel: () => void; saving: boolean; error: unknown }) {
  const [argError, setArgError] = useState<string | null>(null);
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const get = (k: string) => String(f.get(k) ?? '').trim();
    let args: unknown = [];
    try {
      args = get('arguments') === '' ? [] : JSON.parse(get('arguments'));
      if (!Array.isArray(args)) throw new Error('must be a JSON array');
      setArgError(null);
    } catch (err) {
      setArgError(`Argument conditions: ${(err as Error).message}`);
      return;
    }
    const max = get('rl_max');
    onSave({
      name: get('name'),
      effect: get('effect') as Effect,
      enabled: f.get('enabled') === 'on',
      reason: get('reason') === '' ? null : get('reason'),
      match: { tools: list(get('tools')), scopes: list(get('scopes')), users: list(get('users')), arguments: args as RuleInput['match']['arguments'] },
      rate_limit: max === '' ? null : { max: Number(max), period: get('rl_period') as 'minute', per: get('rl_per') as 'app' },
    });
  }
  return (
    <form onSubmit={submit} className="rule-form">
      <label>Name<input name="name" required maxLength={100} defaultValue={rule?.name} /></label>
      <label>
        Effect
        <select name="effect" defaultValue={rule?.effect ?? 'deny'}>
          {EFFECTS.map((x) => <option key={x} value={x}>{x}</option>)}
        </select>
      </label>
      <label>Tools (globs, comma-separated; empty = any)<input name="tools" defaultValue={rule?.match.tools.join(', ')} placeholder="send_email, db_*" /></label>
      <label>Scopes (globs)<input name="scopes" defaultValue={rule?.match.scopes.join(', ')} /></label>
      <label>Users (user_sub)<input name="users" defaultValue={rule?.match.users.join(', ')} /></label>
      <label>
        Argument conditions (JSON array)
        <textarea name="arguments" rows={3} className="mono" defaultValue={rule && rule.match.arguments.length ? JSON.stringify(rule.match.arguments) : ''} placeholder='[{"path": "to", "op": "not_suffix", "value": "@ourco.com"}]' />
      </label>
      <fieldset>
        <legend>Rate limit (optional)</legend>
        <label>At most<input name="rl_max" type="number" min={1} defaultValue={rule?.rate_limit?.max} /></label>
        <label>
          per
          <select name="rl_period" defaultValue={rule?.rate_limit?.period ?? 'minute'}>
            {['second', 'minute', 'hour', 'day'].map((x) => <option key={x}>{x}</option>)}
          </select>
        </label>
        <label>
          counted per
          <select name="rl_per" defaultValue={rule?.rate_limit?.per ?? 'app'}>
            {['app', 'user', 'tool'].map((x) => <option key={x}>{x}</option>)}
          </select>
        </label>
      </fieldset>
      <label>Reason shown to the agent<input name="reason" maxLength={500} defaultValue={rule?.reason ?? ''} /></label>
      <label className="switch"><input type="checkbox" name="enabled" defaultChecked={rule?.enabled ?? true} /> <span>Enabled</span></label>
      {argError && <p role="alert" className="error">{argError}</p>}
      <ErrorBox error={error} />
      <div className="actions">
        <button type="button" onClick={onCancel}>Cancel</button>
        <button type="submit" className="primary" disabled={saving}>Save rule</button>
      </div>
    </form>
  );
}

function editable(p: Policy) {
  return {
    default_effect: p.default_effect,
    rules: p.rules.map(({ created_at: _c, updated_at: _u, ...r }) => r),
  };
}

export function PoliciesTab() {
  const app = useApp();
  const id = app.client_id;
  const queryClient = useQueryClient();
  const policy = useQuery({ queryKey: ['policy', id], queryFn: () => api.policy(id) });
  const [editing, setEditing] = useState<Rule | 'new' | null>(null);
  const [removing, setRemoving] = useState<Rule | null>(null);
  const [killOpen, setKillOpen] = useState(false);
  const [killReason, setKillReason] = useState('');
  const [killTool, setKillTool] = useState('');
  const [proposal, setProposal] = useState<string | null>(null);
  const [sinceHours, setSinceHours] = useState(168);
  const [sim, setSim] = useState<Simulation | null>(null);
  const [simError, setSimError] = useState<unknown>(null);
  const done = () => {
    void queryClient.invalidateQueries({ queryKey: ['policy', id] });
    void queryClient.invalidateQueries({ queryKey: ['audit', id] });
  };
  const change = useMutation({ mutationFn: (fn: () => Promise<unknown>) => fn(), onSuccess: done });
  const save = useMutation({
    mutationFn: (r: RuleInput) => (editing === 'new' || editing === null ? api.addRule(id, r) : api.replaceRule(id, editing.id, r)),
    onSuccess: () => (setEditing(null), done()),
  });
  const kill = useMutation({
    mutationFn: () => api.kill(id, killReason.trim(), killTool.trim() || undefined),
    onSuccess: () => (setKillOpen(false), setKillReason(''), setKillTool(''), done()),
  });

  const p = policy.data;
  const proposalText = proposal ?? (p ? JSON.stringify(editable(p), null, 2) : '');

  async function simulate() {
    setSimError(null);
    setSim(null);
    let parsed: unknown;
    try {
      parsed = JSON.parse(proposalText);
    } catch (err) {
      setSimError(new Error(`The proposed policy is not valid JSON: ${(err as Error).message}`));
      return;
    }
    try {
      setSim(await api.simulate(id, parsed, sinceHours));
    } catch (err) {
      setSimError(err);
    }
  }

  if (policy.error) return <ErrorBox error={policy.error} />;
  if (!p) return <p className="loading">Loading…</p>;
  const appKill = p.kill_switches.find((k) => k.tool === null);

  return (
    <>
      <section className={`card ${p.kill_switches.length ? 'killed' : ''}`}>
        <h2>Kill switch</h2>
        {p.kill_switches.length === 0 ? (
          <p>Off. Turning it on denies every guard check of this application (or of one tool) on every node within a second; traces are still recorded.</p>
        ) : (
          <ul className="kills">
            {p.kill_switches.map((k) => (
              <li key={k.tool ?? '*'}>
                <strong>ON</strong> for {k.tool === null ? 'the whole application' : <>tool <code>{k.tool}</code></>} — “{k.reason}”, since {fmtTime(k.created_at)}{' '}
                <button type="button" onClick={() => change.mutate(() => api.revive(id, k.tool))}>Turn off</button>
              </li>
            ))}
          </ul>
        )}
        {!appKill && (
          <button type="button" className="danger" onClick={() => setKillOpen(true)}>
            Turn kill switch on…
          </button>
        )}
      </section>

      <section className="card">
        <h2>Rules <small>(version {p.version}, first match wins)</small></h2>
        <ErrorBox error={change.error} />
        {p.rules.length === 0 ? (
          <p>No rules: every call gets the default effect below. Add a rule to deny or require approval for some calls.</p>
        ) : (
          <ol className="rules">
            {p.rules.map((r, i) => (
              <li key={r.id} className={r.enabled ? '' : 'disabled'}>
                <div className="rule-head">
                  <strong>{r.name}</strong> <StatusBadge status={r.effect} /> {!r.enabled && <span className="badge">disabled</span>}
                </div>
                <div className="hint">{summary(r)}{r.reason ? ` — “${r.reason}”` : ''}</div>
                <div className="actions">
                  <button type="button" onClick={() => setEditing(r)} aria-label={`Edit ${r.name}`}>Edit</button>
                  <button type="button" onClick={() => change.mutate(() => api.setRuleEnabled(id, r.id, !r.enabled))} aria-label={`${r.enabled ? 'Disable' : 'Enable'} ${r.name}`}>
                    {r.enabled ? 'Disable' : 'Enable'}
                  </button>
                  <button type="button" disabled={i === 0} onClick={() => change.mutate(() => api.moveRule(id, r.id, i))} aria-label={`Move ${r.name} up`}>↑</button>
                  <button type="button" disabled={i === p.rules.length - 1} onClick={() => change.mutate(() => api.moveRule(id, r.id, i + 2))} aria-label={`Move ${r.name} down`}>↓</button>
                  <button type="button" className="danger" onClick={() => setRemoving(r)} aria-label={`Remove ${r.name}`}>Remove</button>
                </div>
              </li>
            ))}
          </ol>
        )}
        <div className="actions">
          <button type="button" className="primary" onClick={() => setEditing('new')}>Add rule</button>
          <label className="inline">
            Default effect
            <select value={p.default_effect} onChange={(e) => change.mutate(() => api.setDefault(id, e.target.value as Effect))}>
              {EFFECTS.map((x) => <option key={x} value={x}>{x}</option>)}
            </select>
          </label>
        </div>
      </section>

      <section className="card">
        <h2>Simulate a proposed policy</h2>
        <p className="hint">Edit the JSON (same shape as <code>PUT /api/apps/:client_id/policies</code>) and see how the recent checks and traces would have been decided. Nothing is changed.</p>
        <label>
          Proposed policy (JSON)
          <textarea className="mono" rows={10} value={proposalText} onChange={(e) => setProposal(e.target.value)} spellCheck={false} />
        </label>
        <div className="actions">
          <label className="inline">
            Look back (hours)
            <input type="number" min={1} max={2160} value={sinceHours} onChange={(e) => setSinceHours(Number(e.target.value))} />
          </label>
          <button type="button" onClick={() => void simulate()}>Simulate</button>
          {proposal !== null && <button type="button" onClick={() => setProposal(null)}>Reset to current</button>}
        </div>
        <ErrorBox error={simError} />
        {sim && (
          <div aria-live="polite">
            <p>
              {sim.samples} samples; <strong>{sim.changed}</strong> decisions would change, {sim.undecidable} undecidable (no stored arguments).
            </p>
            <div className="scroll">
              <table>
                <thead>
                  <tr><th scope="col"></th><th scope="col" className="num">allow</th><th scope="col" className="num">deny</th><th scope="col" className="num">require_approval</th></tr>
                </thead>
                <tbody>
                  {(['current', 'proposed'] as const).map((k) => (
                    <tr key={k}><th scope="row">{k}</th><td className="num">{sim[k].allow}</td><td className="num">{sim[k].deny}</td><td className="num">{sim[k].require_approval}</td></tr>
                  ))}
                </tbody>
              </table>
              <table>
                <thead>
                  <tr><th scope="col">Rule</th><th scope="col" className="num">matched</th><th scope="col" className="num">changed</th></tr>
                </thead>
                <tbody>
                  {sim.rules.map((r) => (
                    <tr key={r.rule_id ?? 'default'}><td>{r.name}</td><td className="num">{r.matched}</td><td className="num">{r.changed}</td></tr>
                  ))}
                </tbody>
              </table>
            </div>
          </div>
        )}
      </section>

      <section className="card">
        <h2>Enforcement status</h2>
        <div className="scroll">
          <table>
            <thead><tr><th scope="col">Feature</th><th scope="col">Status</th><th scope="col" className="wide">Proven by</th></tr></thead>
            <tbody>
              {statusRows().map(([feature, status, proof]) => (
                <tr key={feature}><td>{feature}</td><td>{status}</td><td className="wide"><small>{proof}</small></td></tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <Dialog open={editing !== null} title={editing === 'new' ? 'Add a rule' : 'Edit rule'} onClose={() => setEditing(null)}>
        {editing !== null && (
          <RuleEditor rule={editing === 'new' ? null : editing} onSave={(r) => save.mutate(r)} onCancel={() => setEditing(null)} saving={save.isPending} error={save.error} />
        )}
      </Dialog>

      <Dialog open={removing !== null} title="Remove this rule?" onClose={() => setRemoving(null)}>
        <p>“{removing?.name}” stops applying on every node at once.</p>
        <div className="actions">
          <button type="button" onClick={() => setRemoving(null)}>Cancel</button>
          <button type="button" className="danger" onClick={() => removing && change.mutate(() => api.removeRule(id, removing.id), { onSuccess: () => setRemoving(null) })}>Remove</button>
        </div>
      </Dialog>

      <Dialog open={killOpen} title="Turn the kill switch on?" onClose={() => setKillOpen(false)}>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            kill.mutate();
          }}
        >
          <p className="warning">Every guard check {killTool.trim() ? <>for tool <code>{killTool.trim()}</code></> : 'of this application'} will be denied on every node within a second, until you turn it off.</p>
          <label>Tool (empty: the whole application)<input value={killTool} onChange={(e) => setKillTool(e.target.value)} maxLength={256} /></label>
          <label>Reason (shown to agents and in the audit log)<input required value={killReason} onChange={(e) => setKillReason(e.target.value)} maxLength={500} /></label>
          <ErrorBox error={kill.error} />
          <div className="actions">
            <button type="button" onClick={() => setKillOpen(false)}>Cancel</button>
            <button type="submit" className="danger" disabled={kill.isPending || killReason.trim() === ''}>Turn kill switch on</button>
          </div>
        </form>
      </Dialog>
    </>
  );
}
