"""Starting and stopping the whole platform: what `jobico up`, `down` and `status` do.

The one module that knows every actor (and, with the data plane, the listener). It connects
to Ray (an embedded local Ray by default, or a cluster by address), creates the named actors
if they are missing, and returns once each answers.
"""

from __future__ import annotations

import time
from typing import Any

from jobico.actors import cluster, control, localray, pubsub, repository
from jobico.config import Settings
from jobico.errors import NotRunning

# Start order matters: control and repository publish to pubsub as they start.
_COMPONENTS = (
    (cluster.PUBSUB, pubsub.start),
    (cluster.REPOSITORY, repository.start),
    (cluster.CONTROL, control.start),
)


def resolve_address(settings: Settings, address: str | None) -> str | None:
    """The Ray address to use: the given one, else the embedded Ray of this JOBICO_HOME."""
    if address:
        return address
    state = localray.read_state(settings.home)
    return state["address"] if state else None


def attach(settings: Settings, address: str | None = None) -> None:
    """Connect this process to the running platform, or raise NotRunning."""
    found = resolve_address(settings, address)
    if found is None:
        raise NotRunning(f"Jobico is not running for {settings.home}; start it with `jobico up`")
    cluster.connect(settings, found)


def up(settings: Settings, address: str | None = None) -> dict[str, Any]:
    settings.home.mkdir(parents=True, exist_ok=True)
    embedded = address is None
    state = localray.start(settings.home, dashboard=settings.dashboard) if embedded else {}
    cluster.connect(settings, address or state["address"])
    handles = [start(settings) for _, start in _COMPONENTS]
    for handle in handles:
        cluster.call(handle.ping.remote(), timeout=120)
    info = {
        "home": str(settings.home),
        "ray_address": address or state["address"],
        "embedded": embedded,
        "dashboard_url": state.get("dashboard_url"),
        "listener_url": f"http://{settings.host}:{settings.port}",
        "started_at": time.time(),
    }
    cluster.call(handles[-1].set_info.remote(info))
    return info


def down(settings: Settings, address: str | None = None) -> bool:
    """Stop what `up` started; the data stays on disk. False when nothing was running."""
    found = resolve_address(settings, address)
    if found is None:
        return False
    cluster.connect(settings, found)
    for name, _ in reversed(_COMPONENTS):
        cluster.kill(name, settings)
    if address is None:
        cluster.disconnect()
        localray.stop(settings.home)
    return True


def status(settings: Settings) -> dict[str, Any]:
    components = {}
    for name, _ in _COMPONENTS:
        try:
            cluster.call(cluster.actor(name, settings).ping.remote(), timeout=10)
            components[name] = "ok"
        except NotRunning:
            components[name] = "not running"
        except Exception as e:  # a status report names every failure
            components[name] = f"unhealthy: {e}"
    ctl = cluster.actor(cluster.CONTROL, settings)
    tenants = cluster.call(ctl.tenants.remote())
    packages = cluster.call(ctl.packages.remote())
    return {
        "platform": cluster.call(ctl.info.remote()),
        "components": components,
        "tenants": {t: [p["package"] for p in packages if p["tenant"] == t] for t in tenants},
    }
