"""Jobico on a two-node Ray cluster: the stateful actors stay on the head with the data, the
executors spread over both nodes and so do the executions, and every metric reaches the
nodes' Prometheus endpoints."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from jobico.actors import cluster, metrics
from tests.cluster.raycluster import RayCluster
from tests.conftest import wait_for
from tests.e2e.packages import wait_routed, write_package
from tests.platform import Jobico

MAX_EVENTS = 2000
STATEFUL = {cluster.CONTROL, cluster.REPOSITORY, cluster.PUBSUB, cluster.RECORDER,
            cluster.SUPERVISOR}  # fmt: skip


@pytest.fixture(scope="module")
def tenant(jobico: Jobico, http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A package whose events spread over executors (an ordering key each), routed by the
    listener and followed by both executors."""
    folder = tmp_path_factory.mktemp("pkg")
    tenant, path = write_package(
        folder, "sleeper", schema={"type": "object"}, chain=False, orderingkey="/k"
    )
    jobico("deploy", str(path))
    wait_routed(http, tenant)

    def both_executors_follow() -> bool:
        report = json.loads(jobico("status", "--json").stdout)
        followers = [e for e in report["executors"] if tenant in e.get("tenants", [])]
        return len(followers) == 2

    wait_for(both_executors_follow, timeout=60, what="both executors to follow the tenant")
    return tenant


def actor_nodes(ray_cluster: RayCluster) -> dict[str, str]:
    """Each live named actor of the cluster (this test's own) and the id of its node."""
    script = f"""
import json, ray
from ray._private import state
ray.init(address={ray_cluster.address!r}, logging_level="ERROR")
alive = [a for a in state.actors().values() if a["State"] == "ALIVE" and a["Name"]]
print(json.dumps({{a["Name"]: a["Address"]["NodeID"] for a in alive}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], env=ray_cluster.env, capture_output=True, text=True,
        timeout=120, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_events_run_on_executors_of_both_nodes_while_state_stays_on_the_head(
    ray_cluster: RayCluster, jobico: Jobico, http: httpx.Client, tenant: str
) -> None:
    # Which executor leases a request's events is a race between the two; requests keep
    # coming (20 events each, up to MAX_EVENTS) until both nodes have run some, as under load.
    posted = 0

    def records() -> list[dict[str, object]]:
        out = jobico("executions", "--tenant", tenant, "--final", "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def post_until_both_nodes_ran() -> bool:
        nonlocal posted
        if len({str(r["executor"]).split("/")[0] for r in records()}) == 2:
            return True
        if posted < MAX_EVENTS:
            data = [{"k": f"key{posted + n}", "n": n} for n in range(20)]
            assert http.post(f"/events/{tenant}/ev", json={"data": data}).status_code == 202
            posted += 20
        return False

    wait_for(post_until_both_nodes_ran, timeout=90, what="executions on both nodes")

    def all_recorded() -> list[dict[str, object]]:
        found = records()
        return found if len(found) == posted else []

    done = wait_for(all_recorded, timeout=60, what=f"{posted} execution records")
    assert {r["status"] for r in done} == {"ok"}

    nodes = {n["NodeID"]: n for n in ray_cluster.nodes()}
    [head] = [i for i, n in nodes.items() if "node:__internal_head__" in n["Resources"]]
    # The record's executor is "<node id prefix>/<actor name>".
    ran_on = {str(r["executor"]).split("/")[0] for r in done}
    assert {prefix for prefix in ran_on for i in nodes if i.startswith(prefix)} == ran_on
    assert len(ran_on) == 2, f"every execution ran on one node: {ran_on}"

    placed = actor_nodes(ray_cluster)
    assert {placed[name] for name in STATEFUL | {cluster.queue_name(tenant)}} == {head}
    executors = {node for name, node in placed.items() if name.startswith("executor:")}
    assert executors == set(nodes)


def test_every_jobico_metric_is_exported_by_the_nodes(
    ray_cluster: RayCluster, jobico: Jobico, http: httpx.Client, tenant: str
) -> None:
    http.post(f"/events/{tenant}/no-such-event", json={"data": [{}]})  # a refusal, counted
    names = [*metrics.COUNTERS, *metrics.GAUGES, *metrics.HISTOGRAMS]
    endpoints = [
        f"http://{n['NodeManagerAddress']}:{n['MetricsExportPort']}/metrics"
        for n in ray_cluster.nodes()
    ]

    absent = list(names)

    def all_found() -> bool:
        text = "\n".join(httpx.get(url, timeout=10).text for url in endpoints)
        absent[:] = [name for name in names if f"ray_{name}" not in text]
        return not absent

    try:
        wait_for(all_found, timeout=60, what="every metric on the endpoints")
    except AssertionError:
        raise AssertionError(f"metrics never exported: {absent}") from None
    text = "\n".join(httpx.get(url, timeout=10).text for url in endpoints)
    refused = [line for line in text.splitlines() if line.startswith("ray_jobico_events_refused")]
    assert any('reason="not_found"' in line and metrics.UNKNOWN in line for line in refused)
