"""``python -m benchmarks [all|flower|protocol|limits|big|scaling|workers|prg|shamir|analytics]``.

Add ``--quick`` for tiny configurations. ``analytics`` is not part of ``all``; nor is ``unmask``
(the server's unmasking at n = 10^4 against its mask-expansion limit, ``bench_unmask``).

``all`` (the default, what ``make bench`` runs) runs, in this order: the side-by-side Flower
comparison, issue 3's protocol table, the physical limit at D = 10^6, the n = 5000 run, the
``--workers`` speed-up and the scaling series (with its plots). Results go to
``benchmarks/results/`` (Markdown, JSON and PNG); ``--quick`` runs tiny configurations and
writes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from benchmarks import bench_flower, bench_protocol, bench_scaling


def _prg(argv: list[str]) -> int:
    from benchmarks import bench_prg

    return int(bench_prg.main(argv) or 0)


def _shamir(argv: list[str]) -> int:
    from benchmarks import bench_shamir

    return int(bench_shamir.main(argv) or 0)


def _unmask(argv: list[str]) -> int:
    from benchmarks import bench_unmask

    return int(bench_unmask.main(argv) or 0)


def _analytics(argv: list[str]) -> int:
    from benchmarks import bench_analytics

    return int(bench_analytics.main(argv) or 0)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "flower": bench_flower.main,
    "protocol": bench_protocol.main,
    "limits": lambda a: bench_scaling.main(["limits", *a]),
    "big": lambda a: bench_scaling.main(["big", *a]),
    "workers": lambda a: bench_scaling.main(["workers", *a]),
    "scaling": lambda a: bench_scaling.main(["scaling", *a]),
    "prg": _prg,
    "shamir": _shamir,
    "analytics": _analytics,
    "unmask": _unmask,
}
ALL = ["flower", "protocol", "limits", "big", "workers", "scaling"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("what", nargs="?", default="all", choices=["all", *COMMANDS])
    parser.add_argument("--quick", action="store_true", help="tiny configurations, no files")
    parser.add_argument("--workers", type=int, default=None, help="processes for 'workers'")
    args = parser.parse_args(argv)
    extra = ["--quick"] if args.quick else []
    names = ALL if args.what == "all" else [args.what]
    status = 0
    for name in names:
        sub = list(extra)
        if name == "workers" and args.workers:
            sub += ["--workers", str(args.workers)]
        print(f"== {name} ==", flush=True)
        start = time.perf_counter()
        code = COMMANDS[name](sub)
        if code == 2 and name == "flower":
            print("   (skipped: Flower not installed)")
            code = 0
        print(f"== {name}: {time.perf_counter() - start:.1f}s, exit {code} ==", flush=True)
        status = status or code
    return status


if __name__ == "__main__":
    raise SystemExit(main())
