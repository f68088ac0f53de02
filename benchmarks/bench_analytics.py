"""Federated analytics: accuracy of secure aggregation + distributed DP versus local DP, and cost.

* ``accuracy``: mean absolute error per bucket of a 20-bucket Zipf histogram (one item per
  device) at epsilon in {0.5, 1, 2, 4, 8}, delta = 1e-6, n in {10^3, 10^4, 10^5} devices.
  - secure + distributed DP: the protocol sum is exact (the tests check this), so the error is
    the aggregate noise: n devices each adding Skellam(mu) with mu sized for a 90% release
    floor (``plan_noise``); the sum of n Skellam(mu) is Skellam(n mu), which is sampled
    directly here (``repeats`` x 20 buckets). Cross-checked by real ``analytics.run`` rounds at
    n = 10^3 (50 protocol clients of 20 devices).
  - local DP: every device's report is randomised (optimised unary encoding, the core of
    Apple's count-mean sketch, and k-ary randomised response), fully simulated for all n
    devices and debiased.
* ``cost``: a 10^4-bucket histogram over 10^4 clients with DP. Measured: (a) per-device
  encoding + noise time; (b) the real protocol with D = 10^4 for ``--clients`` clients at the
  neighbour degree and threshold the finder picks for n = 10^4 (per-client work depends on
  k and D, not n); (c) a full-size run: 10^4 devices through ``analytics.run`` with 100
  protocol clients of 100 devices. The n = 10^4 server time is extrapolated linearly in n
  from (b); the method is printed next to every figure.

    python benchmarks/bench_analytics.py [accuracy|cost|all] [--quick] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from secagg.analytics import DistributedDP, Histogram, plan_noise, run  # noqa: E402
from secagg.analytics.binding import AnalyticsRound, Contributor  # noqa: E402
from secagg.analytics.localdp import krr_estimate, oue_estimate  # noqa: E402
from secagg.crypto.entropy import DeterministicRandom  # noqa: E402
from secagg.crypto.ring import to_ring, word_dtype  # noqa: E402
from secagg.encoding.dp import SkellamNoise  # noqa: E402
from secagg.graph import find_parameters  # noqa: E402
from secagg.simulation.engine import simulate  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0)
SIZES = (1_000, 10_000, 100_000)
K = 20
DELTA = 1e-6
FLOOR = 0.9  # release floor as a fraction of n: the noise is sized for it


def zipf_items(n: int, seed: int) -> np.ndarray:
    """One category per device, Zipf(1.1) over K categories."""
    w = 1.0 / np.arange(1, K + 1) ** 1.1
    return np.random.default_rng(seed).choice(K, size=n, p=w / w.sum())


def secure_noise_mae(n: int, epsilon: float, repeats: int, rng: DeterministicRandom) -> float:
    """MAE per bucket of the aggregate noise of n devices (sampled as one Skellam(n mu))."""
    plan = plan_noise(DistributedDP(epsilon, DELTA), 1.0, 1.0, max(2, int(FLOOR * n)))
    total = SkellamNoise(plan.per_client.mu * n)
    return float(np.mean(np.abs(total.sample(K * repeats, rng))))


def ldp_mae(
    items: np.ndarray, epsilon: float, repeats: int, rng: DeterministicRandom
) -> dict[str, float]:
    truth = np.bincount(items, minlength=K)
    oue = [np.mean(np.abs(oue_estimate(items, K, epsilon, rng) - truth)) for _ in range(repeats)]
    krr = [np.mean(np.abs(krr_estimate(items, K, epsilon, rng) - truth)) for _ in range(repeats)]
    return {"oue": float(np.mean(oue)), "krr": float(np.mean(krr))}


def real_protocol_mae(n: int, epsilon: float, repeats: int, parties: int) -> float:
    """MAE per bucket over real analytics.run rounds (devices batched into ``parties``)."""
    query = Histogram(domain=[f"c{i}" for i in range(K)], max_contributions=1)
    items = zipf_items(n, seed=5)
    devices = [[f"c{i}"] for i in items]
    truth = np.bincount(items, minlength=K)
    errs = []
    for rep in range(repeats):
        result = run(
            query,
            devices,
            min_clients=int(FLOOR * n),
            dp=DistributedDP(epsilon, DELTA),
            devices_per_client=-(-n // parties),
            seed=100 + rep,
        )
        est = np.array([result.counts[f"c{i}"] for i in range(K)])
        errs.append(np.mean(np.abs(est - truth)))
    return float(np.mean(errs))


def accuracy(quick: bool, repeats: int) -> dict[str, Any]:
    sizes = (1_000, 10_000) if quick else SIZES
    epsilons = (1.0, 4.0) if quick else EPSILONS
    rng = DeterministicRandom(2026)
    rows = []
    for n in sizes:
        items = zipf_items(n, seed=n)
        ldp_repeats = max(1, repeats // (10 if n >= 100_000 else 2))
        for eps in epsilons:
            start = time.perf_counter()
            secure = secure_noise_mae(n, eps, repeats * 10, rng)
            ldp = ldp_mae(items, eps, ldp_repeats, rng)
            rows.append(
                {
                    "n": n,
                    "epsilon": eps,
                    "secure_mae": secure,
                    "ldp_oue_mae": ldp["oue"],
                    "ldp_krr_mae": ldp["krr"],
                    "seconds": time.perf_counter() - start,
                }
            )
            print(
                f"n={n:>6} eps={eps:<4} secure+DP MAE {secure:8.2f}   local DP MAE: OUE "
                f"{ldp['oue']:9.1f}, k-RR {ldp['krr']:9.1f}   "
                f"(ratio {min(ldp.values()) / secure:6.0f}x)"
            )
    check_n, check_parties = (1_000, 10) if quick else (1_000, 50)
    check = real_protocol_mae(check_n, 1.0, 2 if quick else 5, check_parties)
    model = next(r["secure_mae"] for r in rows if r["n"] == check_n and r["epsilon"] == 1.0)
    print(
        f"real protocol check, n={check_n}, eps=1: MAE {check:.2f} over real rounds "
        f"({check_parties} protocol clients) vs {model:.2f} from the noise model"
    )
    return {
        "rows": rows,
        "check": {
            "n": check_n,
            "epsilon": 1.0,
            "real_mae": check,
            "model_mae": model,
            "protocol_clients": check_parties,
        },
    }


def plot_accuracy(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = {1_000: "#2ca02c", 10_000: "#1f77b4", 100_000: "#d62728"}
    for n in sorted({r["n"] for r in data["rows"]}):
        rows = [r for r in data["rows"] if r["n"] == n]
        eps = [r["epsilon"] for r in rows]
        ax.plot(
            eps,
            [r["secure_mae"] for r in rows],
            "-o",
            color=colors.get(n),
            label=f"secure + distributed DP, n={n:,}",
        )
        ax.plot(
            eps,
            [min(r["ldp_oue_mae"], r["ldp_krr_mae"]) for r in rows],
            "--s",
            color=colors.get(n),
            label=f"local DP (best of OUE, k-RR), n={n:,}",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("epsilon (delta = 1e-6)")
    ax.set_ylabel("mean absolute error per bucket (counts)")
    ax.set_title("20-bucket histogram, one item per device")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def cost(quick: bool, clients: int) -> dict[str, Any]:
    n_target, dim = 10_000, (1_000 if quick else 10_000)
    query = Histogram(domain=[f"b{i}" for i in range(dim)], max_contributions=1)
    dp = DistributedDP(1.0, DELTA)
    spec = AnalyticsRound(query, int(FLOOR * n_target), dp, max_clients=n_target)
    bits = spec.bits
    found = find_parameters(n_target, dropout_rate=0.05, corrupt_rate=0.05, mode="semi-honest")
    degree, threshold = found.degree, found.threshold
    # (a) per-device encoding + noise
    contributor = Contributor(spec, DeterministicRandom(1))
    sample = 50 if quick else 1_000
    start = time.perf_counter()
    for i in range(sample):
        to_ring(contributor.raw([f"b{(i * 7919) % dim}"]), bits)
    encode_s = (time.perf_counter() - start) / sample
    # (b) the real protocol with `clients` clients at the n = 10^4 degree
    n_real = max(clients, degree + 1)
    rows = np.zeros((n_real, dim), dtype=word_dtype(bits))
    start = time.perf_counter()
    sim = simulate(rows, bits=bits, degree=degree, threshold=threshold, seed=3)
    wall = time.perf_counter() - start
    client_s = sum(t.client_mean for t in sim.timings.values())
    server_s = sum(t.server for t in sim.timings.values())
    sent = float(np.mean(sim.client_bytes_sent))
    received = float(np.mean(sim.client_bytes_received))
    out: dict[str, Any] = {
        "dim": dim,
        "n_target": n_target,
        "bits": bits,
        "degree": degree,
        "threshold": threshold,
        "encode_seconds_per_device": encode_s,
        "measured_clients": n_real,
        "measured_wall_seconds": wall,
        "client_seconds": client_s,
        "client_bytes_sent": sent,
        "client_bytes_received": received,
        "server_seconds_measured": server_s,
        "server_seconds_extrapolated": server_s * n_target / n_real,
    }
    print(
        f"cost: {dim}-bucket histogram, DP eps=1, ring {bits} bits, k={degree}, t={threshold} "
        f"(finder's choice for n={n_target})"
    )
    print(f"  (a) encode + noise per device: {encode_s * 1e3:.2f} ms (measured, {sample} devices)")
    print(
        f"  (b) real protocol, {n_real} clients, D={dim}: per client {client_s * 1e3:.1f} ms CPU, "
        f"{sent / 1e3:.1f} kB sent, {received / 1e3:.1f} kB received; server {server_s:.2f} s "
        f"(round wall {wall:.1f} s)"
    )
    print(
        f"      n={n_target}: per client the same (its work depends on k and D, not n); server "
        f"~{out['server_seconds_extrapolated']:.0f} s (extrapolated linearly in n)"
    )
    if not quick:
        devices = [[f"b{(i * 7919) % dim}"] for i in range(n_target)]
        start = time.perf_counter()
        result = run(
            query, devices, min_clients=int(FLOOR * n_target), dp=dp, devices_per_client=100, seed=4
        )
        full = time.perf_counter() - start
        out["full_batched_seconds"] = full
        out["full_batched_released"] = result.released
        print(
            f"  (c) full size, batched: {n_target} devices (each encoded + noised) through "
            f"100 real protocol clients of 100 devices: {full:.1f} s wall, released="
            f"{result.released}"
        )
    return out


def render(acc: dict[str, Any] | None, cst: dict[str, Any] | None) -> str:
    lines = ["# Federated analytics: accuracy and cost", ""]
    if acc:
        lines += [
            "| n | epsilon | secure + DDP MAE | local DP OUE MAE | local DP k-RR MAE |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {r['n']:,} | {r['epsilon']} | {r['secure_mae']:.2f} | {r['ldp_oue_mae']:.1f} "
            f"| {r['ldp_krr_mae']:.1f} |"
            for r in acc["rows"]
        ]
        c = acc["check"]
        lines += [
            "",
            f"Real-protocol check at n = {c['n']:,}, epsilon = 1: MAE {c['real_mae']:.2f}"
            f" (noise model {c['model_mae']:.2f}).",
            "",
        ]
    if cst:
        lines += [
            f"Cost, {cst['dim']}-bucket histogram, {cst['n_target']:,} clients: "
            f"{cst['encode_seconds_per_device'] * 1e3:.2f} ms encode+noise per device; "
            f"{cst['client_seconds'] * 1e3:.0f} ms protocol CPU, "
            f"{cst['client_bytes_sent'] / 1e3:.1f} kB sent and "
            f"{cst['client_bytes_received'] / 1e3:.1f} kB received per client "
            f"(measured with {cst['measured_clients']} clients at k = {cst['degree']}); "
            f"server ~{cst['server_seconds_extrapolated']:.0f} s extrapolated."
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="analytics accuracy and cost")
    parser.add_argument("what", nargs="?", default="all", choices=["accuracy", "cost", "all"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes; writes nothing")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--clients", type=int, default=300)
    args = parser.parse_args(argv)
    acc = accuracy(args.quick, args.repeats) if args.what in ("accuracy", "all") else None
    cst = (
        cost(args.quick, 40 if args.quick else args.clients)
        if args.what in ("cost", "all")
        else None
    )
    if args.quick:
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    if acc:
        (RESULTS / "analytics_accuracy.json").write_text(json.dumps(acc, indent=1) + "\n")
        try:
            plot_accuracy(acc, RESULTS / "analytics_accuracy.png")
        except ImportError:
            print("matplotlib is not installed, so no plot: pip install 'secagg[plot]'")
    if cst:
        (RESULTS / "analytics_cost.json").write_text(json.dumps(cst, indent=1) + "\n")
    name = "analytics.md" if args.what == "all" else f"analytics_{args.what}.md"
    (RESULTS / name).write_text(render(acc, cst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
