"""Emoji counts across 10,000 keyboards: secure aggregation + distributed DP versus local DP.

Each simulated device types a few dozen emoji drawn from a Zipf-like popularity curve and
reports its most used one (``Histogram(max_contributions=1)``: one device counts once, however
often it typed it). Three answers at the same privacy level epsilon:

- the true counts (what nobody gets to see),
- secure aggregation with distributed DP: every device adds a small share of Skellam noise,
  the server only learns the noisy sum (``secagg.analytics.run``, the real protocol),
- local DP, as Apple shipped emoji counts: every device randomises its own report (optimised
  unary encoding, the one-hot core of Apple's count-mean sketch) and the server debiases.

In this simulation the devices' capped, noised vectors are summed in batches: ``--clients``
real protocol clients each carry ``devices / clients`` devices (each device still capped and
noised on its own). The printed output says so. Writes a bar chart with error bars.

Run: ``python examples/emoji_counts.py --devices 10000 --epsilon 1 --out emoji_counts.png``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from secagg.analytics import DistributedDP, Histogram, run
from secagg.analytics.localdp import oue_estimate, oue_stddev
from secagg.crypto.entropy import DeterministicRandom

EMOJI = [
    ("face-with-tears-of-joy", "\U0001f602"),
    ("red-heart", "\u2764\ufe0f"),
    ("rolling-on-floor", "\U0001f923"),
    ("thumbs-up", "\U0001f44d"),
    ("loudly-crying", "\U0001f62d"),
    ("folded-hands", "\U0001f64f"),
    ("kiss", "\U0001f618"),
    ("smiling-hearts", "\U0001f970"),
    ("heart-eyes", "\U0001f60d"),
    ("smiling-face", "\U0001f60a"),
    ("party-popper", "\U0001f389"),
    ("grinning-sweat", "\U0001f601"),
    ("sparkling-heart", "\U0001f495"),
    ("pleading", "\U0001f97a"),
    ("grinning", "\U0001f605"),
    ("fire", "\U0001f525"),
    ("relieved", "\u263a\ufe0f"),
    ("facepalm", "\U0001f926"),
    ("heart-suit", "\u2665\ufe0f"),
    ("shrug", "\U0001f937"),
]
NAMES = [name for name, _ in EMOJI]


def simulate_devices(n: int, seed: int) -> list[list[str]]:
    """Each device's emoji uses: 1 + Poisson(1) draws from a Zipf(1.1) popularity curve."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(NAMES) + 1) ** 1.1
    weights /= weights.sum()
    uses = 1 + rng.poisson(1, size=n)
    return [[NAMES[i] for i in rng.choice(len(NAMES), size=int(u), p=weights)] for u in uses]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100, help="real protocol clients")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-6)
    parser.add_argument(
        "--min-fraction",
        type=float,
        default=0.9,
        help="release only if this fraction of devices contributed; the noise is sized for it",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=Path("emoji_counts.png"))
    args = parser.parse_args(argv)

    devices = simulate_devices(args.devices, args.seed)
    query = Histogram(domain=NAMES, max_contributions=1)
    truth = sum(query.encode(d) for d in devices)
    batch = max(1, -(-args.devices // args.clients))
    min_clients = max(2, int(args.min_fraction * args.devices))
    dp = DistributedDP(epsilon=args.epsilon, delta=args.delta)
    result = run(
        query, devices, min_clients=min_clients, dp=dp, devices_per_client=batch, seed=args.seed
    )
    if not result.released:
        print(f"nothing released: {result.reason}: {result.detail}")
        return 1
    top = np.array([int(np.argmax(query.encode(d))) for d in devices])  # its one emoji
    ldp = oue_estimate(top, len(NAMES), args.epsilon, DeterministicRandom(args.seed))
    ldp_sd = oue_stddev(args.devices, len(NAMES), args.epsilon, truth)
    secure = np.array([result.counts[n] for n in NAMES])
    secure_sd = np.array([result.stddev[n] for n in NAMES])

    n_parties = -(-args.devices // batch)
    print(
        f"{args.devices} simulated devices, each capped to 1 emoji and adding its own noise "
        f"share; summed by {n_parties} real secure-aggregation clients of up to {batch} devices "
        f"each (ring of {result.bits} bits). Privacy: epsilon={args.epsilon}, "
        f"delta={args.delta:g}, noise sized for >= {min_clients} contributors."
    )
    print(f"{'emoji':<26}{'true':>7}{'secure+DP':>12}{'+-sd':>7}{'local DP':>11}{'+-sd':>7}")
    for i, (name, glyph) in enumerate(EMOJI):
        print(
            f"{glyph} {name:<23}{int(truth[i]):>7}{secure[i]:>12.0f}{secure_sd[i]:>7.1f}"
            f"{ldp[i]:>11.0f}{ldp_sd[i]:>7.1f}"
        )
    mae_secure = float(np.mean(np.abs(secure - truth)))
    mae_ldp = float(np.mean(np.abs(ldp - truth)))
    print(f"mean absolute error per emoji: secure+DP {mae_secure:.1f}, local DP {mae_ldp:.1f}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so no chart: pip install 'secagg[plot]'")
        return 0
    x = np.arange(len(NAMES))
    fig, ax = plt.subplots(figsize=(13, 5.5))
    width = 0.28
    z = dp.z
    ax.bar(x - width, truth, width, label="true count", color="#999999")
    ax.bar(
        x,
        secure,
        width,
        yerr=z * secure_sd,
        capsize=2,
        color="#1f77b4",
        label=f"secure aggregation + distributed DP (MAE {mae_secure:.1f})",
    )
    ax.bar(
        x + width,
        ldp,
        width,
        yerr=z * ldp_sd,
        capsize=2,
        color="#ff7f0e",
        label=f"local DP, unary encoding (MAE {mae_ldp:.1f})",
    )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, NAMES, rotation=55, ha="right", fontsize=8)
    ax.set_ylabel("devices whose most used emoji it is")
    ax.set_title(
        f"{args.devices} keyboards, epsilon={args.epsilon}, delta={args.delta:g} "
        f"(error bars: {dp.confidence:.0%} intervals)"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"chart written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
