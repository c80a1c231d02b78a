"""Entry point of a guest process (`jobico.wasm.processes`): `python -m jobico.guestproc NICE
READ_FD WRITE_FD`.

Outside `jobico.wasm` on purpose: the process takes its CPU priority before it imports
wasmtime. Several guest processes start with every executor, and importing at the executor's
priority (nice 0) took a second of the platform's CPU beside a flood: every tenant's events
waited for it.
"""

from __future__ import annotations

import contextlib
import os
import sys


def main(argv: list[str]) -> None:
    nice, read_fd, write_fd = argv
    if nice != "-":
        with contextlib.suppress(OSError):  # lowering one's own priority is always allowed
            os.setpriority(os.PRIO_PROCESS, 0, int(nice))
    from jobico.wasm.processes import serve

    serve(int(read_fd), int(write_fd))


if __name__ == "__main__":
    main(sys.argv[1:])
