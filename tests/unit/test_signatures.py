"""Webhook signatures and ingest keys (jobico.access.signatures) against the senders' own
algorithms.

Standard Webhooks' and GitHub's published test vectors are checked as given; Stripe's scheme is
computed here the way its documentation spells it. Then tampering, replays and rotation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest

from jobico.access import signatures
from jobico.access.signatures import Header
from jobico.errors import Unauthenticated

# standard-webhooks/standard-webhooks, libraries' shared test case
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID, SW_TIME = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# docs.github.com, "Validating webhook deliveries": the example secret, payload and signature
GH_SECRET, GH_BODY = "It's a Secret to Everybody", b"Hello, World!"
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
ST_SECRET = "whsec_stripe_test_secret"


def headers(**values: str) -> Header:
    lowered = {k.replace("_", "-").lower(): v for k, v in values.items()}
    return lowered.get


def accepts(kind: str, secrets: list[str], header: Header, body: bytes, now: float) -> bool:
    try:
        signatures.check(kind, secrets, header, body, now)
        return True
    except Unauthenticated:
        return False


def standard(signature: str = SW_SIGNATURE, msg_id: str = SW_ID, stamp: int = SW_TIME) -> Header:
    return headers(webhook_id=msg_id, webhook_timestamp=str(stamp), webhook_signature=signature)


def stripe_header(secret: str, stamp: int, body: bytes) -> str:
    # Stripe: signed_payload = "{t}.{body}", v1 = hex HMAC-SHA256 with the endpoint secret
    v1 = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={v1}"


# --- Standard Webhooks ---------------------------------------------------------------------------


def test_standard_webhooks_published_vector_is_accepted() -> None:
    assert accepts("standard-webhooks", [SW_SECRET], standard(), SW_BODY, SW_TIME)


def test_standard_webhooks_accepts_any_of_several_signatures_for_rotation() -> None:
    header = standard(f"v1,Zm9vYmFy v2,abc {SW_SIGNATURE}")
    assert accepts("standard-webhooks", [SW_SECRET], header, SW_BODY, SW_TIME)


def test_standard_webhooks_receiver_keeps_old_secrets_valid_while_rotating() -> None:
    new = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    assert accepts("standard-webhooks", [new, SW_SECRET], standard(), SW_BODY, SW_TIME)


@pytest.mark.parametrize(
    "body, header",
    [
        (SW_BODY + b" ", standard()),  # body tampered
        (SW_BODY, standard(msg_id="msg_other")),  # id tampered
        (SW_BODY, standard(stamp=SW_TIME + 1)),  # timestamp tampered
        (SW_BODY, standard(SW_SIGNATURE.replace("v1,", "v2,"))),  # unknown version only
        (SW_BODY, standard("")),
        (SW_BODY, headers(webhook_timestamp=str(SW_TIME), webhook_signature=SW_SIGNATURE)),
    ],
)
def test_standard_webhooks_refuses_anything_tampered_or_missing(
    body: bytes, header: Header
) -> None:
    assert not accepts("standard-webhooks", [SW_SECRET], header, body, SW_TIME)


@pytest.mark.parametrize("skew", [-301, 301, 10**9])
def test_standard_webhooks_refuses_timestamps_beyond_five_minutes_either_way(skew: int) -> None:
    assert not accepts("standard-webhooks", [SW_SECRET], standard(), SW_BODY, SW_TIME + skew)
    assert accepts("standard-webhooks", [SW_SECRET], standard(), SW_BODY, SW_TIME + 299)


def test_standard_webhooks_with_the_wrong_secret_or_a_malformed_one_is_refused() -> None:
    for secret in ("whsec_QUFBQQ==", "whsec_not base64!", ""):
        assert not accepts("standard-webhooks", [secret], standard(), SW_BODY, SW_TIME)


# --- GitHub --------------------------------------------------------------------------------------


def test_github_published_vector_is_accepted() -> None:
    header = headers(x_hub_signature_256=GH_SIGNATURE)
    assert accepts("github", [GH_SECRET], header, GH_BODY, 0)
    assert signatures.sign_github(GH_SECRET, GH_BODY) == GH_SIGNATURE


@pytest.mark.parametrize(
    "body, signature",
    [
        (b"Hello, World?", GH_SIGNATURE),
        (GH_BODY, GH_SIGNATURE.upper()),
        (GH_BODY, GH_SIGNATURE.removeprefix("sha256=")),
        (GH_BODY, "sha1=" + GH_SIGNATURE[7:]),
        (GH_BODY, "sha256=é" + GH_SIGNATURE[8:]),  # not ASCII: refused, no crash
    ],
)
def test_github_refuses_a_tampered_body_or_signature(body: bytes, signature: str) -> None:
    assert not accepts("github", [GH_SECRET], headers(x_hub_signature_256=signature), body, 0)
    assert not accepts("github", [GH_SECRET], headers(), body, 0)


# --- Stripe --------------------------------------------------------------------------------------


def test_stripe_signature_made_as_documented_is_accepted() -> None:
    body, now = b'{"id": "evt_1", "type": "charge.succeeded"}', 1_700_000_000
    header = headers(stripe_signature=stripe_header(ST_SECRET, now, body))
    assert accepts("stripe", [ST_SECRET], header, body, now + 10)
    assert signatures.sign_stripe(ST_SECRET, now, body) == stripe_header(ST_SECRET, now, body)


def test_stripe_accepts_any_v1_among_several_and_ignores_v0() -> None:
    body, now = b"{}", 1_700_000_000
    good = stripe_header(ST_SECRET, now, body).split(",")[1]
    header = headers(stripe_signature=f"t={now},v1={'0' * 64},v0=zzz,{good}")
    assert accepts("stripe", [ST_SECRET], header, body, now)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h, now: h.replace(f"t={now}", f"t={now + 1}"),
        lambda h, now: h.replace("v1=", "v0="),
        lambda h, now: h.split(",")[1],  # no timestamp
        lambda h, now: f"t={now},{h}",  # two timestamps
        lambda h, now: "",
    ],
)
def test_stripe_refuses_a_tampered_header(mutate: Callable[[str, int], str]) -> None:
    body, now = b"{}", 1_700_000_000
    header = headers(stripe_signature=mutate(stripe_header(ST_SECRET, now, body), now))
    assert not accepts("stripe", [ST_SECRET], header, body, now)


def test_stripe_refuses_a_replay_older_than_five_minutes() -> None:
    body, then = b"{}", 1_700_000_000
    header = headers(stripe_signature=stripe_header(ST_SECRET, then, body))
    assert not accepts("stripe", [ST_SECRET], header, body, then + 301)
    assert not accepts("stripe", [ST_SECRET], header, b"{ }", then)


# --- bearer ingest keys --------------------------------------------------------------------------


def test_bearer_accepts_any_current_key_and_nothing_else() -> None:
    keys = ["key-new", "key-old"]
    assert accepts("bearer", keys, headers(authorization="Bearer key-old"), b"", 0)
    assert accepts("bearer", keys, headers(authorization="bearer key-new"), b"", 0)
    for sent in ("Bearer key", "Bearer key-new2", "Basic key-new", "key-new", "Bearer ", ""):
        assert not accepts("bearer", keys, headers(authorization=sent), b"", 0)


def test_no_secret_set_refuses_every_kind() -> None:
    for kind in signatures.KINDS:
        assert not accepts(kind, [], headers(authorization="Bearer x"), b"", 0)


def test_a_refusal_never_echoes_what_was_sent() -> None:
    with pytest.raises(Unauthenticated) as caught:
        signatures.check("bearer", ["s3cret"], headers(authorization="Bearer s3cre"), b"", 0)
    assert "s3cre" not in caught.value.message and "s3cret" not in str(caught.value.to_dict())


def test_oversized_credential_headers_are_refused() -> None:
    huge = "Bearer " + "k" * (signatures.MAX_HEADER + 1)
    assert not accepts(
        "bearer", ["k" * (signatures.MAX_HEADER + 1)], headers(authorization=huge), b"", 0
    )


# --- delivery ids: what a signature vouches for --------------------------------------------------


def test_a_standard_webhooks_delivery_is_its_signed_webhook_id() -> None:
    assert signatures.delivery_id("standard-webhooks", standard(), SW_BODY) == SW_ID


def test_a_github_delivery_is_the_digest_of_its_body_whatever_its_delivery_header() -> None:
    first = signatures.delivery_id("github", headers(x_github_delivery="a"), GH_BODY)
    again = signatures.delivery_id("github", headers(x_github_delivery="b"), GH_BODY)
    assert first == again == "sha256:" + hashlib.sha256(GH_BODY).hexdigest()
    assert signatures.delivery_id("github", headers(), GH_BODY + b" ") != first


def test_a_stripe_delivery_is_the_digest_of_its_signed_timestamp_and_body() -> None:
    def of(stamp: int, body: bytes) -> str | None:
        header = headers(stripe_signature=stripe_header(ST_SECRET, stamp, body))
        return signatures.delivery_id("stripe", header, body)

    assert of(1000, b"{}") == of(1000, b"{}") == "sha256:" + hashlib.sha256(b"1000.{}").hexdigest()
    assert of(1001, b"{}") != of(1000, b"{}")


def test_a_bearer_request_has_no_signed_delivery_id() -> None:
    assert signatures.delivery_id("bearer", headers(webhook_id="x"), b"{}") is None
