import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router-dom';
import { useQueryClient } from '@tanstack/react-query';
import { api } from '../api';
import { ErrorBox } from '../ui';

export function AuthPage({ mode }: { mode: 'login' | 'signup' }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const signup = mode === 'signup';

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await (signup ? api.signup(email, password) : api.login(email, password));
      queryClient.clear();
      navigate('/');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="auth">
      <h1>Panopticon</h1>
      <form onSubmit={submit} className="card">
        <h2>{signup ? 'Create your account' : 'Sign in'}</h2>
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input
            type="password"
            autoComplete={signup ? 'new-password' : 'current-password'}
            required
            minLength={signup ? 10 : 1}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {signup && <p className="hint">At least 10 characters. The first account owns this installation.</p>}
        <ErrorBox error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {signup ? 'Sign up' : 'Sign in'}
        </button>
        <p>
          {signup ? (
            <>Already have an account? <Link to="/login">Sign in</Link></>
          ) : (
            <>No account yet? <Link to="/signup">Sign up</Link></>
          )}
        </p>
      </form>
    </main>
  );
}
