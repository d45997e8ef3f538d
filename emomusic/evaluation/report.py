"""Pictures for the evaluation report: confusion matrices and the valence/arousal scatter.

The scatter places each generated piece by the held-apart judge's quadrant probabilities
(valence = P(Q1) + P(Q4) − P(Q2) − P(Q3), arousal = P(Q1) + P(Q2) − P(Q3) − P(Q4)), coloured by
the quadrant that was asked for, so a method that follows the request shows four separated clouds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emomusic.vocab.emotions import QUADRANTS

COLOURS = {"Q1": "#e6550d", "Q2": "#a50f15", "Q3": "#3182bd", "Q4": "#31a354"}


def va_from_proba(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) quadrant probabilities (Q1..Q4 order) → valence and arousal in [-1, 1].

    Args:
        proba: (n, 4) probabilities.

    Returns:
        (valence (n,), arousal (n,)).
    """
    p = np.asarray(proba, dtype=float)
    return p[:, 0] + p[:, 3] - p[:, 1] - p[:, 2], p[:, 0] + p[:, 1] - p[:, 2] - p[:, 3]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_text(table: dict[str, dict[str, int]], asked: str = "asked") -> str:
    """A quadrant confusion table as plain text, one row per asked quadrant (the benchmarks print it).

    Args:
        table: asked quadrant -> heard quadrant -> count.
        asked: what the rows are called ("asked", "target").

    Returns:
        The lines, joined by newlines.
    """
    from emomusic.vocab.emotions import QUADRANTS

    head = f"{asked} \\ heard"
    rows = [f"{head:<15} " + "  ".join(QUADRANTS)]
    rows += [f"{a:<15} " + "  ".join(f"{table[a][h]:>2}" for h in QUADRANTS) for a in QUADRANTS]
    return "\n".join(rows)


def confusion_png(confusions: dict[str, dict[str, dict[str, int]]], out: Path) -> Path:
    """One heat map per method (rows: asked quadrant, columns: judged quadrant).

    Args:
        confusions: method → asked quadrant → judged quadrant → count.
        out: the PNG to write.

    Returns:
        ``out``.
    """
    plt = _plt()
    methods = list(confusions)
    fig, axes = plt.subplots(1, len(methods), figsize=(3.4 * len(methods), 3.3), squeeze=False)
    for ax, m in zip(axes[0], methods, strict=True):
        mat = np.array([[confusions[m][t][p] for p in QUADRANTS] for t in QUADRANTS])
        ax.imshow(mat, cmap="Blues", vmin=0)
        for i in range(4):
            for j in range(4):
                ax.text(j, i, str(mat[i, j]), ha="center", va="center",
                        color="white" if mat[i, j] > mat.max() / 2 else "black")
        ax.set_xticks(range(4), QUADRANTS)
        ax.set_yticks(range(4), QUADRANTS)
        ax.set_xlabel("judged")
        ax.set_ylabel("asked")
        ax.set_title(m)
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return out


def va_scatter_png(points: dict[str, list[tuple[str, float, float]]], out: Path) -> Path:
    """One panel per method: (asked quadrant, valence, arousal) points on the circumplex plane.

    Args:
        points: method → (asked quadrant, valence, arousal) points.
        out: the PNG to write.

    Returns:
        ``out``.
    """
    plt = _plt()
    methods = list(points)
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods), 3.6), squeeze=False)
    jitter = np.random.default_rng(0)
    for ax, m in zip(axes[0], methods, strict=True):
        for q in QUADRANTS:
            xy = np.array([(v, a) for asked, v, a in points[m] if asked == q]).reshape(-1, 2)
            xy = xy + jitter.normal(0, 0.015, xy.shape)  # separate identical points
            ax.scatter(xy[:, 0], xy[:, 1], s=12, alpha=0.7, color=COLOURS[q], label=f"asked {q}")
        ax.axhline(0, color="grey", lw=0.6)
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("valence (judge)")
        ax.set_ylabel("arousal (judge)")
        ax.set_title(m)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return out
