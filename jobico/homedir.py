"""JOBICO_HOME and the stores in it kept private and durable.

The home holds every queued event, every record, token hashes, the grant key and secret
values: only its owner may enter it, whatever the umask. The stores that decide who may act
(control's registry, tokens, secrets) commit with SQLite's `synchronous=FULL`, so a revoke that
was answered survives a power loss.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import diskcache

log = logging.getLogger(__name__)

PRIVATE = 0o700
_FULL = 2  # SQLite's synchronous=FULL: the WAL is fsync'd at every commit (diskcache's is NORMAL)


def private_dir(path: Path) -> bool:
    """`path`, and any parents missing, made a directory only its owner may enter. True when
    it existed open to others and was closed now."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE, exist_ok=True)  # the umask can only take bits away
    if not stat.S_IMODE(path.stat().st_mode) & 0o077:
        return False
    os.chmod(path, PRIVATE)
    return True


def prepare_home(home: Path) -> None:
    """Make JOBICO_HOME private (`jobico up`); say so once when an existing one was open."""
    if private_dir(home):
        log.warning("%s was open to other users; made it 0700 (docs/security.md)", home)


def durable_cache(path: Path) -> diskcache.Cache:
    """A diskcache store in a private directory that commits with an fsync and never evicts:
    it is a store of record, not a cache (diskcache would drop its oldest entries past 1 GB)."""
    # Imported here: the queues and the recorder take only `private_dir` from this module, and a
    # tenant's queue actor should not load diskcache (docs/performance.md#a-queue-actors-memory).
    import diskcache

    private_dir(path)
    return diskcache.Cache(str(path), sqlite_synchronous=_FULL, eviction_policy="none")
