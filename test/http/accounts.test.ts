/** Operator accounts over HTTP on both engines: sign-up, sign-in, sessions, tokens, CSRF. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadServerConfig } from '../../src/config.js';
import { ENGINES, http, startServer, TEST_SCRYPT_N, type RunningServer } from '../support/harness.js';

const password = 'correct horse battery staple';

function sessionCookie(headers: Headers): string {
  const raw = headers.getSetCookie().find((c) => c.startsWith('pano_session='));
  assert.ok(raw, 'a pano_session cookie is set');
  return raw;
}

for (const engine of ENGINES) {
  describe(`accounts [${engine}]`, () => {
    let server: RunningServer;
    before(async () => {
      // The harness's cheaper scrypt: the cost a real server uses is the next suite's subject.
      server = await startServer(engine);
    });
    after(() => server.close());

    it('sign-up: the first account owns the install, gets an HttpOnly SameSite=Strict session', async () => {
      const res = await http(server.url, 'POST', '/api/auth/signup', { body: { email: 'Owner@Example.com', password } });
      assert.equal(res.status, 201);
      assert.equal(res.body.account.email, 'owner@example.com');
      assert.equal(res.body.account.is_owner, true);
      const cookie = sessionCookie(res.headers);
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      const me = await http(server.url, 'GET', '/api/me', { headers: { cookie: cookie.split(';')[0]! } });
      assert.equal(me.status, 200);
      assert.equal(me.body.account.email, 'owner@example.com');
      assert.equal(me.body.via, 'session');

      const second = await http(server.url, 'POST', '/api/auth/signup', { body: { email: 'second@example.com', password } });
      assert.equal(second.body.account.is_owner, false);
    });

    it('passwords are stored as scrypt hashes, never as given', async () => {
      const account = await server.store.accounts.findByEmail('owner@example.com');
      assert.ok(account);
      assert.match(account.passwordHash, new RegExp(`^scrypt\\$${TEST_SCRYPT_N}\\$8\\$1\\$`));
      assert.ok(!account.passwordHash.includes(password));
    });

    it('rejects a taken email (any case), a short password and unknown fields', async () => {
      const taken = await http(server.url, 'POST', '/api/auth/signup', { body: { email: 'OWNER@example.com', password } });
      assert.equal(taken.status, 409);
      assert.equal(taken.body.error.code, 'email_taken');
      const short = await http(server.url, 'POST', '/api/auth/signup', { body: { email: 'x@example.com', password: 'short' } });
      assert.equal(short.status, 400);
      assert.equal(short.body.error.code, 'validation_failed');
      assert.deepEqual(short.body.error.fields.map((f: { field: string }) => f.field), ['password']);
      const extra = await http(server.url, 'POST', '/api/auth/signup', { body: { email: 'y@example.com', password, admin: true } });
      assert.equal(extra.status, 400);
      assert.equal(await server.store.accounts.findByEmail('y@example.com'), null);
    });

    it('login: wrong password and unknown email get the same 401', async () => {
      const wrong = await http(server.url, 'POST', '/api/auth/login', { body: { email: 'owner@example.com', password: 'not the password' } });
      const unknown = await http(server.url, 'POST', '/api/auth/login', { body: { email: 'nobody@example.com', password } });
      for (const res of [wrong, unknown]) {
        assert.equal(res.status, 401);
        assert.equal(res.body.error.code, 'invalid_credentials');
        assert.equal(res.headers.getSetCookie().length, 0);
      }
      const ok = await http(server.url, 'POST', '/api/auth/login', { body: { email: 'owner@example.com', password } });
      assert.equal(ok.status, 200);
      sessionCookie(ok.headers);
    });

    it('refuses cookie-authenticated mutations from another origin', async () => {
      const login = await http(server.url, 'POST', '/api/auth/login', { body: { email: 'owner@example.com', password } });
      const cookie = sessionCookie(login.headers).split(';')[0]!;
      const foreign = await http(server.url, 'POST', '/api/apps', { body: { name: 'evil' }, headers: { cookie, origin: 'https://evil.example' } });
      assert.equal(foreign.status, 403);
      assert.equal(foreign.body.error.code, 'csrf_rejected');
      const crossSite = await http(server.url, 'POST', '/api/apps', { body: { name: 'evil' }, headers: { cookie, 'sec-fetch-site': 'cross-site' } });
      assert.equal(crossSite.status, 403);
      const apps = await http(server.url, 'GET', '/api/apps', { headers: { cookie } });
      assert.deepEqual(apps.body.apps, []);
      const same = await http(server.url, 'POST', '/api/apps', { body: { name: 'mine' }, headers: { cookie, origin: server.url, 'sec-fetch-site': 'same-origin' } });
      assert.equal(same.status, 201);
    });

    it('logout ends the session', async () => {
      const login = await http(server.url, 'POST', '/api/auth/login', { body: { email: 'owner@example.com', password } });
      const cookie = sessionCookie(login.headers).split(';')[0]!;
      assert.equal((await http(server.url, 'POST', '/api/auth/logout', { headers: { cookie } })).status, 204);
      const me = await http(server.url, 'GET', '/api/me', { headers: { cookie } });
      assert.equal(me.status, 401);
      assert.equal(me.body.error.code, 'unauthenticated');
    });

    it('operator tokens: issued for a password, hashed at rest, revocable', async () => {
      const res = await http(server.url, 'POST', '/api/auth/token', { body: { email: 'owner@example.com', password, name: 'ci' } });
      assert.equal(res.status, 201);
      const token = res.body.token as string;
      assert.match(token, /^pano_op_[0-9A-Za-z]{38}$/);
      assert.equal((await http(server.url, 'GET', '/api/me', { token })).body.via, 'token');
      // Tokens never need the same-origin rule: a browser cannot attach them on its own.
      assert.equal((await http(server.url, 'POST', '/api/apps', { token, body: { name: 'x' }, headers: { origin: 'https://elsewhere.example' } })).status, 201);
      assert.equal((await http(server.url, 'DELETE', '/api/auth/token', { token })).status, 204);
      const after = await http(server.url, 'GET', '/api/me', { token });
      assert.equal(after.status, 401);
      const bad = await http(server.url, 'GET', '/api/me', { token: 'pano_op_nonsense' });
      assert.equal(bad.status, 401);
      assert.equal(bad.body.error.code, 'unauthenticated');
    });

    it('every /api route but sign-up and sign-in needs an operator', async () => {
      for (const [method, path] of [['GET', '/api/me'], ['GET', '/api/apps'], ['POST', '/api/apps'], ['GET', '/api/apps/logi_000000000000/usage']] as const) {
        const res = await http(server.url, method, path, method === 'POST' ? { body: { name: 'x' } } : {});
        assert.equal(res.status, 401, `${method} ${path}`);
        assert.equal(res.body.error.code, 'unauthenticated');
      }
    });
  });
}

// Each hash at this cost is about half a second of CPU here, so one suite, on one engine (the cost is
// the service's, not the store's), checks it; the others use the harness's cheaper cost.
describe('a server as shipped hashes passwords at OWASP\'s scrypt cost', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer('sqlite', { passwordScryptN: loadServerConfig({}).passwordScryptN });
  });
  after(() => server.close());

  it('N=2^17, r=8, p=1, recorded in the hash; the password signs in, a wrong one does not', async () => {
    assert.equal(server.services.config.passwordScryptN, 2 ** 17);
    assert.equal((await http(server.url, 'POST', '/api/auth/signup', { body: { email: 'owner@example.com', password } })).status, 201);
    const account = await server.store.accounts.findByEmail('owner@example.com');
    assert.ok(account);
    assert.match(account.passwordHash, /^scrypt\$131072\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.equal((await http(server.url, 'POST', '/api/auth/login', { body: { email: 'owner@example.com', password } })).status, 200);
    assert.equal((await http(server.url, 'POST', '/api/auth/login', { body: { email: 'owner@example.com', password: 'not the password' } })).status, 401);
  });
});

describe('sign-up closed', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer('sqlite', { signup: 'closed' });
  });
  after(() => server.close());

  it('lets only the first account (the owner) sign up', async () => {
    assert.equal((await http(server.url, 'POST', '/api/auth/signup', { body: { email: 'owner@example.com', password } })).status, 201);
    const res = await http(server.url, 'POST', '/api/auth/signup', { body: { email: 'late@example.com', password } });
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'signup_closed');
    assert.equal(await server.store.accounts.count(), 1);
  });
});

for (const engine of ENGINES) {
  describe(`sign-up closed, concurrent first sign-ups [${engine}]`, () => {
    let server: RunningServer;
    before(async () => {
      server = await startServer(engine, { signup: 'closed' });
    });
    after(() => server.close());

    it('lets exactly one of six simultaneous sign-ups on a fresh server become the owner', async () => {
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => http(server.url, 'POST', '/api/auth/signup', { body: { email: `racer${i}@example.com`, password } })),
      );
      const statuses = answers.map((a) => a.status).sort();
      assert.deepEqual(statuses, [201, 403, 403, 403, 403, 403]);
      for (const a of answers.filter((x) => x.status === 403)) assert.equal(a.body.error.code, 'signup_closed');
      assert.equal(await server.store.accounts.count(), 1);
    });
  });
}

for (const engine of ENGINES) {
  describe(`sign-in throttles and origins [${engine}]`, () => {
    let server: RunningServer;
    let secure: RunningServer;
    before(async () => {
      server = await startServer(engine);
      secure = await startServer(engine, { secureCookies: true });
      for (const s of [server, secure]) {
        assert.equal((await http(s.url, 'POST', '/api/auth/signup', { body: { email: 'target@example.com', password } })).status, 201);
      }
      assert.equal((await http(server.url, 'POST', '/api/auth/signup', { body: { email: 'bystander@example.com', password } })).status, 201);
    });
    after(async () => {
      await server.close();
      await secure.close();
    });

    it('after 10 wrong passwords for one account, its sign-ins are 429 (right password included) while other accounts sign in; unknown emails alike', async () => {
      for (let i = 0; i < 10; i++) {
        const wrong = await http(server.url, 'POST', i % 2 === 0 ? '/api/auth/login' : '/api/auth/token', { body: { email: i === 3 ? 'TARGET@example.com' : 'target@example.com', password: `guess ${i}` } });
        assert.equal(wrong.status, 401, `guess ${i}`);
      }
      for (const route of ['/api/auth/login', '/api/auth/token']) {
        const right = await http(server.url, 'POST', route, { body: { email: 'target@example.com', password } });
        assert.equal(right.status, 429, right.text);
        assert.equal(right.body.error.code, 'rate_limited');
        const retry = Number(right.headers.get('retry-after'));
        assert.ok(retry > 800 && retry <= 900, `Retry-After ${retry} s: the rest of the 15-minute window`);
        assert.equal(right.headers.getSetCookie().length, 0, 'no session');
      }
      // The per-address limit (20 a minute) is not what refused it: another account signs in from the same address.
      assert.equal((await http(server.url, 'POST', '/api/auth/login', { body: { email: 'bystander@example.com', password } })).status, 200);
      for (let i = 0; i < 10; i++) await http(server.url, 'POST', '/api/auth/login', { body: { email: 'ghost@example.com', password: `guess ${i}` } });
      assert.equal((await http(server.url, 'POST', '/api/auth/login', { body: { email: 'ghost@example.com', password } })).status, 429, 'an unknown email is throttled the same way');
    });

    it('a success clears the count: nine wrong, one right, nine wrong again are all answered', async () => {
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 9; i++) assert.equal((await http(secure.url, 'POST', '/api/auth/token', { body: { email: 'target@example.com', password: 'nope' } })).status, 401);
        assert.equal((await http(secure.url, 'POST', '/api/auth/token', { body: { email: 'target@example.com', password } })).status, 201);
      }
    });

    it('the same-origin check compares the scheme: http://host is not https://host, and behind TLS (secure cookies) only https is ours', async () => {
      const login = await http(server.url, 'POST', '/api/auth/login', { body: { email: 'bystander@example.com', password } });
      const cookie = sessionCookie(login.headers).split(';')[0]!;
      const host = new URL(server.url).host;
      const otherScheme = await http(server.url, 'POST', '/api/apps', { body: { name: 'x' }, headers: { cookie, origin: `https://${host}` } });
      assert.equal(otherScheme.status, 403);
      assert.equal(otherScheme.body.error.code, 'csrf_rejected');
      assert.equal((await http(server.url, 'POST', '/api/apps', { body: { name: 'x' }, headers: { cookie, origin: `http://${host}` } })).status, 201);

      // Behind a TLS-terminating proxy the server sees HTTP, the browser says https.
      const secureHost = new URL(secure.url).host;
      const plain = await http(secure.url, 'POST', '/api/auth/login', { body: { email: 'target@example.com', password }, headers: { origin: `http://${secureHost}` } });
      assert.equal(plain.status, 403);
      assert.equal(plain.body.error.code, 'csrf_rejected');
      const tls = await http(secure.url, 'POST', '/api/auth/login', { body: { email: 'target@example.com', password }, headers: { origin: `https://${secureHost}` } });
      assert.equal(tls.status, 200, tls.text);
      assert.match(tls.headers.getSetCookie()[0]!, /; Secure/);
    });
  });
}
