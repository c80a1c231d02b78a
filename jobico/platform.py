"""Starting and stopping the whole platform: what `jobico up`, `down` and `status` do.

The one module that knows every actor and the listener. It connects to Ray (an embedded local
Ray by default, or a cluster by address), creates the named actors if they are missing,
deploys the listener on Serve, and returns once each answers.
"""

from __future__ import annotations

import time
from typing import Any

from jobico.actors import cluster, control, localray, pubsub, recorder, repository, supervisor
from jobico.config import Settings
from jobico.errors import JobicoError, NotRunning
from jobico.homedir import prepare_home
from jobico.queue.localputs import socket_path

# Start order matters: control and repository publish to pubsub as they start; executors
# (started by the supervisor) need all of them.
_COMPONENTS = (
    (cluster.PUBSUB, pubsub.start),
    (cluster.REPOSITORY, repository.start),
    (cluster.CONTROL, control.start),
    (cluster.RECORDER, recorder.start),
    (cluster.SUPERVISOR, supervisor.start),
)


def resolve_address(settings: Settings, address: str | None) -> str | None:
    """The Ray address to use: the given one, else the embedded Ray of this JOBICO_HOME, else
    RAY_ADDRESS (a cluster's nodes set it, so every command finds Jobico there).

    An embedded Ray whose daemon runs but whose GCS or raylet is gone raises NotRunning
    naming what is gone, at once: `ray.init` would wait minutes for it."""
    if address:
        return address
    state = localray.read_state(settings.home)
    if state is None:
        return settings.ray_address or None
    why = localray.gone(state)
    if why:
        raise NotRunning(localray.down_message(settings.home, state, why))
    return str(state["address"])


def attach(settings: Settings, address: str | None = None) -> None:
    """Connect this process to the running platform, or raise NotRunning."""
    found = resolve_address(settings, address)
    if found is None:
        raise NotRunning(f"Jobico is not running for {settings.home}; start it with `jobico up`")
    cluster.connect(settings, found)


def up(settings: Settings, address: str | None = None, *, listener: bool = True) -> dict[str, Any]:
    """Start whatever is missing and return once everything answers; idempotent."""
    prepare_home(settings.home)  # 0700 whatever the umask; an open one is closed, and said so
    embedded = address is None
    state = (
        localray.start(
            settings.home,
            dashboard=settings.dashboard,
            port=settings.port,
            dashboard_port=settings.dashboard_port,
        )
        if embedded
        else {}
    )
    cluster.connect(settings, address or state["address"])
    handles = {name: start(settings) for name, start in _COMPONENTS}
    for handle in handles.values():
        cluster.call(handle.ping.remote(), timeout=120)
    control.ensure_admin_token(settings)
    if listener:
        from jobico.serve import listener as serve_listener  # Serve loads only when used

        serve_listener.deploy(settings)
    # Executors start once the listener answers: after a crash they would otherwise take the
    # CPU Serve needs to start on running the backlog, and new events would wait for a 202.
    cluster.call(handles[cluster.SUPERVISOR].start.remote(), timeout=120)
    info = {
        "home": str(settings.home),
        "ray_address": address or state["address"],
        "embedded": embedded,
        "dashboard_url": state.get("dashboard_url"),
        "listener_url": f"http://{settings.host}:{settings.port}" if listener else None,
        "started_at": time.time(),
    }
    cluster.call(handles[cluster.CONTROL].set_info.remote(info))
    return {**info, "replaced": state["replaced"]} if state.get("replaced") else info


def down(settings: Settings, address: str | None = None) -> bool:
    """Stop what `up` started; the data stays on disk. False when nothing was running."""
    if address is None and _embedded_down(settings):
        return localray.stop(settings.home)  # kills what is left; there is nothing to drain
    found = resolve_address(settings, address)
    if found is None:
        return False
    cluster.connect(settings, found)
    # The embedded Ray goes as a whole; deleting the Serve app first would only wait (about
    # 30 s) for its replicas' graceful shutdown.
    _stop_data_plane(settings, listener=address is not None)
    for name, _ in reversed(_COMPONENTS):
        cluster.kill(name, settings)
    if address is None:
        cluster.disconnect()
        localray.stop(settings.home)
    return True


def _embedded_down(settings: Settings) -> bool:
    """Whether this home records an embedded Ray that is down or partly gone."""
    state = localray.recorded(settings.home)
    return state is not None and localray.gone(state) is not None


def _stop_data_plane(settings: Settings, *, listener: bool) -> None:
    """Executors drain their batches first, so nothing in hand waits for a lease to expire."""
    tenants, info = [], {}
    try:
        if _has(cluster.SUPERVISOR, settings):
            cluster.call(cluster.actor(cluster.SUPERVISOR, settings).stop.remote(), timeout=60)
        control_actor = cluster.actor(cluster.CONTROL, settings)
        tenants = cluster.call(control_actor.tenants.remote())
        info = cluster.call(control_actor.info.remote())
    except JobicoError:
        pass  # stop what can be stopped
    for tenant in tenants:
        cluster.kill(cluster.queue_name(tenant), settings)
        # A killed actor leaves its local put socket behind (a new one would take it over).
        socket_path(settings.home, settings.namespace, tenant).unlink(missing_ok=True)
    if listener and (info.get("listener_url") or not info):
        from jobico.serve import listener as serve_listener

        serve_listener.undeploy(settings)


def _has(name: str, settings: Settings) -> bool:
    try:
        cluster.actor(name, settings)
        return True
    except NotRunning:
        return False


def status(settings: Settings) -> dict[str, Any]:
    """Every component's health, tenants, queues, executors and how they are scaling."""
    components = {}
    for name, _ in _COMPONENTS:
        try:
            cluster.call(cluster.actor(name, settings).ping.remote(), timeout=10)
            components[name] = "ok"
        except JobicoError as e:  # a status report names every failure
            components[name] = _health(e)
    from jobico.serve import listener as serve_listener

    ctl = cluster.actor(cluster.CONTROL, settings)
    packages = cluster.call(ctl.packages.remote())
    tenants = cluster.call(ctl.tenants.remote())
    report = cluster.call(cluster.actor(cluster.SUPERVISOR, settings).report.remote())
    components["queues"] = _queues_health(settings, tenants)
    components["executors"] = _executors_health(report)
    components["listener"] = serve_listener.status(settings)
    return {
        "platform": cluster.call(ctl.info.remote()),
        "components": components,
        "tenants": {t: [p["package"] for p in packages if p["tenant"] == t] for t in tenants},
        "queues": report["queues"],
        "executors": report["executors"],
        "scaling": report["scaling"],
    }


def _health(error: JobicoError) -> str:
    return "not running" if isinstance(error, NotRunning) else f"unhealthy: {error}"


def _queues_health(settings: Settings, tenants: list[str]) -> str:
    """`ok`, or the queue actors that do not answer (the supervisor starts every tenant's)."""
    failing = []
    for tenant in tenants:
        try:
            queue = cluster.actor(cluster.queue_name(tenant), settings)
            cluster.call(queue.ping.remote(), timeout=10)
        except JobicoError as e:
            failing.append(f"{cluster.queue_name(tenant)} {_health(e)}")
    return "unhealthy: " + "; ".join(failing) if failing else "ok"


def _executors_health(report: dict[str, Any]) -> str:
    """`ok`, or the executors that do not answer (their count is in the report's scaling)."""
    failing = [f"{e['name']} {e['error']}" for e in report["executors"] if "error" in e]
    return "unhealthy: " + "; ".join(failing) if failing else "ok"
