"""Rate-limit headers of a gateway answer (``RateLimit``, ``RateLimit-Policy``,
``X-RateLimit-Limit/Remaining/Reset``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional

_PARAM = re.compile(r"(?:^|[;,\s])(limit|remaining|reset|r|t|l)\s*=\s*\"?(\d+)")


@dataclass(frozen=True)
class RateLimit:
    """What the gateway said about the caller's rate limit on this answer.

    ``limit``/``remaining``/``reset`` (seconds until the window resets) come from
    ``X-RateLimit-*`` when present, else from the IETF ``RateLimit`` header (both its
    ``limit=, remaining=, reset=`` and its ``r=, t=`` forms). ``policy`` and
    ``header`` are the raw ``RateLimit-Policy`` and ``RateLimit`` values.
    """

    limit: Optional[int] = None
    remaining: Optional[int] = None
    reset: Optional[int] = None
    policy: Optional[str] = None
    header: Optional[str] = None


def _int(v: Optional[str]) -> Optional[int]:
    if v is None:
        return None
    try:
        return int(v.strip())
    except ValueError:
        return None


def parse_rate_limit(headers: Mapping[str, str]) -> Optional[RateLimit]:
    """``None`` when the answer carries none of the rate-limit headers."""
    h = {k.lower(): v for k, v in headers.items()}
    header = h.get("ratelimit")
    policy = h.get("ratelimit-policy")
    limit = _int(h.get("x-ratelimit-limit"))
    remaining = _int(h.get("x-ratelimit-remaining"))
    reset = _int(h.get("x-ratelimit-reset"))
    if header is None and policy is None and limit is None and remaining is None and reset is None:
        return None
    params: dict[str, int] = {}
    for name, value in _PARAM.findall(header or ""):
        key = {"r": "remaining", "t": "reset", "l": "limit"}.get(name, name)
        params.setdefault(key, int(value))
    if limit is None:
        limit = params.get("limit")
        if limit is None and policy:
            m = re.match(r"\s*(?:\"[^\"]*\";\s*q=)?(\d+)", policy)
            limit = int(m.group(1)) if m else None
    if remaining is None:
        remaining = params.get("remaining")
    if reset is None:
        reset = params.get("reset")
    return RateLimit(limit=limit, remaining=remaining, reset=reset, policy=policy, header=header)


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime
    import datetime as _dt

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return max(0.0, (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds())
