"""Model, data and training: softmax regression on synthetic, non-IID Gaussian classes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NUM_FEATURES = 20
NUM_CLASSES = 4
Model = dict[str, npt.NDArray[np.float32]]


def _centres() -> npt.NDArray[np.float64]:
    return np.random.default_rng(42).normal(0.0, 1.0, (NUM_CLASSES, NUM_FEATURES))


def _draw(rng: np.random.Generator, n: int, class_weights: npt.NDArray[np.float64]):
    y = rng.choice(NUM_CLASSES, size=n, p=class_weights)
    x = _centres()[y] + rng.normal(0.0, 1.6, (n, NUM_FEATURES))
    return x.astype(np.float32), y


def load_partition(partition: int, num_partitions: int):
    """Node ``partition``'s data: its own size and class mix (non-IID)."""
    rng = np.random.default_rng(1000 + partition)
    weights = rng.dirichlet(np.full(NUM_CLASSES, 1.0))
    return _draw(rng, 60 + 25 * (partition % 7), weights)


def load_test():
    """A balanced held-out set for the server's evaluation."""
    return _draw(np.random.default_rng(7), 2000, np.full(NUM_CLASSES, 1.0 / NUM_CLASSES))


def init_model() -> Model:
    return {
        "w": np.zeros((NUM_FEATURES, NUM_CLASSES), dtype=np.float32),
        "b": np.zeros(NUM_CLASSES, dtype=np.float32),
    }


def _probs(model: Model, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    z = x @ model["w"] + model["b"]
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train(model: Model, x, y, epochs: int, lr: float) -> tuple[Model, float]:
    """Full-batch gradient descent; returns the new model and its training loss."""
    w, b = model["w"].astype(np.float64), model["b"].astype(np.float64)
    onehot = np.eye(NUM_CLASSES)[y]
    for _ in range(epochs * 5):
        p = _probs({"w": w, "b": b}, x)
        grad = (p - onehot) / len(y)
        w -= lr * (x.T @ grad)
        b -= lr * grad.sum(axis=0)
    new = {"w": w.astype(np.float32), "b": b.astype(np.float32)}
    return new, loss(new, x, y)


def loss(model: Model, x, y) -> float:
    p = _probs(model, x)
    return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))


def accuracy(model: Model, x, y) -> float:
    return float(np.mean(_probs(model, x).argmax(axis=1) == y))
