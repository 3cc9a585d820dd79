"""Verifying the gateway's job webhooks: ``X-Signature: sha256=<hex HMAC-SHA256 of
the exact body, keyed by WEBHOOK_SECRET>``."""

from __future__ import annotations

import hashlib
import hmac
from typing import Optional, Union

SIGNATURE_HEADER = "X-Signature"


def sign_webhook(body: Union[bytes, str], secret: Union[bytes, str]) -> str:
    """The ``X-Signature`` value the gateway sends for ``body``."""
    b = body.encode() if isinstance(body, str) else body
    k = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(k, b, hashlib.sha256).hexdigest()


def verify_webhook_signature(body: Union[bytes, str], header: Optional[str], secret: Union[bytes, str]) -> bool:
    """True when ``header`` (the ``X-Signature`` value) signs ``body`` (the raw request
    body, before any JSON parsing) with ``secret``. Compared in constant time."""
    if not header or not secret:
        return False
    expected = sign_webhook(body, secret)
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())
