"""Training windows for the generator: random bar-aligned crops with their own conditions.

Each window is re-decoded after augmentation (transposition, tempo shift) and its control
attributes are computed on what the model will actually see: transposition changes pitch
attributes, so they are recomputed after augmenting (docs/DESIGN.md, "Conditioning stays in view":
every window starts with its own condition prefix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emomusic.music.attributes import compute_controls
from emomusic.music.tokenizer import PITCH, TEMPO, MusicTokenizer
from emomusic.training.datasets import LABELLED, Prepared

# Share of training windows drawn from each dataset (the rest of the weight is by length within).
DATASET_WEIGHTS = {"emopia": 0.22, "vgmidi": 0.06, "vgmidi_v1": 0.06, "vgmidi_unl": 0.12, "pop909": 0.18,
                   "asap": 0.12, "nottingham": 0.08, "music21": 0.16}
EMOTION_PREFIX_PROB = 0.5  # labelled windows that train the emotion-token baseline prefix


@dataclass
class WindowSampler:
    """Draws (ids, loss_mask, dataset) windows from a prepared corpus with a numpy Generator."""

    data: Prepared
    tokenizer: MusicTokenizer
    seq_len: int = 512
    augment: bool = True

    def __post_init__(self) -> None:
        tk = self.tokenizer
        self.datasets = sorted({r.dataset for r in self.data.records})
        self.by_dataset = {d: np.flatnonzero(self.data.mask(dataset=d)) for d in self.datasets}
        w = np.array([DATASET_WEIGHTS.get(d, 0.05) for d in self.datasets])
        self.dataset_p = w / w.sum()
        lengths = np.diff(self.data.offsets)
        self.piece_p = {d: lengths[idx] / lengths[idx].sum() for d, idx in self.by_dataset.items()}
        self.bars = [np.flatnonzero(self.data.piece(i) == tk.bar_id) for i in range(len(self.data.records))]
        self.pitch_ids = tk.ids_of_type(PITCH)
        self.tempo_ids = tk.ids_of_type(TEMPO)

    def _augment(self, ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Transpose (pitch ids are contiguous) and shift the tempo bin, staying in range."""
        ids = ids.copy()
        is_pitch = (ids >= self.pitch_ids[0]) & (ids <= self.pitch_ids[-1])
        if is_pitch.any():
            lo = int(self.pitch_ids[0] - ids[is_pitch].min())
            hi = int(self.pitch_ids[-1] - ids[is_pitch].max())
            shift = int(rng.integers(max(-5, lo), min(6, hi + 1))) if lo <= hi else 0
            ids[is_pitch] += shift
        is_tempo = (ids >= self.tempo_ids[0]) & (ids <= self.tempo_ids[-1])
        if is_tempo.any():
            ids[is_tempo] = np.clip(ids[is_tempo] + int(rng.integers(-2, 3)), self.tempo_ids[0], self.tempo_ids[-1])
        return ids

    def window(self, i: int, rng: np.random.Generator, start_bar: int | None = None,
               emotion_prefix: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One window of piece i: (ids padded to seq_len, mask of positions that carry loss).

        Args:
            i: the piece's index.
            rng: the random stream.
            start_bar: the first bar (default: random).
            emotion_prefix: use the emotion token instead of the attributes (default: at random for labelled pieces).

        Returns:
            (ids, mask).
        """
        tk, rec = self.tokenizer, self.data.records[i]
        piece = self.data.piece(i).astype(np.int64)
        bars = self.bars[i]
        if len(bars):
            b = int(rng.integers(len(bars))) if start_bar is None else min(start_bar, len(bars) - 1)
            # bias toward the start so the model learns openings, like the clusterer's pieces
            start = int(bars[b if rng.random() > 0.2 or start_bar is not None else 0])
        else:
            start = 0
        use_emotion = (rec.quadrant is not None and rec.dataset in LABELLED and
                       (rng.random() < EMOTION_PREFIX_PROB if emotion_prefix is None else emotion_prefix))
        prefix_len = 3 if use_emotion else 2 + len(tk.control_bins.edges)
        body = piece[start:start + self.seq_len - prefix_len]
        ends = start + len(body) == len(piece) and len(body) < self.seq_len - prefix_len
        if self.augment:
            body = self._augment(body, rng)
        if tk.harmony:  # labelled after transposing, so every bar names the chord it now holds
            body = tk.with_harmony(body)
        notes = tk.decode(body)
        if use_emotion:
            prefix = tk.condition_ids(rec.genre, emotion=rec.quadrant)
        else:
            controls = tk.control_bins.to_bins(compute_controls(notes)) if len(notes) else None
            if controls is None:  # an empty window: condition on the piece's mean bins
                controls = {k: len(v) // 2 if v else 0 for k, v in tk.control_bins.values.items()}
            prefix = tk.condition_ids(rec.genre, controls=controls)
        seq = np.concatenate([prefix, body, [tk.eos_id] if ends else []]).astype(np.int64)[: self.seq_len]
        ids = np.full(self.seq_len, tk.pad_id, dtype=np.int64)
        ids[: len(seq)] = seq
        loss_mask = np.zeros(self.seq_len, dtype=bool)
        loss_mask[len(prefix) : len(seq)] = True  # predict music (and EOS), not the conditions
        return ids, loss_mask

    def batch(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """A batch of windows from datasets drawn by `DATASET_WEIGHTS`, with each one's dataset.

        Args:
            batch_size: windows.
            rng: the random stream.

        Returns:
            (ids (B, T), mask (B, T), dataset names).
        """
        out_ids, out_mask, names = [], [], []
        for _ in range(batch_size):
            d = self.datasets[rng.choice(len(self.datasets), p=self.dataset_p)]
            i = int(rng.choice(self.by_dataset[d], p=self.piece_p[d]))
            ids, m = self.window(i, rng)
            out_ids.append(ids)
            out_mask.append(m)
            names.append(d)
        return np.stack(out_ids), np.stack(out_mask), names

    def fixed_batches(self, dataset: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic windows of one dataset (validation): same crops every evaluation.

        Args:
            dataset: the dataset's name.
            n: windows.
            seed: the crops' seed.

        Returns:
            (ids (n, T), mask (n, T)).
        """
        rng = np.random.default_rng(seed)
        idx = self.by_dataset[dataset]
        chosen = rng.choice(idx, size=min(n, len(idx)), replace=False)
        pairs = [self.window(int(i), np.random.default_rng(seed + int(i)), start_bar=0, emotion_prefix=False)
                 for i in chosen]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
