"""Property tests (hypothesis): the package loader, names and credential parsing take anything
and answer with a Jobico error or a result, never a crash; accepted packages round-trip."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobico.access import signatures
from jobico.errors import InvalidName, PackageInvalid, Unauthenticated
from jobico.model import check_name, load_package, load_package_yaml
from tests.conftest import EXAMPLE

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLE_DATA: dict[str, Any] = yaml.safe_load((EXAMPLE / "package.yaml").read_text())

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in nested dicts and lists, to put a fuzzed value at."""
    found = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            found += paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += paths(v, (*prefix, i))
    return found


PLACES = [p for p in paths(EXAMPLE_DATA) if p]


def put(data: Any, where: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(data)
    target = out
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    return out


@FUZZ
@given(st.sampled_from(PLACES), values)
def test_a_package_with_any_value_anywhere_loads_or_names_the_field(
    where: tuple[str | int, ...], value: Any
) -> None:
    data = put(EXAMPLE_DATA, where, value)
    try:
        package = load_package(data)
    except PackageInvalid as e:
        assert e.message and isinstance(e.details.get("path"), str)
        return
    assert load_package(package.to_dict()) == package  # what loads, round-trips


@FUZZ
@given(values)
def test_any_document_loads_or_is_refused_as_a_package_error(data: Any) -> None:
    try:
        load_package(data)
    except PackageInvalid:
        pass


@FUZZ
@given(st.text(max_size=400))
def test_any_yaml_text_loads_or_is_refused_as_a_package_error(text: str) -> None:
    try:
        load_package_yaml(text)
    except PackageInvalid:
        pass


@FUZZ
@given(st.text(max_size=200))
def test_a_name_is_refused_or_stays_inside_its_folder(name: str) -> None:
    root = Path("/srv/jobico/blobs")
    try:
        check_name("file", name)
    except InvalidName:
        return
    resolved = (root / name).resolve()
    assert resolved.parent == root and "/" not in name and "\\" not in name and "\0" not in name


headers_text = st.text(max_size=300) | st.from_regex(
    r"(t=\d{1,12},)?(v[01]=[0-9a-f]{0,64},?){0,4}", fullmatch=True
)
names = st.sampled_from(
    [
        "authorization",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-hub-signature-256",
        "stripe-signature",
    ]
)


@FUZZ
@given(
    st.sampled_from(signatures.KINDS),
    st.dictionaries(names, headers_text, max_size=6),
    st.binary(max_size=200),
    st.integers(min_value=0, max_value=2**40),
)
def test_no_header_crashes_a_check_or_passes_without_the_secret(
    kind: str, sent: dict[str, str], body: bytes, now: int
) -> None:
    try:
        signatures.check(kind, ["whsec_c2VjcmV0LXRoYXQtbm9ib2R5LWtub3dz"], sent.get, body, now)
    except Unauthenticated:
        return
    raise AssertionError(f"{kind} accepted made-up credentials: {sent!r}")


@FUZZ
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=2**33))
def test_a_signature_made_by_the_helpers_always_verifies_and_fails_on_any_other_body(
    body: bytes, now: int
) -> None:
    secret = "whsec_c2VjcmV0LXRoYXQtbm9ib2R5LWtub3dz"
    key = signatures.standard_key(secret)
    assert key is not None
    sw = {
        "webhook-id": "msg_x",
        "webhook-timestamp": str(now),
        "webhook-signature": "v1," + signatures.sign_standard_webhooks(key, "msg_x", now, body),
        "x-hub-signature-256": signatures.sign_github(secret, body),
        "stripe-signature": signatures.sign_stripe(secret, now, body),
    }
    for kind in ("standard-webhooks", "github", "stripe"):
        signatures.check(kind, [secret], sw.get, body, now)
        try:
            signatures.check(kind, [secret], sw.get, body + b"!", now)
        except Unauthenticated:
            continue
        raise AssertionError(f"{kind} accepted a changed body")
