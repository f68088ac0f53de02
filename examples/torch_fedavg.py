"""Federated averaging of a small PyTorch model through secagg's encoding.

Each simulated client trains a copy of the global model on its own synthetic data and encodes
its state_dict delta, weighted by its number of examples, into a ring vector mod 2^b. The ring
vectors are summed by :func:`secagg.encoding.ring_sum` (the plain modular sum, standing in for
the secure round, which will replace it with ``secagg.simulate``), then decoded into the weighted
mean delta, which is checked against the plain float weighted average within the decoder's
documented error bound and applied to the global model.

Run: ``python examples/torch_fedavg.py --clients 8 --rounds 3``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from secagg.crypto.entropy import DeterministicRandom
from secagg.encoding import Encoder, EncodingSpec, flatten, ring_sum

FEATURES = 8


def make_model(seed: int) -> nn.Module:
    """A small MLP with reproducible initial weights (the global RNG is left untouched)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(FEATURES, 16), nn.Tanh(), nn.Linear(16, 1))


def make_client_data(
    client: int, seed: int, true_w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic regression data; clients hold different amounts (their FedAvg weights)."""
    gen = torch.Generator().manual_seed(seed * 1000 + client)
    m = int(torch.randint(20, 200, (1,), generator=gen))
    x = torch.randn(m, FEATURES, generator=gen)
    y = x @ true_w + 0.1 * torch.randn(m, 1, generator=gen)
    return x, y


def local_delta(
    global_model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float
) -> dict[str, torch.Tensor]:
    """Train a copy of the global model locally; return new_state - global_state."""
    model = make_model(0)
    model.load_state_dict(global_model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.autograd.backward(nn.functional.mse_loss(model(x), y))
        opt.step()
    before = global_model.state_dict()
    return {k: (v - before[k]).detach() for k, v in model.state_dict().items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Run a few FedAvg rounds; return 0 if every decoded mean is within its bound."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quant-bits", type=int, default=16)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--local-steps", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gen = torch.Generator().manual_seed(args.seed)
    true_w = torch.randn(FEATURES, 1, generator=gen)
    data = [make_client_data(i, args.seed, true_w) for i in range(args.clients)]
    weights = [float(len(x)) for x, _ in data]
    global_model = make_model(args.seed)

    spec = EncodingSpec(
        clip=args.clip,
        quant_bits=args.quant_bits,
        weighted=True,
        max_weight=max(weights),  # in deployment: an agreed cap such as the largest dataset
        report_clipping=True,
    )
    encoder = Encoder(spec, template=global_model.state_dict(), n_clients=args.clients)
    print(f"ring: D={encoder.dim} coordinates, b={encoder.bits} bits ({encoder.dtype})")
    rng = DeterministicRandom(args.seed)

    ok = True
    for rnd in range(args.rounds):
        deltas = [local_delta(global_model, x, y, args.local_steps, args.lr) for x, y in data]
        vectors = [
            encoder.encode(d, weight=w, rng=rng.fork(f"round{rnd}/client{i}"))
            for i, (d, w) in enumerate(zip(deltas, weights, strict=True))
        ]
        result = encoder.decode(ring_sum(vectors, encoder.bits), n_included=len(vectors))

        plain = sum(w * flatten(d)[0] for d, w in zip(deltas, weights, strict=True)) / sum(weights)
        assert result.weighted_mean_flat is not None
        assert result.weighted_mean is not None
        assert result.weighted_mean_error_bound is not None
        err = float(np.max(np.abs(result.weighted_mean_flat - plain)))
        within = err <= result.weighted_mean_error_bound and result.clients_clipped == 0
        ok = ok and within

        state = global_model.state_dict()
        global_model.load_state_dict({k: state[k] + result.weighted_mean[k] for k in state})
        with torch.no_grad():
            loss = sum(
                float(nn.functional.mse_loss(global_model(x), y)) * w
                for (x, y), w in zip(data, weights, strict=True)
            ) / sum(weights)
        print(
            f"round {rnd}: max |error| {err:.3e} <= bound "
            f"{result.weighted_mean_error_bound:.3e}: {within}; total weight "
            f"{result.total_weight:.2f} (true {sum(weights):.0f}); clipped coordinates "
            f"{result.clipped_coordinates}; loss {loss:.4f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
