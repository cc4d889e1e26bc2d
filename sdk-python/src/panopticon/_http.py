"""HTTP/1.1 to the Panopticon server with the standard library only.

Two transports share one request shape: ``Transport.request`` (blocking, ``http.client``, for the
delivery thread and the sync API) and ``Transport.arequest`` (``asyncio`` streams, for the async
API: an awaited check or approval poll holds no thread, and cancelling the task ends the request).
Both keep idle keep-alive connections (per event loop for asyncio) and sign every request when a
``pak_secret`` is set.

Neither reads proxy environment variables (``HTTP_PROXY``...): the server is reached directly.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import socket
import ssl
import threading
import time
import weakref
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from ._sign import signature_header

__all__ = ["HttpAnswer", "Transport", "TransportError"]

#: Idle pooled connections older than this are closed rather than reused (the server keeps an idle
#: connection 72 s; reusing one it is about to close would cost a failed attempt).
IDLE_REUSE_SECONDS = 30.0
MAX_IDLE = 4
USER_AGENT = "panopticon-python/0.1.0"


class TransportError(Exception):
    """The request got no complete HTTP answer. ``code`` is ``network`` or ``timeout``."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class HttpAnswer:
    __slots__ = ("status", "headers", "body", "text")

    def __init__(self, status: int, headers: Dict[str, str], raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.text = raw.decode("utf-8", "replace")
        body: Any = None
        if self.text != "":
            try:
                body = json.loads(self.text)
            except ValueError:
                body = self.text
        self.body = body

    def error_code(self) -> str:
        err = self.body.get("error") if isinstance(self.body, dict) else None
        code = err.get("code") if isinstance(err, dict) else None
        return code if isinstance(code, str) else "http_%d" % self.status

    def error_message(self) -> Optional[str]:
        err = self.body.get("error") if isinstance(self.body, dict) else None
        msg = err.get("message") if isinstance(err, dict) else None
        return msg if isinstance(msg, str) else None


def _stale_connection_error(err: BaseException) -> bool:
    """Errors a keep-alive connection the server already closed gives before any answer byte."""
    return isinstance(err, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError))


class Transport:
    def __init__(self, url: str, pak: str, pak_secret: Optional[str], ssl_context: Optional[ssl.SSLContext]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL, got %r" % (url,))
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        # A base URL with a path (https://gw.example/panopticon-api) is prepended to every request
        # path; what is signed is the API path the server routes, as the TypeScript SDK does.
        self.prefix = parts.path.rstrip("/")
        self.pak = pak
        self.pak_secret = pak_secret
        self.ssl_context = ssl_context if ssl_context is not None else (ssl.create_default_context() if self.https else None)
        self._idle: List[Tuple[http.client.HTTPConnection, float]] = []
        self._lock = threading.Lock()
        self._active: Dict[int, http.client.HTTPConnection] = {}
        self._aidle: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool]" = weakref.WeakKeyDictionary()

    # --- shared -------------------------------------------------------------------------------

    def headers_for(self, method: str, path: str, body: bytes) -> Dict[str, str]:
        headers = {
            "Authorization": "Bearer " + self.pak,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if body:
            headers["Content-Type"] = "application/json"
        if self.pak_secret is not None:
            headers["X-Panopticon-Signature"] = signature_header(self.pak_secret, method, path, body)
        return headers

    # --- blocking -----------------------------------------------------------------------------

    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _take_idle(self) -> Optional[http.client.HTTPConnection]:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                conn, since = self._idle.pop()
                if now - since < IDLE_REUSE_SECONDS:
                    return conn
                conn.close()
        return None

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def request(self, method: str, path: str, body: bytes = b"", timeout: float = 10.0, slot: Optional[int] = None) -> HttpAnswer:
        """One request; raises TransportError when no complete answer came.

        ``timeout`` bounds connecting and each wait for data. ``slot`` names the calling thread's
        role so ``abort(slot)`` can cut its request short from another thread (shutdown).
        """
        headers = self.headers_for(method, path, body)
        conn = self._take_idle()
        reused = conn is not None
        for attempt in (0, 1):
            if conn is None:
                conn = self._new_connection(timeout)
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            if slot is not None:
                with self._lock:
                    self._active[slot] = conn
            try:
                conn.request(method, self.prefix + path, body=body if body else None, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                answer = HttpAnswer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw)
                if resp.will_close:
                    conn.close()
                else:
                    self._give_back(conn)
                return answer
            except BaseException as err:
                conn.close()
                conn = None
                if attempt == 0 and reused and _stale_connection_error(err):
                    # The server had closed this idle connection: the request never reached it.
                    continue
                if isinstance(err, socket.timeout):
                    raise TransportError("%s %s: no answer within %.3g s" % (method, path, timeout), "timeout") from None
                if isinstance(err, (OSError, http.client.HTTPException)):
                    raise TransportError("%s %s: %s" % (method, path, _describe(err)), "network") from None
                raise
            finally:
                if slot is not None:
                    with self._lock:
                        self._active.pop(slot, None)
        raise AssertionError("unreachable")

    def abort(self, slot: int) -> None:
        """Ends the request running in ``slot`` (it then fails with a network error)."""
        with self._lock:
            conn = self._active.get(slot)
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    # --- asyncio ------------------------------------------------------------------------------

    async def arequest(self, method: str, path: str, body: bytes = b"", timeout: float = 10.0) -> HttpAnswer:
        """The asyncio twin of ``request``; ``timeout`` bounds the whole exchange."""
        loop = asyncio.get_running_loop()
        headers = self.headers_for(method, path, body)
        head = ["%s %s HTTP/1.1" % (method, self.prefix + path), "Host: %s" % self._host_header()]
        head += ["%s: %s" % (k, v) for k, v in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            head.append("Content-Length: %d" % len(body))
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        deadline = loop.time() + timeout
        pooled = self._aidle.get(loop)
        if pooled is None:
            pooled = self._aidle[loop] = _LoopPool()
            await pooled.guard.__anext__()
        conn = self._atake(pooled, loop)
        reused = conn is not None
        for attempt in (0, 1):
            got_bytes = [False]
            try:
                if conn is None:
                    conn = await asyncio.wait_for(self._aconnect(), max(0.0, deadline - loop.time()))
                reader, writer = conn
                status, resp_headers, raw, keep = await asyncio.wait_for(
                    self._aexchange(reader, writer, payload, method, got_bytes), max(0.0, deadline - loop.time()))
                if keep and len(pooled) < MAX_IDLE:
                    pooled.append((reader, writer, loop.time()))
                else:
                    writer.close()
                return HttpAnswer(status, resp_headers, raw)
            except asyncio.TimeoutError:
                _aclose(conn)
                raise TransportError("%s %s: no answer within %.3g s" % (method, path, timeout), "timeout") from None
            except asyncio.CancelledError:
                _aclose(conn)
                raise
            except (OSError, EOFError, ValueError, asyncio.IncompleteReadError, ssl.SSLError) as err:
                _aclose(conn)
                conn = None
                if attempt == 0 and reused and not got_bytes[0]:
                    continue
                raise TransportError("%s %s: %s" % (method, path, _describe(err)), "network") from None
        raise AssertionError("unreachable")

    def _host_header(self) -> str:
        default = 443 if self.https else 80
        host = "[%s]" % self.host if ":" in self.host else self.host
        return host if self.port == default else "%s:%d" % (host, self.port)

    def _atake(self, pooled: list, loop: asyncio.AbstractEventLoop) -> Optional[Tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        now = loop.time()
        while pooled:
            reader, writer, since = pooled.pop()
            if now - since < IDLE_REUSE_SECONDS and not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    async def _aconnect(self) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.https:
            return await asyncio.open_connection(self.host, self.port, ssl=self.ssl_context, server_hostname=self.host)
        return await asyncio.open_connection(self.host, self.port)

    @staticmethod
    async def _aexchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes, method: str, got_bytes: list) -> Tuple[int, Dict[str, str], bytes, bool]:
        writer.write(payload)
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                raise EOFError("connection closed before an answer")
            got_bytes[0] = True
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise ValueError("not an HTTP/1.x status line: %r" % line[:80])
            status = int(parts[1])
            headers: Dict[str, str] = {}
            while True:
                h = await reader.readline()
                if h in (b"\r\n", b"\n"):
                    break
                if not h:
                    raise EOFError("connection closed inside the headers")
                name, _, value = h.decode("latin-1").partition(":")
                key = name.strip().lower()
                headers[key] = (headers[key] + ", " + value.strip()) if key in headers else value.strip()
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            break
        keep = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
        if method == "HEAD" or status in (204, 304):
            return status, headers, b"", keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size_line = await reader.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            return status, headers, b"".join(chunks), keep
        if "content-length" in headers:
            return status, headers, await reader.readexactly(int(headers["content-length"])), keep
        return status, headers, await reader.read(), False


class _LoopPool(list):
    """Idle connections of one event loop. ``guard`` is an async generator parked in its first
    ``yield``: the loop's shutdown (``asyncio.run`` calls ``loop.shutdown_asyncgens()``) closes it,
    and its ``finally`` closes the connections while the loop can still run their close."""

    def __init__(self) -> None:
        super().__init__()
        self.guard = self._guard()

    async def _guard(self):  # type: ignore[no-untyped-def]
        try:
            yield
        finally:
            while self:
                # Idle: nothing to flush. abort() closes at once (close() would start a TLS
                # shutdown the closing loop may not finish).
                writer = self.pop()[1]
                writer.transport.abort()
                writer.close()


def _aclose(conn: Optional[Tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    if conn is not None:
        try:
            conn[1].transport.abort()  # a broken exchange: drop it now, no orderly (TLS) close
            conn[1].close()
        except Exception:  # noqa: BLE001 - closing a broken transport must not mask the real error
            pass


def _describe(err: BaseException) -> str:
    text = str(err)
    return "%s: %s" % (type(err).__name__, text) if text else type(err).__name__
