"""The X-Panopticon-Signature header of HMAC mode (docs/api.md, "HMAC request signing"):

    t=<unix seconds>,v1=<hex HMAC-SHA256(pak_secret, "<t>.<METHOD>.<path and query>.<raw body>")>

Signed when a request is sent, not when a trace is recorded: the server accepts a timestamp at most
300 s away from its clock, and a resend after an outage may come much later.
"""
from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["signature_header"]


def signature_header(
    secret: str,
    method: str,
    path_and_query: str,
    body: bytes | str = b"",
    now: float | None = None,
) -> str:
    """The header value for one request.

    ``path_and_query`` is exactly what the request line carries (``/panopticon/traces``,
    ``/panopticon/approvals/apr_x?wait=30``); ``body`` the exact bytes sent (a ``str`` is encoded
    as UTF-8); a request without a body signs ``b""``.
    """
    t = int(time.time() if now is None else now)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    prefix = ("%d.%s.%s." % (t, method.upper(), path_and_query)).encode("utf-8")
    mac = hmac.new(secret.encode("utf-8"), prefix + raw, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)
