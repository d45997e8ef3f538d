"""Numpy building blocks shared by the numpy forwards (the generator's fast engine, the text encoder,
the small MLPs of the expression model and the melody extractor).

One home for each, so the forwards cannot drift apart.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ERF_A", "ERF_P", "INV_SQRT2", "gelu", "mlp", "mlp_layers", "one_blas_thread"]

INV_SQRT2 = np.float32(0.7071067811865476)
ERF_P = np.float32(0.3275911)  # Abramowitz & Stegun 7.1.26: p, then a1..a5
ERF_A = tuple(np.float32(v) for v in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU as nn.GELU, with erf from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7,
    below float32 resolution near 1). Numpy has no erf; scipy's import is a large share of a cold
    start, and torch's erf between OpenBLAS calls fought OpenBLAS's threads and may not run in a forked
    sampling worker. In place on three buffers (faster than a temporary per operation); bitwise equal to
    the plain expression
    0.5·x·(1 + sign(x)·(1 − t·(a1 + t·(a2 + t·(a3 + t·(a4 + t·a5))))·exp(−z²))), z = |x|/√2, t = 1/(1 + p·z).
    """
    z = np.abs(x)
    z *= INV_SQRT2
    t = z * ERF_P
    t += 1
    np.reciprocal(t, out=t)
    poly = t * ERF_A[-1]  # Horner: t·(a1 + t·(a2 + t·(a3 + t·(a4 + t·a5))))
    for a in reversed(ERF_A[:-1]):
        poly += a
        poly *= t
    z *= z  # z² → exp(−z²), then erf(|x|/√2) = 1 − poly·exp(−z²)
    np.negative(z, out=z)
    np.exp(z, out=z)
    z *= poly
    np.subtract(1, z, out=z)
    np.copysign(z, x, out=z)
    z += 1
    z *= x
    z *= np.float32(0.5)
    return z


def mlp(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """A small MLP with one output: ReLU between layers, linear output.

    Args:
        layers: (weight (out, in), bias (out,)) pairs, torch's `nn.Linear` layout.
        x: (rows, in) inputs, already normalised.

    Returns:
        (rows,) outputs.
    """
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x[:, 0]


def mlp_layers(arrays: dict[str, np.ndarray], prefix: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The layers `mlp` reads from saved arrays named `{prefix}{i}.weight` / `{prefix}{i}.bias`.

    Args:
        arrays: name -> array (a checkpoint's tensors).
        prefix: e.g. "" or "velocity." (names one level deeper, such as "context.0.weight" under "", are
            not counted).

    Returns:
        The (weight, bias) pairs in order, as float64.
    """
    n = sum(1 for k in arrays if k.startswith(prefix) and k.endswith(".weight")
            and k.count(".") == prefix.count(".") + 1)
    return [(np.asarray(arrays[f"{prefix}{i}.weight"], dtype=np.float64),
             np.asarray(arrays[f"{prefix}{i}.bias"], dtype=np.float64)) for i in range(n)]


def one_blas_thread():
    """A context in which BLAS runs on one thread (threadpoolctl): the caller parallelises instead.

    Sampling: a step is products of a handful of rows with small matrices, too small to split; a second
    OpenBLAS thread changed batch 1 and batch 8 by less than run-to-run noise, and when another process
    was busy two spinning OpenBLAS workers made a batch-8 generation many times slower. Embeddings: two
    windows at once on one BLAS thread each also run the element-wise work (GELU, softmax, norms),
    which numpy does on one core, on both.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")
