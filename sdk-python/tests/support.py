"""Test support: real Panopticon servers (``node dist/src/cli/main.js serve``) on real databases.

Every server gets a store of its own, a fresh SQLite file or a fresh PostgreSQL schema in the
``test`` database (dropped afterwards), as ``test/support/harness.ts`` does. Engines come from
``PANOPTICON_TEST_ENGINES`` (``sqlite``, ``postgres`` or both, comma separated; both when unset),
the database from ``PANOPTICON_TEST_PG_URL``. The server must be built first (``npm run build``).
"""
from __future__ import annotations

import atexit
import http.client
import logging
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_ROOT = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(SDK_ROOT)
sys.path.insert(0, os.path.join(SDK_ROOT, "src"))

# The SDK logs delivery problems on the "panopticon" logger; tests assert on them through on_error.
logging.getLogger("panopticon").setLevel(logging.CRITICAL)

ALL_ENGINES = ("sqlite", "postgres")
PG_URL = os.environ.get("PANOPTICON_TEST_PG_URL") or "postgres://postgres@127.0.0.1:5432/test"
NODE = os.environ.get("PANOPTICON_NODE") or shutil.which("node") or "node"
SERVER_JS = os.path.join(REPO_ROOT, "dist", "src", "cli", "main.js")
#: One server key for every test server, so a restarted server reads the secrets it stored.
SECRET_KEY = "07" * 32


def _engines() -> Tuple[str, ...]:
    spec = os.environ.get("PANOPTICON_TEST_ENGINES", "").strip()
    if spec == "":
        return ALL_ENGINES
    names = [n.strip() for n in spec.split(",") if n.strip()]
    for n in names:
        if n not in ALL_ENGINES:
            raise RuntimeError('PANOPTICON_TEST_ENGINES: unknown engine "%s" (expected sqlite, postgres or both)' % n)
    return tuple(e for e in ALL_ENGINES if e in names)


ENGINES = _engines()


def require_built_server() -> None:
    if not os.path.exists(SERVER_JS):
        raise RuntimeError("the server is not built: %s is missing (run `npm run build` at the repository root)" % SERVER_JS)


# --- stores -----------------------------------------------------------------------------------------

class Store:
    """A fresh store: a SQLite file in a temp dir, or a PostgreSQL schema."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        if engine == "sqlite":
            self.dir = tempfile.mkdtemp(prefix="panopticon-py-db-")
            self.db = os.path.join(self.dir, "panopticon.db")
        else:
            self.dir = tempfile.mkdtemp(prefix="panopticon-py-data-")
            self.schema = "pano_py_%d_%s" % (os.getpid(), secrets.token_hex(4))
            self.db = "%s?schema=%s" % (PG_URL, self.schema)
        self.closed = False

    def drop(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.engine == "postgres":
            script = (
                "const pg = require('pg');"
                "const c = new pg.Client({ connectionString: process.argv[1] });"
                "c.connect().then(() => c.query('DROP SCHEMA IF EXISTS \"' + process.argv[2] + '\" CASCADE'))"
                ".then(() => c.end(), (e) => { console.error(e.message); process.exit(1); });"
            )
            subprocess.run([NODE, "-e", script, PG_URL, self.schema], cwd=REPO_ROOT, check=False, timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- servers ----------------------------------------------------------------------------------------

class Server:
    """``logi serve`` as a child process; can be killed and restarted on the same port and store."""

    def __init__(self, store: Store, env: Optional[Dict[str, str]] = None) -> None:
        require_built_server()
        self.store = store
        self.extra_env = dict(env or {})
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.output: List[str] = []
        self.url = ""

    def start(self) -> "Server":
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", ""),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PANOPTICON_DB": self.store.db,
            "PANOPTICON_DATA_DIR": self.store.dir,
            "PANOPTICON_SECRET_KEY": SECRET_KEY,
            "PANOPTICON_LOG_LEVEL": "warn",
            # The least scrypt cost a server takes: OWASP's (the default) is 0.6 s of CPU per hash.
            "PANOPTICON_PASSWORD_SCRYPT_N": "16384",
        }
        env.update(self.extra_env)
        self.proc = subprocess.Popen([NODE, SERVER_JS, "serve"], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        found = threading.Event()

        def pump(stream: Any) -> None:
            for line in stream:
                self.output.append(line)
                m = re.search(r"listening on (http://\S+)", line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()
            stream.close()
            found.set()

        threading.Thread(target=pump, args=(self.proc.stdout,), daemon=True).start()
        if not found.wait(30) or not self.url:
            self.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.output))
        self.port = urllib.parse.urlsplit(self.url).port or 0
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> "Server":
        """Starts again on the same port and store (retrying while the port is still taken)."""
        deadline = time.monotonic() + 15
        while True:
            try:
                return self.start()
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        self.kill(signal.SIGTERM)
        self.store.drop()


# --- the operator API -------------------------------------------------------------------------------

def request(url: str, method: str, path: str, body: Any = None, token: Optional[str] = None,
            headers: Optional[Dict[str, str]] = None, raw: Optional[bytes] = None) -> Tuple[int, Any]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    h = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    if token is not None:
        h["Authorization"] = "Bearer " + token
    try:
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        text = resp.read().decode()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(text) if text else None
    except ValueError:
        return resp.status, text


class App:
    def __init__(self, client_id: str, pak: str) -> None:
        self.client_id = client_id
        self.pak = pak


class Operator:
    """An account on a server, with an operator token; creates apps and reads what was stored."""

    def __init__(self, server: Server) -> None:
        self.server = server
        email = "py-%d-%s@example.com" % (os.getpid(), secrets.token_hex(3))
        password = "correct horse battery staple"
        status, body = request(server.url, "POST", "/api/auth/signup", {"email": email, "password": password})
        assert status == 201, body
        status, body = request(server.url, "POST", "/api/auth/token", {"email": email, "password": password})
        assert status == 201, body
        self.token = body["token"]

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, method: str, path: str, body: Any = None) -> Tuple[int, Any]:
        return request(self.url, method, path, body, token=self.token)

    def ok(self, method: str, path: str, body: Any = None, expect: Tuple[int, ...] = (200, 201)) -> Any:
        status, answer = self.call(method, path, body)
        if status not in expect:
            raise AssertionError("%s %s: %d %s" % (method, path, status, answer))
        return answer

    def app(self) -> App:
        created = self.ok("POST", "/api/apps", {"name": "python sdk test"})
        cid = created["client_id"]
        self.ok("PATCH", "/api/apps/%s" % cid, {"panopticon_enabled": True})
        pak = self.ok("POST", "/api/apps/%s/paks" % cid)["pak"]
        return App(cid, pak)

    def traces(self, client_id: str) -> List[Dict[str, Any]]:
        """Every stored trace of the app (all pages of the timeline)."""
        out: List[Dict[str, Any]] = []
        cursor = None
        while True:
            q = "limit=500" + ("&cursor=" + urllib.parse.quote(cursor) if cursor else "")
            page = self.ok("GET", "/api/apps/%s/traces?%s" % (client_id, q))
            out.extend(page["traces"])
            cursor = page["next_cursor"]
            if not cursor:
                return out

    def usage_total(self, client_id: str) -> int:
        page = self.ok("GET", "/api/apps/%s/usage?since=2000-01-01&until=2199-12-31" % client_id)
        return page["totals"]["traces"]

    def rule(self, client_id: str, **rule: Any) -> Dict[str, Any]:
        rule.setdefault("match", {})
        return self.ok("POST", "/api/apps/%s/policies/rules" % client_id, rule)["rule"]

    def pending_approvals(self, client_id: str) -> List[Dict[str, Any]]:
        return self.ok("GET", "/api/apps/%s/approvals?status=pending" % client_id)["approvals"]

    def wait_pending_approval(self, client_id: str, timeout: float = 10.0) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.pending_approvals(client_id)
            if pending:
                return pending[0]
            time.sleep(0.05)
        raise AssertionError("no pending approval appeared")


# --- shared servers (one per engine for the whole run) ---------------------------------------------

_shared: Dict[str, Tuple[Server, Operator]] = {}
_shared_lock = threading.Lock()
_boot: Optional[threading.Thread] = None
_boot_error: List[BaseException] = []


def _start_shared() -> None:
    started: Dict[str, Any] = {}

    def start(e: str) -> None:
        try:
            server = Server(Store(e)).start()
            started[e] = (server, Operator(server))
        except BaseException as err:  # noqa: BLE001 - re-raised in shared()
            started[e] = err

    threads = [threading.Thread(target=start, args=(e,)) for e in ENGINES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [v for v in started.values() if isinstance(v, BaseException)]
    if errors:
        for v in started.values():
            if not isinstance(v, BaseException):
                v[0].close()
        _boot_error.append(errors[0])
        return
    _shared.update(started)


def prestart() -> None:
    """Starts the run's servers in the background (modules that use them call it when imported, so
    the servers boot while the tests that need none run)."""
    global _boot
    with _shared_lock:
        if _boot is None:
            require_built_server()
            _boot = threading.Thread(target=_start_shared, name="servers-boot", daemon=True)
            _boot.start()


def shared(engine: str) -> Tuple[Server, Operator]:
    """The run's server of ``engine`` and an account on it. The servers of every selected engine
    start together, once."""
    prestart()
    assert _boot is not None
    _boot.join()
    if _boot_error:
        raise _boot_error[0]
    return _shared[engine]


@atexit.register
def _close_shared() -> None:
    if _boot is not None:
        _boot.join(120)  # a boot still under way: wait for its servers, to stop them
    for server, _ in _shared.values():
        server.close()
    _shared.clear()


def eventually(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %.1f s" % timeout)
        time.sleep(interval)


def self_signed_certificate(directory: str) -> Tuple[str, str]:
    """A certificate for 127.0.0.1 and localhost, and its key (openssl CLI)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d" % port


def per_engine(base: type) -> Dict[str, type]:
    """Concrete TestCase classes of ``base`` (which has an ``engine`` attribute), one per engine."""
    out = {}
    for engine in ENGINES:
        name = "%s_%s" % (base.__name__.lstrip("_"), engine)
        out[name] = type(name, (base, unittest.TestCase), {"engine": engine})
    return out


# --- a fault-injecting HTTP proxy in front of a real server ----------------------------------------

class Fault:
    """What the proxy does with one matching request instead of a plain relay."""

    def __init__(self, status: Optional[int] = None, headers: Optional[Dict[str, str]] = None, body: Any = None,
                 drop_response: bool = False) -> None:
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.drop_response = drop_response


class Proxy:
    """Relays to ``target`` and records every request; ``faults`` (a list, consumed in order) replaces
    answers: a Fault with ``status`` answers without relaying, ``drop_response`` relays (the server
    commits) then closes the connection without answering (a lost acknowledgement). ``hold`` makes
    every request answer 503 until cleared."""

    def __init__(self, target: str, tls: Optional[Tuple[str, str]] = None) -> None:
        parts = urllib.parse.urlsplit(target)
        self.target = (parts.hostname, parts.port)
        self.log: List[Tuple[float, str, str, bytes]] = []  # (time, method, path, body)
        self.faults: List[Fault] = []
        self.hold = False
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    proxy.log.append((time.monotonic(), self.command, self.path, body))
                    fault = proxy.faults.pop(0) if proxy.faults else None
                    if fault is None and proxy.hold:
                        fault = Fault(503, {"Retry-After": "0"}, {"error": {"code": "store_unavailable", "message": "held"}})
                if fault is not None and fault.status is not None:
                    self.reply(fault.status, fault.headers, json.dumps(fault.body).encode() if fault.body is not None else b"")
                    return
                upstream = http.client.HTTPConnection(*proxy.target, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
                try:
                    upstream.request(self.command, self.path, body=body if body else None, headers=headers)
                    resp = upstream.getresponse()
                    data = resp.read()
                except OSError:
                    self.close_connection = True
                    return
                finally:
                    upstream.close()
                if fault is not None and fault.drop_response:
                    self.close_connection = True
                    return
                self.reply(resp.status, {k: v for k, v in resp.getheaders() if k.lower() in ("content-type", "retry-after")}, data)

            def reply(self, status: int, headers: Dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if data and "content-type" not in {k.lower() for k in headers}:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls is not None:  # (certificate file, key file): the proxy speaks HTTPS to the client
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = "%s://127.0.0.1:%d" % (scheme, self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def batches(self) -> List[Tuple[float, List[str]]]:
        """(time, event ids) of every trace batch the proxy received, in order."""
        with self.lock:
            entries = list(self.log)
        return [(t, [x["event_id"] for x in json.loads(b)["traces"]]) for t, m, p, b in entries if p == "/panopticon/traces"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
