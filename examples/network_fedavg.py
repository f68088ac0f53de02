"""FedAvg of a small PyTorch model over the network, with secure aggregation.

One process runs :class:`secagg.Server`; 20 client processes (by default) each hold their own
shard of a synthetic regression task. Every round the server hands out the global model (as
``secagg.pack_arrays`` bytes, its digest bound into the round), each client trains a few local
steps and submits its weighted update through :meth:`secagg.Client.participate`, and the server
learns only the weighted mean of the included updates, applies it and evaluates the new model.
In round ``--kill-round`` the operator SIGKILLs ``--kill`` client processes in the middle of
the round; the round still completes without them and the next ones expect fewer clients.

    python examples/network_fedavg.py --clients 20 --rounds 5 --kill 3

Needs the ``torch`` extra (``pip install 'secagg[torch]'``). ``--dump-dir`` makes every client
write its clipped update and weight per round, and the server the decoded mean and the
included names, so a test can check the mean against the plain weighted average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import secagg
from secagg.encoding import Encoder, EncodingSpec

FEATURES = 8
HIDDEN = 16
CLIP = 1.0  # per-coordinate bound of an update (local model - global model)
MAX_WEIGHT = 100.0
LOCAL_STEPS = 5
LR = 0.05


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        sys.exit("this example needs PyTorch: pip install 'secagg[torch]'")
    return torch


def make_model(seed: int) -> Any:
    torch = _torch()
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, 1)
    )


def to_arrays(model: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}


def load_arrays(model: Any, arrays: dict[str, np.ndarray]) -> None:
    torch = _torch()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()})


def encoder(max_clients: int) -> Encoder:
    """The encoder every party builds from the same spec and template."""
    template = to_arrays(make_model(0))
    spec = EncodingSpec(clip=CLIP, quant_bits=16, weighted=True, max_weight=MAX_WEIGHT)
    return Encoder(spec, template, max_clients)


def shard(seed: int, size: int) -> tuple[Any, Any]:
    """A client's data: y = tanh(X w) + noise, w shared by everyone (the task to learn)."""
    torch = _torch()
    truth = np.random.default_rng(1234).normal(size=(FEATURES, 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, FEATURES))
    y = np.tanh(x @ truth) + 0.05 * rng.normal(size=(size, 1))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


# -- client --------------------------------------------------------------------------------------


def run_client(args: argparse.Namespace) -> int:
    torch = _torch()
    torch.set_num_threads(1)
    size = 20 + (args.seed * 7) % 60  # heterogeneous shard sizes: the FedAvg weights
    x, y = shard(args.seed, size)
    model = make_model(0)
    enc = encoder(args.max_clients)
    dump = None if args.dump_dir is None else Path(args.dump_dir)

    def train(task: secagg.Task | None) -> tuple[dict[str, np.ndarray], float]:
        assert task is not None, "the server hands out the model"
        global_arrays = task.arrays()
        load_arrays(model, global_arrays)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        for _ in range(LOCAL_STEPS):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
        local = to_arrays(model)
        update = {k: np.clip(local[k] - global_arrays[k], -CLIP, CLIP) for k in local}
        if dump is not None:
            np.savez(
                dump / f"round-{task.round}-{args.name}.npz",
                weight=np.float64(size),
                **{f"u/{k}": v for k, v in update.items()},
            )
        return update, float(size)

    client = secagg.Client(args.server, name=args.name, insecure=True, wait=60.0, timeout=300.0)
    outcomes = client.participate_sync(
        train,
        rounds=args.rounds,
        encoder=enc,
        on_outcome=lambda o: print(json.dumps(o.to_json()), flush=True),
    )
    return 0 if outcomes and all(o.included for o in outcomes) else 1


# -- server --------------------------------------------------------------------------------------


async def run_server(args: argparse.Namespace) -> list[dict[str, Any]]:
    torch = _torch()
    model = make_model(0)
    x_test, y_test = shard(10_000, 500)
    enc = encoder(args.clients)
    dump = None if args.dump_dir is None else Path(args.dump_dir)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    killed: list[str] = []

    def log(line: str) -> None:
        if args.verbose:
            print(f"server: {line}", file=sys.stderr, flush=True)
        # The operator's kill, in the middle of the round: after the keys were shared, before
        # the masked inputs arrived, so the server must unmask the victims' pairwise masks.
        if line.startswith(f"round {args.kill_round}: share-keys done") and not killed:
            for name in list(procs)[: args.kill]:
                procs[name].kill()
                killed.append(name)

    server = secagg.Server(
        "127.0.0.1:0",
        clients=args.clients,
        encoder=enc,
        insecure=True,
        log=log,
        join_timeout=120.0,
        phase_timeout=120.0,
        keys_timeout=60.0,
    )
    port = await server.start()
    for i in range(args.clients):
        name = f"client-{i:02d}"
        cmd = [
            sys.executable, __file__, "client", "--server", f"127.0.0.1:{port}",
            "--name", name, "--seed", str(i + 1), "--rounds", str(args.rounds),
            "--max-clients", str(args.clients),
        ]  # fmt: skip
        if args.dump_dir is not None:
            cmd += ["--dump-dir", args.dump_dir]
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)  # noqa: S603 - our own argv

    def loss() -> float:
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(model(x_test), y_test))

    history: list[dict[str, Any]] = [{"round": 0, "loss": loss()}]
    print(f"round 0: test loss {history[0]['loss']:.4f}", flush=True)

    def on_round(outcome: secagg.RoundOutcome) -> dict[str, np.ndarray] | None:
        record: dict[str, Any] = {
            "round": outcome.round,
            "status": outcome.report.status,
            "included": outcome.included,
            "dropped": outcome.dropped,
        }
        result = outcome.result
        if result is not None and isinstance(result, secagg.encoding.DecodedResult):
            mean = result.weighted_mean
            assert mean is not None
            arrays = to_arrays(model)
            load_arrays(model, {k: arrays[k] + np.asarray(mean[k], np.float32) for k in arrays})
            record["bound"] = result.weighted_mean_error_bound
            if dump is not None:
                np.savez(
                    dump / f"round-{outcome.round}-mean.npz",
                    **{k: np.asarray(v) for k, v in mean.items()},
                )
        record["loss"] = loss()
        history.append(record)
        print(
            f"round {outcome.round}: {outcome.report.status}, {len(outcome.included)} included, "
            f"{len(outcome.dropped)} dropped {sorted(outcome.dropped.items())}; "
            f"test loss {record['loss']:.4f}",
            flush=True,
        )
        if dump is not None:
            (dump / f"round-{outcome.round}.json").write_text(json.dumps(record))
        if outcome.round >= args.rounds:
            return None
        alive = sum(1 for p in procs.values() if p.poll() is None)
        server.expect(max(2, alive))
        return to_arrays(model)

    try:
        await server.run(on_round, task=to_arrays(model))
    finally:
        for proc in procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="role")
    client = sub.add_parser("client")
    client.add_argument("--server", required=True)
    client.add_argument("--name", required=True)
    client.add_argument("--seed", type=int, required=True)
    client.add_argument("--rounds", type=int, required=True)
    client.add_argument("--max-clients", type=int, required=True)
    client.add_argument("--dump-dir", default=None)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kill", type=int, default=3, help="clients killed mid-round")
    parser.add_argument("--kill-round", type=int, default=2)
    parser.add_argument("--dump-dir", default=None)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.role == "client":
        return run_client(args)
    history = asyncio.run(run_server(args))
    losses = [h["loss"] for h in history]
    print(json.dumps({"losses": losses}), flush=True)
    return 0 if all(h.get("status", "complete") == "complete" for h in history) else 1


if __name__ == "__main__":
    sys.exit(main())
