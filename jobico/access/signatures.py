"""Checking a posted event's credentials: an ingest key, or a sender's webhook signature.

Four kinds, as their senders document them:

* `bearer`: `Authorization: Bearer <key>`, the key one of the secret's values.
* `standard-webhooks` (standardwebhooks.com): `webhook-signature` holds space-separated
  `v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the
  base64 part of a `whsec_` secret; several signatures let a sender rotate its secret.
* `github`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
* `stripe`: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">[,v1=...]`,
  keyed with the whole secret text.

Timestamps further than TOLERANCE_S from now, either way, are refused (replays). Every
comparison is constant time; a refusal never says which part was wrong or echoes what was sent.

A signed delivery is deduplicated by what its signature covers (`delivery_id`), never by an
unsigned header: a replay with a fresh `Idempotency-Key` would otherwise be queued again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Sequence

from jobico.errors import Unauthenticated

KINDS = ("bearer", "standard-webhooks", "github", "stripe")
TOLERANCE_S = 300
MAX_HEADER = 8192  # longer credential headers are refused before any work

Header = Callable[[str], str | None]


def check(kind: str, secrets: Sequence[str], header: Header, body: bytes, now: float) -> None:
    """Unauthenticated unless the request carries valid credentials of `kind`."""
    if not secrets or not _CHECKS[kind](secrets, header, body, now):
        raise Unauthenticated("missing or bad credentials")


# --- the four kinds ------------------------------------------------------------------------------


def _bearer(secrets: Sequence[str], header: Header, body: bytes, now: float) -> bool:
    scheme, _, key = (_get(header, "authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        return False
    sent = hashlib.sha256(_raw(key.strip())).digest()  # equal lengths: no length leak
    return _matches([hashlib.sha256(_raw(s)).digest() for s in secrets], [sent])


def _standard(secrets: Sequence[str], header: Header, body: bytes, now: float) -> bool:
    msg_id, stamp = _get(header, "webhook-id"), _get(header, "webhook-timestamp")
    sent = _get(header, "webhook-signature")
    if not msg_id or not sent or not _fresh(stamp, now):
        return False
    offered = [sig for v, _, sig in (p.partition(",") for p in sent.split()) if v == "v1"]
    for secret in secrets:
        key = standard_key(secret)
        if key is None:
            continue
        if _matches([sign_standard_webhooks(key, msg_id, int(stamp or 0), body)], offered):
            return True
    return False


def _github(secrets: Sequence[str], header: Header, body: bytes, now: float) -> bool:
    sent = _get(header, "x-hub-signature-256")
    return sent is not None and _matches([sign_github(s, body) for s in secrets], [sent])


def _stripe(secrets: Sequence[str], header: Header, body: bytes, now: float) -> bool:
    stamps, offered = _stripe_fields(header)
    if len(stamps) != 1 or not offered or not _fresh(stamps[0], now):
        return False
    expected = [sign_stripe(s, int(stamps[0]), body).rpartition("v1=")[2] for s in secrets]
    return _matches(expected, offered)


_CHECKS: dict[str, Callable[[Sequence[str], Header, bytes, float], bool]] = {
    "bearer": _bearer,
    "standard-webhooks": _standard,
    "github": _github,
    "stripe": _stripe,
}


def _stripe_fields(header: Header) -> tuple[list[str], list[str]]:
    """The `t` stamps and `v1` signatures of a Stripe-Signature header."""
    fields = [p.partition("=") for p in (_get(header, "stripe-signature") or "").split(",")]
    stamps = [v.strip() for k, _, v in fields if k.strip() == "t"]
    return stamps, [v.strip() for k, _, v in fields if k.strip() == "v1"]


# --- what a signature vouches for ---------------------------------------------------------------


def delivery_id(kind: str, header: Header, body: bytes) -> str | None:
    """The identity of a delivery that `check` accepted, taken only from what its signature
    covers, so that a replay carries the same one; None for `bearer`, which signs nothing (the
    key's holder may send its own Idempotency-Key).

    Standard Webhooks signs its `webhook-id`, which a sender keeps across retries. GitHub signs
    the body alone (its `X-GitHub-Delivery` is not signed), Stripe `t.body`: their id is a
    digest of that, so a replay within the tolerance is the same delivery, and a Stripe retry,
    signed anew with a new `t`, a new one."""
    if kind == "standard-webhooks":
        return _get(header, "webhook-id") or ""
    if kind == "github":
        return "sha256:" + hashlib.sha256(body).hexdigest()
    if kind == "stripe":
        stamps, _ = _stripe_fields(header)
        signed = f"{stamps[0] if stamps else ''}.".encode() + body
        return "sha256:" + hashlib.sha256(signed).hexdigest()
    return None


# --- signing, as a sender does (tests and docs use these) ---------------------------------------


def standard_key(secret: str) -> bytes | None:
    """The HMAC key of a Standard Webhooks secret (`whsec_` + base64), None if malformed."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return None


def sign_standard_webhooks(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign_github(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_stripe(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


# --- plumbing ------------------------------------------------------------------------------------


def _get(header: Header, name: str) -> str | None:
    value = header(name)
    return value if value is None or len(value) <= MAX_HEADER else None


def _fresh(stamp: str | None, now: float) -> bool:
    if not stamp or not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return False
    return abs(now - int(stamp)) <= TOLERANCE_S


def _matches(expected: Sequence[str | bytes], offered: Sequence[str | bytes]) -> bool:
    """Whether any offered value equals any expected one, each pair compared in constant time."""
    return any(hmac.compare_digest(_raw(e), _raw(o)) for e in expected for o in offered)


def _raw(value: str | bytes) -> bytes:
    # compare_digest refuses non-ASCII text; headers may carry anything.
    return value if isinstance(value, bytes) else value.encode("utf-8", "replace")
