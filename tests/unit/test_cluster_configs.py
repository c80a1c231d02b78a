"""cluster/: the `ray up` configurations pass Ray's own validation and start Jobico on the head;
the Serve config and the KubeRay RayService deploy the listener the way the code builds it."""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.serve.schema import ServeDeploySchema

from jobico.actors import metrics
from jobico.serve import listener
from tests.conftest import ROOT

CLUSTER = ROOT / "cluster"
RAY_UP = ["local.yaml", "aws.yaml", "gcp.yaml"]


def load(name: str) -> Any:
    return yaml.safe_load((CLUSTER / name).read_text())


@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_config_passes_rays_own_validation(name: str) -> None:
    # What `ray up` does before it talks to a provider: fill in defaults, then validate.
    config = prepare_config(copy.deepcopy(load(name)))
    validate_config(config)


def test_a_config_with_an_unknown_key_is_refused_by_that_validation() -> None:
    config = load("local.yaml")
    config["setup_comands"] = []
    with pytest.raises(Exception, match="setup_comands"):
        validate_config(prepare_config(config))


@pytest.mark.parametrize("name", RAY_UP)
def test_every_node_installs_the_project_starts_ray_at_nice_0_and_the_head_starts_jobico(
    name: str,
) -> None:
    config = load(name)
    assert config["file_mounts"]["~/jobico"] == "."
    assert any("pip install" in c and "~/jobico" in c for c in config["setup_commands"])
    head = config["head_start_ray_commands"]
    assert any("ray start --head" in c for c in head)
    assert "jobico up --address auto" in head[-1]  # after Ray is up
    # Every node joins with the cluster's token (Ray 2.60 turns token authentication on).
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    # Every node's actors run at nice 0, well above the guests' 19 (Ray's default is 15).
    starts = [c for c in [*head, *config["worker_start_ray_commands"]] if "ray start" in c]
    assert len(starts) == 2 and all("RAY_worker_niceness=0 ray start" in c for c in starts)


@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_configs_bind_the_dashboard_to_the_heads_loopback_only(name: str) -> None:
    # The dashboard can run code on the cluster: `ray dashboard FILE` reaches it over SSH.
    [head] = [c for c in load(name)["head_start_ray_commands"] if "ray start --head" in c]
    assert "--dashboard-host=127.0.0.1" in head
    assert "0.0.0.0" not in head


def test_kuberays_dashboard_admits_only_rays_pods_and_the_operator() -> None:
    policy = kuberay_policy()
    assert (policy["kind"], policy["spec"]["policyTypes"]) == ("NetworkPolicy", ["Ingress"])
    assert policy["spec"]["podSelector"] == {"matchLabels": {"ray.io/is-ray-node": "yes"}}
    open_to_all = [rule for rule in policy["spec"]["ingress"] if "from" not in rule]
    assert [p["port"] for rule in open_to_all for p in rule["ports"]] == [8000, 8080]
    [limited] = [rule for rule in policy["spec"]["ingress"] if "from" in rule]
    sources = [peer["podSelector"]["matchLabels"] for peer in limited["from"]]
    operator = {"app.kubernetes.io/name": "kuberay-operator"}
    assert sources == [{"ray.io/is-ray-node": "yes"}, operator]


def test_the_serve_config_is_a_valid_serve_deploy_config_for_the_listener_builder() -> None:
    config = ServeDeploySchema.model_validate(load("serve.yaml"))
    [app] = config.applications
    assert (app.name, app.route_prefix) == (listener.APP, "/")
    assert app.import_path == "jobico.serve.listener:app"
    assert Path(app.runtime_env["env_vars"]["JOBICO_HOME"]).is_absolute()


def test_the_serve_configs_builder_makes_the_listener_from_jobico_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOBICO_LISTENER_REPLICAS", "3")
    module, name = load("serve.yaml")["applications"][0]["import_path"].split(":")
    builder = getattr(importlib.import_module(module), name)
    application = builder({})
    deployment = application._bound_deployment
    assert (deployment.name, deployment.num_replicas) == ("listener", 3)


def kuberay() -> tuple[dict[str, Any], dict[str, Any]]:
    claim, service, _ = yaml.safe_load_all((CLUSTER / "kuberay.yaml").read_text())
    return claim, service


def kuberay_policy() -> dict[str, Any]:
    *_, policy = yaml.safe_load_all((CLUSTER / "kuberay.yaml").read_text())
    return policy  # type: ignore[no-any-return]


def test_the_rayservice_names_this_ray_version_and_deploys_the_serve_config() -> None:
    _, service = kuberay()
    assert (service["apiVersion"], service["kind"]) == ("ray.io/v1", "RayService")
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == ray.__version__
    assert cluster["authOptions"] == {"mode": "token"}
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(serve_config)
    assert serve_config["applications"] == load("serve.yaml")["applications"]


def test_the_head_pod_starts_jobico_on_its_volume_and_leaves_the_listener_to_kuberay() -> None:
    claim, service = kuberay()
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]
    assert head["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    [container] = head["spec"]["containers"]
    command = " ".join(container["args"])
    assert "$KUBERAY_GEN_RAY_START_CMD" in command
    assert "jobico up --address auto --no-listener" in command
    home = {e["name"]: e.get("value") for e in container["env"]}["JOBICO_HOME"]
    [mount] = container["volumeMounts"]
    assert home.startswith(mount["mountPath"] + "/")
    [volume] = head["spec"]["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    # The Serve builder reads its JOBICO_HOME from the serve config: the same place.
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert serve_config["applications"][0]["runtime_env"]["env_vars"]["JOBICO_HOME"] == home


def test_every_rayservice_container_uses_the_jobico_image_exports_metrics_and_nice_0() -> None:
    _, service = kuberay()
    cluster = service["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    images = {c["image"] for g in groups for c in g["template"]["spec"]["containers"]}
    assert len(images) == 1
    assert all(g["rayStartParams"]["metrics-export-port"] == "8080" for g in groups)
    for group in groups:  # actors at nice 0, well above the guests' 19 (Ray's default is 15)
        [container] = group["template"]["spec"]["containers"]
        assert {"name": "RAY_worker_niceness", "value": "0"} in container["env"]


def test_the_grafana_dashboard_charts_every_jobico_metric() -> None:
    dashboard = json.loads((CLUSTER / "grafana" / "jobico.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for name in [*metrics.COUNTERS, *metrics.GAUGES, *metrics.HISTOGRAMS]:
        assert f"ray_{name}" in exprs, name
