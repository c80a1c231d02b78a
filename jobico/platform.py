"""Starting and stopping the whole platform: what `jobico up`, `down` and `status` do.

The one module that knows every actor and the listener. It connects to Ray (an embedded local
Ray by default, or a cluster by address), creates the named actors if they are missing,
deploys the listener on Serve, and returns once each answers.

Ray is imported inside the functions, not here: `jobico up` after a crash first kills what is
left of the dead Ray (`jobico.localnode`, no Ray), whose data plane may still be running its
backlog on every core, and imports Ray (1-6 s) while the new one starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jobico import localnode
from jobico.config import Settings
from jobico.errors import JobicoError, NotRunning
from jobico.homedir import prepare_home
from jobico.queue.localputs import socket_path


def _components() -> tuple[tuple[str, Callable[[Settings], Any]], ...]:
    """Jobico's named actors and how each starts. Start order matters: control and repository
    publish to pubsub as they start; executors (started by the supervisor) need all of them."""
    from jobico.actors import cluster, control, pubsub, recorder, repository, supervisor

    return (
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
    state = localnode.read_state(settings.home)
    if state is None:
        return settings.ray_address or None
    why = localnode.gone(state)
    if why:
        raise NotRunning(localnode.down_message(settings.home, state, why))
    return str(state["address"])


def attach(settings: Settings, address: str | None = None) -> None:
    """Connect this process to the running platform, or raise NotRunning."""
    from jobico.actors import cluster

    found = resolve_address(settings, address)
    if found is None:
        raise NotRunning(f"Jobico is not running for {settings.home}; start it with `jobico up`")
    cluster.connect(settings, found)


def up(settings: Settings, address: str | None = None, *, listener: bool = True) -> dict[str, Any]:
    """Start whatever is missing and return once everything answers; idempotent.

    What a first 202 needs goes first and side by side: the listener is deployed while the
    actors start (its replica waits for the ones it calls), and the executors start last."""
    prepare_home(settings.home)  # 0700 whatever the umask; an open one is closed, and said so
    embedded = address is None
    starting = (
        localnode.launch(
            settings.home,
            dashboard=settings.dashboard,
            port=settings.port,
            dashboard_port=settings.dashboard_port,
        )
        if embedded
        else None
    )
    # Ray and Serve load (seconds on a busy node) while the daemon starts Ray.
    from jobico.actors import cluster, control

    if listener:
        from jobico.serve import listener as serve_listener  # Serve loads only when used
    state = starting.wait() if starting else {}
    cluster.connect(settings, address or state["address"])
    # Actors are created without waiting: those the listener's replicas call start while the
    # listener is deployed, and the rest after it (Ray starts two worker processes at a time
    # on two cores, so each one more on the way delays the replica's by about a second).
    components = _components()
    early = {cluster.PUBSUB, cluster.REPOSITORY, cluster.CONTROL}
    handles = {name: start(settings) for name, start in components if name in early}
    if listener:
        serve_listener.deploy(settings)
    handles |= {name: start(settings) for name, start in components if name not in early}
    for handle in handles.values():
        cluster.call(handle.ping.remote(), timeout=120)
    control.ensure_admin_token(settings)
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
    from jobico.actors import cluster

    if address is None and _embedded_down(settings):
        return localnode.stop(settings.home)  # kills what is left; there is nothing to drain
    found = resolve_address(settings, address)
    if found is None:
        return False
    cluster.connect(settings, found)
    # The embedded Ray goes as a whole; deleting the Serve app first would only wait (about
    # 30 s) for its replicas' graceful shutdown.
    _stop_data_plane(settings, listener=address is not None)
    for name, _ in reversed(_components()):
        cluster.kill(name, settings)
    if address is None:
        cluster.disconnect()
        localnode.stop(settings.home)
    return True


def _embedded_down(settings: Settings) -> bool:
    """Whether this home records an embedded Ray that is down or partly gone."""
    state = localnode.recorded(settings.home)
    return state is not None and localnode.gone(state) is not None


def _stop_data_plane(settings: Settings, *, listener: bool) -> None:
    """Executors drain their batches first, so nothing in hand waits for a lease to expire."""
    from jobico.actors import cluster

    tenants, info = [], {}
    try:
        if _has(cluster.SUPERVISOR, settings):
            cluster.call(cluster.actor(cluster.SUPERVISOR, settings).stop.remote(), timeout=60)
        control_actor = cluster.actor(cluster.CONTROL, settings)
        tenants = cluster.call(control_actor.internal_tenants.remote())
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
    from jobico.actors import cluster

    try:
        cluster.actor(name, settings)
        return True
    except NotRunning:
        return False


def status(settings: Settings) -> dict[str, Any]:
    """Every component's health, tenants, queues, executors and how they are scaling."""
    from jobico.actors import cluster

    components = {}
    for name, _ in _components():
        try:
            cluster.call(cluster.actor(name, settings).ping.remote(), timeout=10)
            components[name] = "ok"
        except JobicoError as e:  # a status report names every failure
            components[name] = _health(e)
    from jobico.serve import listener as serve_listener

    ctl = cluster.actor(cluster.CONTROL, settings)
    packages = cluster.call(ctl.internal_packages.remote())
    tenants = cluster.call(ctl.internal_tenants.remote())
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
    from jobico.actors import cluster

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
