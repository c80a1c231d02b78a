"""The listener's routing table (jobico.serve.routes): routes from revisions, schemas, pointers."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from typing import Any

import pytest
import yaml

from jobico.errors import EventRejected, Unavailable
from jobico.jsonpointer import pointer, resolve
from jobico.model import Revision, compact, load_package
from jobico.schemas import MAX_PROBLEMS, OverBudget, Validate
from jobico.serve.routes import Route, Routes, checked_events, new_event
from tests.conftest import EXAMPLE

TENANT, PACKAGE, KEY = "demogo", "go-demo-job", "demogo/go-demo-job"
GREET_SCHEMA = (EXAMPLE / "greet-schema.json").read_bytes()
GREET_DIGEST = hashlib.sha256(GREET_SCHEMA).hexdigest()
JOHN = {"firstName": "john", "lastName": "connor", "age": 50}


def revision(
    number: int = 1,
    *,
    digest: str = GREET_DIGEST,
    orderingkey: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """The example package's revision dict as the packages topic carries it, with tweaks."""
    spec = yaml.safe_load((EXAMPLE / "package.yaml").read_text())
    if orderingkey is not None:
        spec["jobs"][0]["event"]["orderingkey"] = orderingkey
    if limit is not None:
        spec["queues"][0]["limit"] = limit
    rev = Revision(
        tenant=TENANT,
        package=PACKAGE,
        number=number,
        spec=load_package(spec),
        files={"greet-schema.json": digest, "greet.wasm": "0" * 64},
        created_at=1.0,
    )
    return rev.to_dict()


class Schemas:
    """An in-memory repository of schemas that counts loads."""

    def __init__(self, **extra: bytes) -> None:
        self.files = {GREET_DIGEST: GREET_SCHEMA}
        for schema in extra.values():
            self.files[hashlib.sha256(schema).hexdigest()] = schema
        self.loads: list[tuple[str, str]] = []
        self.down = False

    def __call__(self, tenant: str, digest: str) -> bytes:
        self.loads.append((tenant, digest))
        if self.down:
            raise ConnectionError("repository unreachable")
        return self.files[digest]


@pytest.fixture
def schemas() -> Schemas:
    return Schemas()


@pytest.fixture
def routes(schemas: Schemas) -> Routes:
    table = Routes(schemas)
    table.apply({KEY: revision()})
    return table


def test_every_event_of_a_package_gets_a_route_including_chained_results(routes: Routes) -> None:
    evgo, ok, error = (routes.get(TENANT, e) for e in ("evgo", "evgo_ok", "evgo_error"))
    assert evgo is not None and ok is not None and error is not None
    assert (evgo.queue, ok.queue, error.queue) == (
        "queue-default",
        "queue-default_ok",
        "queue-default_error",
    )
    assert {r.package for r in (evgo, ok, error)} == {PACKAGE}
    assert {r.revision for r in (evgo, ok, error)} == {1}
    assert evgo.schema_digest == GREET_DIGEST
    assert ok.schema_digest is None and evgo.orderingkey is None


def test_route_limit_comes_from_its_supplier_queue(schemas: Schemas) -> None:
    table = Routes(schemas)
    table.apply({KEY: revision(limit=7)})
    assert table.get(TENANT, "evgo").limit == 7  # type: ignore[union-attr]
    assert table.get(TENANT, "evgo_ok").limit == 100_000  # type: ignore[union-attr]


def test_unknown_tenant_and_event_have_no_route(routes: Routes) -> None:
    assert routes.get(TENANT, "nope") is None
    assert routes.get("other", "evgo") is None
    assert routes.tenant_known(TENANT) and not routes.tenant_known("other")


def test_apply_replaces_every_route_of_the_package(routes: Routes) -> None:
    rev = revision(2, orderingkey="/lastName")
    del rev["spec"]["jobs"][0]["result"]  # the redeploy drops the chained events
    routes.apply({KEY: rev})
    evgo = routes.get(TENANT, "evgo")
    assert evgo is not None and evgo.revision == 2 and evgo.orderingkey == "/lastName"
    assert routes.get(TENANT, "evgo_ok") is None


def test_deleting_a_package_removes_its_routes_and_an_emptied_tenant(routes: Routes) -> None:
    routes.apply({KEY: None})
    assert routes.get(TENANT, "evgo") is None
    assert not routes.tenant_known(TENANT)


def test_other_packages_keep_their_routes_when_one_changes(routes: Routes) -> None:
    other = copy.deepcopy(revision())
    other["tenant"] = other["spec"]["tenant"] = "acme"
    routes.apply({"acme/go-demo-job": other})
    routes.apply({KEY: None})
    assert routes.get("acme", "evgo") is not None


def test_an_unreadable_revision_keeps_its_old_routes_and_others_still_apply(
    routes: Routes,
) -> None:
    broken = revision(2)
    broken["spec"]["jobs"][0]["event"]["surprise"] = 1
    other = revision()
    other["tenant"] = other["spec"]["tenant"] = "acme"
    routes.apply({KEY: broken, "acme/go-demo-job": other})
    assert routes.get(TENANT, "evgo").revision == 1  # type: ignore[union-attr]
    assert routes.tenant_known("acme")


def test_reset_forgets_every_route(routes: Routes) -> None:
    routes.reset()
    assert routes.get(TENANT, "evgo") is None and not routes.tenant_known(TENANT)


def test_apply_with_reset_replaces_the_whole_state_at_once(routes: Routes) -> None:
    other = revision()
    other["tenant"] = other["spec"]["tenant"] = "acme"
    routes.apply({"acme/go-demo-job": other}, reset=True)
    assert routes.tenant_known("acme") and not routes.tenant_known(TENANT)


def test_schema_is_loaded_and_compiled_once_per_digest_when_applied(
    routes: Routes, schemas: Schemas
) -> None:
    route = routes.get(TENANT, "evgo")
    assert route is not None
    assert routes.cached_validator(route) is not None  # compiled by apply, before any request
    assert routes.validator(route) is routes.validator(route)
    routes.apply({KEY: revision(2)})  # same digest: nothing to load
    assert schemas.loads == [(TENANT, GREET_DIGEST)]


def test_route_without_schema_has_no_validator(routes: Routes) -> None:
    route = routes.get(TENANT, "evgo_ok")
    assert route is not None
    assert routes.validator(route) is None and routes.cached_validator(route) is None


def test_validator_reports_json_pointer_and_reason(routes: Routes) -> None:
    check = routes.validator(routes.get(TENANT, "evgo"))  # type: ignore[arg-type]
    assert check is not None
    assert check(JOHN) == []
    (problem,) = check({**JOHN, "age": "x"})
    assert (problem.path, problem.reason) == ("/age", "'x' is not of type 'integer'")
    (missing,) = check({"firstName": "john"})
    assert missing.path == "" and "'lastName' is a required property" in missing.reason


def test_validator_checks_formats() -> None:
    schema = json.dumps({"type": "object", "properties": {"day": {"format": "date"}}}).encode()
    table = Routes(Schemas(day=schema))
    table.apply({KEY: revision(digest=hashlib.sha256(schema).hexdigest())})
    check = table.validator(table.get(TENANT, "evgo"))  # type: ignore[arg-type]
    assert check is not None
    assert check({"day": "2024-02-29"}) == []
    assert check({"day": "2023-02-30"})[0].path == "/day"


def test_schema_that_cannot_be_loaded_at_apply_is_loaded_when_first_needed(
    schemas: Schemas,
) -> None:
    schemas.down = True
    table = Routes(schemas)
    table.apply({KEY: revision()})  # logs, does not raise: the subscriber must go on
    route = table.get(TENANT, "evgo")
    assert route is not None and table.cached_validator(route) is None
    with pytest.raises(Unavailable, match="cannot be loaded"):
        table.validator(route)
    schemas.down = False
    assert table.validator(route) is not None


def test_schemas_no_route_uses_are_dropped_from_the_cache(routes: Routes, schemas: Schemas) -> None:
    other = json.dumps({"type": "object"}).encode()
    schemas.files[hashlib.sha256(other).hexdigest()] = other
    routes.apply({KEY: revision(2, digest=hashlib.sha256(other).hexdigest())})
    routes.apply({KEY: revision(3)})  # a rollback to the first schema compiles it again
    assert [d for _, d in schemas.loads].count(GREET_DIGEST) == 2


def of_tenants(*tenants: str) -> dict[str, dict[str, Any] | None]:
    """The example package deployed by each of `tenants`: one schema each (by tenant, digest)."""
    return {f"{t}/{PACKAGE}": {**revision(), "tenant": t} for t in tenants}


def test_compiled_schemas_are_bounded_and_the_least_recently_used_is_evicted(
    schemas: Schemas,
) -> None:
    table = Routes(schemas, max_schemas=2)
    table.apply(of_tenants("a", "b"))
    a, b = table.get("a", "evgo"), table.get("b", "evgo")
    assert a is not None and b is not None
    assert table.cached_validator(a) is not None  # a is now more recently used than b
    table.apply(of_tenants("c"))
    c = table.get("c", "evgo")
    assert c is not None
    assert table.cached_validator(c) is not None and table.cached_validator(a) is not None
    assert table.cached_validator(b) is None


def test_a_schema_warmed_at_apply_is_never_more_than_the_cache_holds(schemas: Schemas) -> None:
    table = Routes(schemas, max_schemas=2)
    table.apply(of_tenants("a", "b", "c", "d"), reset=True)
    assert len(schemas.loads) == 2  # compiling the rest would evict what was just compiled


def test_an_evicted_schema_is_loaded_again_on_next_use_and_checks_the_same(
    schemas: Schemas,
) -> None:
    table = Routes(schemas, max_schemas=1)
    table.apply(of_tenants("a"))
    a = table.get("a", "evgo")
    assert a is not None
    before = table.validator(a)
    table.apply(of_tenants("b"))  # evicts a's schema
    assert table.cached_validator(a) is None
    after = table.validator(a)
    assert before is not None and after is not None and after is not before
    assert schemas.loads.count(("a", GREET_DIGEST)) == 2
    bad = {**JOHN, "age": "x"}
    assert before(JOHN) == after(JOHN) == [] and before(bad) == after(bad) != []


def test_new_event_has_compact_sorted_payload_and_route_fields(routes: Routes) -> None:
    route = routes.get(TENANT, "evgo")
    assert route is not None
    ev = new_event(route, None, JOHN, index=0, batch=True, received_at=5.0)
    assert ev.payload == b'{"age":50,"firstName":"john","lastName":"connor"}'
    assert (ev.queue, ev.event, ev.package, ev.revision, ev.key, ev.received_at, ev.limit) == (
        "queue-default",
        "evgo",
        PACKAGE,
        1,
        None,
        5.0,
        100_000,
    )


def test_new_event_ordering_key_is_compact_json_of_the_pointed_value(schemas: Schemas) -> None:
    table = Routes(schemas)
    table.apply({KEY: revision(orderingkey="/lastName")})
    route = table.get(TENANT, "evgo")
    assert route is not None
    assert new_event(route, None, JOHN, index=0, batch=True, received_at=0).key == '"connor"'
    with pytest.raises(EventRejected, match=r"data\[3\]: ordering key /lastName names nothing"):
        new_event(route, None, {"firstName": "x"}, index=3, batch=True, received_at=0)


def test_resolve_follows_rfc_6901() -> None:
    doc = {"a/b": {"m~n": [10, {"": 7}]}, "c": {"id": 1}}
    assert resolve(doc, "") is doc
    assert resolve(doc, "/c/id") == 1
    assert resolve(doc, "/a~1b/m~0n/0") == 10
    assert resolve(doc, "/a~1b/m~0n/1/") == 7
    for missing in ("/x", "/c/id/deeper", "/a~1b/m~0n/2", "/a~1b/m~0n/01", "/a~1b/m~0n/-", "c"):
        with pytest.raises(KeyError):
            resolve(doc, missing)


def test_pointer_escapes_tilde_and_slash() -> None:
    assert pointer(["a/b", "m~n", 0]) == "/a~1b/m~0n/0"
    assert pointer([]) == ""


def test_compact_keeps_unicode_and_sorts_keys() -> None:
    assert compact({"b": "ñ", "a": [1, 2]}) == '{"a":[1,2],"b":"ñ"}'


def test_a_result_event_is_postable_only_with_an_auth_of_its_own(schemas: Schemas) -> None:
    rev = revision()
    rev["spec"]["jobs"][0]["result"]["error"]["auth"] = {"kind": "bearer", "secret": "k"}
    table = Routes(schemas)
    table.apply({KEY: rev})
    evgo, ok, error = (table.get(TENANT, e) for e in ("evgo", "evgo_ok", "evgo_error"))
    assert evgo is not None and ok is not None and error is not None
    assert (evgo.result, ok.result, error.result) == (False, True, True)
    assert (evgo.postable, ok.postable, error.postable) == (True, False, True)


PATTERNED = json.dumps({"type": "array", "items": {"type": "string", "pattern": "^a$"}}).encode()


def patterned_route() -> tuple[Route, Validate]:
    table = Routes(Schemas(patterned=PATTERNED))
    table.apply({KEY: revision(digest=hashlib.sha256(PATTERNED).hexdigest())})
    route = table.get(TENANT, "evgo")
    assert route is not None
    check = table.validator(route)
    assert check is not None
    return route, check


def test_a_rejected_event_lists_its_first_few_problems_the_most_telling_first() -> None:
    route, check = patterned_route()
    with pytest.raises(EventRejected) as refused:
        new_event(route, check, ["a", "b", *["x"] * 1000], index=2, batch=True, received_at=0)
    details = refused.value.details
    assert details["index"] == 2 and details["reason"].endswith("does not match '^a$'")
    assert len(details["problems"]) == MAX_PROBLEMS
    assert details["problems"][0] == {"path": details["path"], "reason": details["reason"]}
    assert refused.value.message == f"data[2] at {details['path']}: {details['reason']}"


def test_checks_that_outrun_the_loop_budget_raise_over_budget_for_the_caller_to_move() -> None:
    route, check = patterned_route()
    costly: list[object] = [["a"] * 200_000]  # about a second of jsonschema
    with pytest.raises(OverBudget):
        checked_events(route, check, costly, batch=False, received_at=0, seconds=0.01, on_loop=True)
    cheap = checked_events(
        route, check, [["a"]] * 3, batch=True, received_at=0, seconds=1, on_loop=True
    )
    assert [e.payload for e in cheap] == [b'["a"]'] * 3


def test_checks_off_the_loop_past_their_time_refuse_the_request_naming_the_element() -> None:
    route, check = patterned_route()
    batch: list[object] = [["a"], ["a"] * 200_000, ["a"]]
    start = time.perf_counter()
    with pytest.raises(EventRejected) as refused:
        checked_events(route, check, batch, batch=True, received_at=0, seconds=0.05, on_loop=False)
    assert time.perf_counter() - start < 0.5
    assert refused.value.details["index"] == 1
    assert refused.value.message == (
        "data[1]: not checked: its schema check took longer than the limit of 0.05 s"
    )
