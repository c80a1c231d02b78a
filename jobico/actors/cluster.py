"""How Jobico finds Ray and its own actors: connecting, actor names, and calls with clean errors.

Every Ray call that can fail for a user goes through `call`, so a user sees one JobicoError
with its own message, never a Ray traceback.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
from typing import Any

import ray
import ray.exceptions

from jobico import connecting
from jobico.config import Settings
from jobico.errors import JobicoError, NotRunning, Unavailable

CONTROL = "control"
REPOSITORY = "repository"
PUBSUB = "pubsub"
RECORDER = "recorder"
SUPERVISOR = "supervisor"


def freeze_heap() -> None:
    """Take what this worker process has allocated so far (Ray, pyarrow, wasmtime, FastAPI:
    objects that live as long as the process) out of the garbage collector's full passes.

    A full pass walks every object the process holds; in the platform's busy actors it took
    50-100 ms on a loaded node, a pause of everything the process was doing (every request of
    the listener, every lane of an executor). Called at the end of a hot actor's start-up.
    Objects freed by reference counting are still freed; only cycles among these are kept.
    (No collection first: a queue actor starts on a tenant's first request, which would wait.)
    """
    gc.freeze()


def queue_name(tenant: str) -> str:
    return f"queue:{tenant}"


def prepare_auth() -> None:
    """Ray 2.60 clusters require a token by default, but a driver joining one sends it only
    in token mode: turn that on when this user has a token (Ray's own helper also refreshes
    the config Ray cached at import)."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    quiet = logging.getLogger("ray._private.authentication.authentication_token_setup")
    quiet.setLevel(logging.ERROR)  # its notice that tokens are on is for cluster owners
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def connect(settings: Settings, address: str | None) -> None:
    """Join the cluster at `address` as a driver (no-op when this process already has Ray),
    within `settings.connect_timeout_s`, or raise NotRunning naming the address."""
    if ray.is_initialized():
        return
    prepare_auth()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    init = functools.partial(
        ray.init,
        address=address,
        namespace=settings.namespace,
        logging_level=logging.ERROR,
        log_to_driver=False,
        configure_logging=False,
    )
    connecting.join(address, settings.connect_timeout_s, init)


def actor(name: str, settings: Settings) -> Any:
    """The handle of one of Jobico's named actors, or NotRunning."""
    try:
        return ray.get_actor(name, namespace=settings.namespace)
    except ValueError:
        raise NotRunning(
            f"Jobico's {name} actor is not running in namespace {settings.namespace!r}; "
            "start the platform with `jobico up`"
        ) from None


def kill(name: str, settings: Settings) -> None:
    """Stop a named actor for good (its data stays on disk); no-op when it is not running."""
    try:
        ray.kill(ray.get_actor(name, namespace=settings.namespace), no_restart=True)
    except ValueError:
        pass


def disconnect() -> None:
    ray.shutdown()


def call(ref: Any, timeout: float | None = 60.0) -> Any:
    """ray.get that turns Ray's wrappers back into the JobicoError the actor raised."""
    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise Unavailable(f"a Jobico actor did not answer within {timeout} s") from None
    except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as e:
        raise _unwrapped(e) from None


async def acall(ref: Any) -> Any:
    """`call` for async code (actors and the listener): await the ref, unwrap the error."""
    try:
        return await ref
    except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as e:
        raise _unwrapped(e) from None


def _unwrapped(e: ray.exceptions.RayTaskError | ray.exceptions.RayActorError) -> JobicoError:
    """The JobicoError an actor raised, or Unavailable saying how the call failed."""
    if not isinstance(e, ray.exceptions.RayTaskError):
        return Unavailable(f"a Jobico actor died or is restarting: {e.error_msg}")
    cause = e.cause
    if isinstance(cause, JobicoError):
        return cause
    return Unavailable(f"internal error in a Jobico actor: {cause!r}")


# The share of the state resource each stateful actor takes: Ray counts resources to four
# decimals, so a node holding one unit fits 10,000 of them (one queue actor per tenant).
STATE_SHARE = 0.0001


# Ray places an actor that asks for no resources on a random node whatever its scheduling
# strategy says; only a hard node affinity was made to hold (ray-project/ray#25360). An
# executor asks for this sliver of a CPU so that its soft affinity holds too.
EXECUTOR_CPU = 0.0001


def node_of(index: int) -> str:
    """The id of the node the index-th executor goes to (a GCS round trip)."""
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])  # type: ignore[no-untyped-call]
    return str(nodes[index % len(nodes)])


def on_node(index: int) -> dict[str, Any]:
    """Placement on the index-th live node, round robin: executors n and n+1 land on different
    nodes (Ray's SPREAD is best effort). Soft: when that node is gone or full, Ray places the
    executor elsewhere, and a node that dies sends its executor elsewhere."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {
        "scheduling_strategy": NodeAffinitySchedulingStrategy(node_of(index), soft=True),
        "num_cpus": EXECUTOR_CPU,
    }


def options(
    name: str, settings: Settings, *, node_index: int | None = None, **extra: Any
) -> dict[str, Any]:
    """Options shared by Jobico's named actors: detached, restarted, found by name.

    Actors that keep data under JOBICO_HOME (the default) are placed on the node holding it,
    through `settings.state_resource`, wherever they are created from; a restart lands there
    again. Stateless ones (executors) give a `node_index` and go round robin over the nodes.
    """
    placement: dict[str, Any] = (
        {"resources": {settings.state_resource: STATE_SHARE}, "num_cpus": 0}
        if node_index is None
        else on_node(node_index)
    )
    return {
        "name": name,
        "namespace": settings.namespace,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
        **placement,
        **extra,
    }
