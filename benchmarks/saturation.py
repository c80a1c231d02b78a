"""Does CPU kept busy by low-priority work slow normal-priority work? Outside Jobico.

A token goes round a ring of five processes over pipes, each doing 0.2 ms of work before
passing it on, every 10 ms (a request's hops through a platform's processes), beside four
processes each doing 2 ms of work then sleeping 6 ms (the platform's other traffic), all at
nice 0. Then again beside low-priority work: half a core at nice 19 (two processes busy a
quarter of the time, so the CPUs still idle now and then), and the CPUs saturated by spinners
at nice 19 and under SCHED_IDLE.
Prints the ring's round-trip p50 / p99 for each. Jobico's guests run at nice 19: this shows
what a tenant's CPU-bound guests cost everything else on the node, however low their priority
(docs/performance.md, fair sharing).

Run: .venv/bin/python benchmarks/saturation.py [--seconds 8] [--spinners 8]   (Linux)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HOPS = 5
WORK_S = 0.0002
# Busy `on` seconds, then asleep `off` seconds, forever.
DUTY = "import time\nwhile True:\n t=time.perf_counter()\n while time.perf_counter()-t<{on}: pass\n time.sleep({off})"  # noqa: E501
BACKGROUND = DUTY.format(on=0.002, off=0.006)
SPIN = "while True: pass"
QUARTER = DUTY.format(on=0.0025, off=0.0075)


def busy(seconds: float) -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        pass


def hop(read_fd: int, write_fd: int) -> None:
    while token := os.read(read_fd, 8):
        busy(WORK_S)
        os.write(write_fd, token)


def ring_p50_p99(seconds: float, workers: list[tuple[list[str], str]]) -> tuple[float, float]:
    """Round trips of the ring (ms) beside `workers` (a command prefix and a program each)."""
    others = [subprocess.Popen([sys.executable, "-c", BACKGROUND]) for _ in range(4)]
    others += [subprocess.Popen([*prefix, sys.executable, "-c", code]) for prefix, code in workers]
    pipes = [os.pipe() for _ in range(HOPS + 1)]
    hops = [
        subprocess.Popen(
            [sys.executable, __file__, "--hop", str(pipes[i][0]), str(pipes[i + 1][1])],
            pass_fds=(pipes[i][0], pipes[i + 1][1]),
        )
        for i in range(HOPS)
    ]
    try:
        time.sleep(0.5)  # every process started
        rounds = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            os.write(pipes[0][1], b"token___")
            os.read(pipes[HOPS][0], 8)
            rounds.append((time.perf_counter() - start) * 1000)
            time.sleep(0.01)
    finally:
        for process in others + hops:
            process.kill()
        for read_fd, write_fd in pipes:
            os.close(read_fd)
            os.close(write_fd)
    return statistics.median(rounds), statistics.quantiles(rounds, n=100)[98]


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--hop":
        hop(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--spinners", type=int, default=8)
    args = parser.parse_args()
    nice19, idle = ["nice", "-n", "19"], ["chrt", "-i", "0"]
    cases = {
        "nothing else": [],
        "half a core at nice 19": [(nice19, QUARTER)] * 2,
        f"{args.spinners} spinners at nice 19": [(nice19, SPIN)] * args.spinners,
        f"{args.spinners} spinners under SCHED_IDLE": [(idle, SPIN)] * args.spinners,
    }
    print(f"machine: {os.cpu_count()} cores; a {HOPS}-hop ring beside 1 core of nice-0 work")
    for name, workers in cases.items():
        p50, p99 = ring_p50_p99(args.seconds, workers)
        print(f"  {name:32} round trip p50 {p50:5.2f} ms   p99 {p99:6.2f} ms")


if __name__ == "__main__":
    main()
