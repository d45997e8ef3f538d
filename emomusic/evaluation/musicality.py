"""What a musician hears, as numbers: statistics of a written MIDI file, comparable with real music.

A feature judge can be pleased by caricatures, so the musicality protocol (docs/DESIGN.md, evaluation
protocol) compares generated and real pieces on the same plain statistics — tempo, dynamics, pedal,
register, dissonance, the melody's prominence, key-signature honesty, duplicate notes, returning bars
and endings — and asks whether the generated median lies inside the real 10-90% range.

Every statistic is a pure function of the file as written (read with symusic), not of the sampler's
tokens: what a DAW or a listener gets is what is measured. Pieces are compared over the same span:
the first `beats` quarter-note beats (64 = 16 bars of 4/4) of each file's own grid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from emomusic.music.attributes import (
    estimate_key,
    fifths,
    key_correlations,
    key_templates,
    pitch_class_histogram,
    tonic_triad,
)
from emomusic.music.form import stall_flags
from emomusic.music.notes import Notes

__all__ = ["REALISM", "SECTION_STATISTICS", "STATISTICS", "Range", "RealReference", "bar_transitions", "compare",
           "is_score", "longest_stall", "musicality", "real_files", "real_range", "real_reference", "returning_bars",
           "sections"]

SPAN_BEATS = 64.0  # 16 bars of 4/4: the CLI's default length
C5 = 72
# interval classes heard as sharp dissonance when sounding together: minor second / major seventh, tritone
DISSONANT_CLASSES = (1, 6)
NEAR_REPEAT = 0.8  # a bar "returns" when its (onset, pitch) set overlaps an earlier bar's this much (Jaccard)

# statistic -> (what it measures, unit); the order is the report's
STATISTICS: dict[str, str] = {
    "tempo": "first tempo, BPM",
    "distinct_velocities": "distinct note velocities in the span",
    "pedal": "1 if the sustain pedal (CC64) is used in the span",
    "top_voice_excess": "mean velocity of the highest sounding note at each onset minus the others'",
    "highest_pitch": "highest MIDI pitch in the span",
    "lowest_pitch": "lowest MIDI pitch in the span",
    "above_c5": "1 if any note is above C5 (MIDI 72)",
    "dissonance": "share of simultaneous pitch-class pairs a minor second/major seventh or tritone apart",
    "tonic_triad_share": "share of notes on the estimated key's tonic triad (harmony that moves: IV, V, ii use "
                         "the other degrees)",
    "key_signature_agrees": "1 if the written key signature has the accidentals of the notes' key by a second "
                            "judge, Aarden-Essen profiles (none written: missing)",
    "key_signature_right": "1 if the written key signature asks for no more accidentals in the notes than the "
                           "second judge's would (agreeing with it counts; none written: missing)",
    "duplicate_notes": "notes repeating a same-pitch, same-onset note",
    "returning_bars": "share of bars (after the first) that repeat or nearly repeat an earlier bar",
    "ends_on_tonic": "1 if the lowest note sounding at the last onset (held ones too) is the estimated tonic",
    "cut_off_at_end": "1 if notes still sound at the final barline of the span",
}


@dataclass(frozen=True)
class Range:
    """The real data's spread of one statistic and where a generated set's median falls."""

    low: float  # 10th percentile of the real values
    high: float  # 90th percentile
    real_median: float
    generated_median: float

    @property
    def inside(self) -> bool:
        """Whether the generated median lies inside the real 10-90% range (ends included)."""
        return bool(self.low <= self.generated_median <= self.high)


def _read(path: str | os.PathLike):
    """All pitched notes of a file as beat arrays, its pedals, first tempo, key signature and bar length."""
    import symusic

    score = symusic.Score(str(path))
    tpq = float(score.ticks_per_quarter)
    pitch, start, dur, vel, pedals = [], [], [], [], []
    for track in score.tracks:
        if track.is_drum:
            continue
        a = track.notes.numpy()
        pitch.append(a["pitch"])
        start.append(a["time"] / tpq)
        dur.append(a["duration"] / tpq)
        vel.append(a["velocity"])
        pedals += [p.time / tpq for p in track.pedals]
        pedals += [c.time / tpq for c in track.controls if c.number == 64 and c.value >= 64]
    notes = (_cat(pitch, np.int64), _cat(start, np.float64), _cat(dur, np.float64), _cat(vel, np.int64))
    tempo = float(score.tempos[0].qpm) if len(score.tempos) else 120.0
    key = None
    if len(score.key_signatures):
        ks = score.key_signatures[0]
        mode = "minor" if ks.tonality else "major"
        tonic = (7 * int(ks.key)) % 12  # sharps (negative: flats) -> major tonic; minor is its relative
        key = ((tonic + 9) % 12 if mode == "minor" else tonic, mode)
    ts = score.time_signatures[0] if len(score.time_signatures) else None
    bar = 4.0 * ts.numerator / ts.denominator if ts is not None else 4.0
    return notes, np.asarray(pedals, dtype=np.float64), tempo, key, bar


def judged_signature(notes: Notes) -> int:
    """The signature (`fifths`) of the notes' key by Aarden-Essen profiles (music21's weights), by duration.

    A second judge, deliberately neither the profiles nor the weighting of the writer's estimate
    (`music.attributes.signature_key`: Temperley-Kostka-Payne on note counts): agreement with the
    writer's own estimator would be 1 by construction and say nothing about the music.
    """
    from music21.analysis.discrete import AardenEssen

    ae = AardenEssen()
    templates = key_templates(*(np.asarray(ae.getWeights(m), dtype=np.float64) for m in ("major", "minor")))
    k = int(np.argmax(key_correlations(pitch_class_histogram(notes), templates)))
    return fifths(k % 12, "major" if k < 12 else "minor")


def accidental_share(pitch: np.ndarray, signature: int) -> float:
    """The share of notes a stave with `signature` (`fifths`: sharps positive) writes with an accidental.

    Args:
        pitch: MIDI pitches.
        signature: sharps (positive) or flats (negative) of the key signature.

    Returns:
        The share of `pitch` outside the signature's seven pitch classes (0 for no notes).
    """
    tonic = (7 * int(signature)) % 12  # the major key with that signature
    scale = (tonic + np.array([0, 2, 4, 5, 7, 9, 11])) % 12
    return float(np.mean(~np.isin(np.asarray(pitch, dtype=np.int64) % 12, scale))) if len(pitch) else 0.0


def signature_right(pitch: np.ndarray, written: int, judged: int) -> bool:
    """Whether a written signature serves a reader as well as the second judge's (`judged_signature`).

    Why not agreement alone: where the notes leave two neighbouring keys open (C major with no B at all,
    say), either signature writes the same accidentals, and the judge's pick is a guess. On real openings
    with a known signature (POP909's annotations, ASAP's scores; `benchmarks/key_signature.py`) the true
    signature agrees with the judge in 0.82 / 0.79 of them, and serves as well in 0.98 / 0.92; a signature
    one step round the circle of fifths does in 0.23 / 0.13.

    Args:
        pitch: the notes' MIDI pitches.
        written: the written signature (`fifths`).
        judged: the judge's signature.

    Returns:
        True if they agree or the written one needs no more accidentals.
    """
    return (written - judged) % 12 == 0 or accidental_share(pitch, written) <= accidental_share(pitch, judged)


def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _onset_groups(start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct onsets (rounded to 1e-4 beats) and each note's group index."""
    return np.unique(np.round(start, 4), return_inverse=True)


def _dissonance(pitch: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    """Share of pitch-class pairs sounding together at onsets that are sharp dissonances."""
    onsets = np.unique(np.round(start, 4))
    bad = total = 0
    for t in onsets:
        pcs = np.unique(pitch[(start <= t + 1e-4) & (end > t + 1e-4)] % 12)
        if len(pcs) < 2:
            continue
        ic = np.abs(pcs[:, None] - pcs[None, :])[np.triu_indices(len(pcs), 1)]
        ic = np.minimum(ic, 12 - ic)
        bad += int(np.isin(ic, DISSONANT_CLASSES).sum())
        total += len(ic)
    return bad / total if total else 0.0


def _top_voice_excess(pitch: np.ndarray, vel: np.ndarray, start: np.ndarray) -> float:
    """Velocity of the highest note of each chord onset above the mean of the chord's other notes."""
    _, group = _onset_groups(start)
    diffs = []
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        if len(idx) < 2:
            continue
        top = idx[np.argmax(pitch[idx])]
        diffs.append(vel[top] - vel[idx[idx != top]].mean())
    return float(np.mean(diffs)) if diffs else 0.0


def _returning_bars(pitch: np.ndarray, start: np.ndarray, bar: float, n_bars: int,
                    threshold: float = NEAR_REPEAT) -> float:
    """Share of bars 2..n whose (position, pitch) set overlaps an earlier bar's at least `threshold`."""
    sets = []
    for b in range(n_bars):
        m = (start >= b * bar - 1e-6) & (start < (b + 1) * bar - 1e-6)
        sets.append({(round(float(s - b * bar), 2), int(p)) for s, p in zip(start[m], pitch[m], strict=True)})
    hits = 0
    for b in range(1, n_bars):
        if not sets[b]:
            continue
        for a in range(b):
            union = len(sets[a] | sets[b])
            if union and len(sets[a] & sets[b]) / union >= threshold - 1e-9:
                hits += 1
                break
    return hits / max(1, n_bars - 1)


def musicality(path: str | os.PathLike, beats: float = SPAN_BEATS, tail: bool = False) -> dict[str, float]:
    """The statistics of `STATISTICS` for one MIDI file, over its first (or last) `beats` beats.

    Args:
        path: a MIDI file (drum tracks are ignored).
        beats: the span measured, in quarter-note beats of the file's own grid.
        tail: measure the last `beats` beats (whole bars) instead: real pieces' endings, to compare
            generated endings with (the opening span of a long real piece has no ending).

    Returns:
        statistic -> value (nan where it does not apply, e.g. no key signature written, no notes).
    """
    (pitch, start, dur, vel), pedals, tempo, key, bar = _read(path)
    if tail and len(start):
        offset = max(0.0, float(np.ceil((start + dur).max() / bar - 1e-9) * bar) - beats)
        offset = np.floor(offset / bar) * bar
        keep = start >= offset - 1e-6
        pitch, start, dur, vel = pitch[keep], start[keep] - offset, dur[keep], vel[keep]
        pedals = pedals[pedals >= offset] - offset
    keep = start < beats - 1e-6
    pitch, start, dur, vel = pitch[keep], start[keep], dur[keep], vel[keep]
    out = dict.fromkeys(STATISTICS, float("nan"))
    out["tempo"] = tempo
    out["pedal"] = float(bool(np.any(pedals < beats)))
    if not len(pitch):
        return out
    end = start + dur
    span_end = min(beats, float(np.ceil(end.max() / bar - 1e-9) * bar))
    notes = Notes.from_arrays(pitch, start, dur, vel)
    tonic, mode = estimate_key(notes)
    judged = judged_signature(notes) if key is not None else 0
    _, group = _onset_groups(start)
    pairs = np.stack([group, pitch], axis=1)
    # the bass at the last onset: a figure on the final chord above a held tonic still ends on the tonic
    final = start.max()
    last = (start >= final - 1e-4) | ((start < final) & (end > final + 1e-4))
    out.update({
        "distinct_velocities": float(len(np.unique(vel))),
        "top_voice_excess": _top_voice_excess(pitch, vel, start),
        "highest_pitch": float(pitch.max()),
        "lowest_pitch": float(pitch.min()),
        "above_c5": float(pitch.max() > C5),
        "dissonance": _dissonance(pitch, start, end),
        "tonic_triad_share": float(np.isin(pitch % 12, tonic_triad(tonic, mode)).mean()),
        "key_signature_agrees": float("nan") if key is None else float((fifths(*key) - judged) % 12 == 0),
        "key_signature_right": float("nan") if key is None else float(signature_right(pitch, fifths(*key), judged)),
        "duplicate_notes": float(len(pairs) - len(np.unique(pairs, axis=0))),
        "returning_bars": _returning_bars(pitch, start, bar, max(1, int(round(span_end / bar)))),
        "ends_on_tonic": float(pitch[last].min() % 12 == tonic),
        "cut_off_at_end": float(np.any(end > span_end + 1e-4)),
    })
    return out


def real_range(real: list[float], generated: list[float]) -> Range:
    """The real values' 10-90% range and both medians (nan values ignored).

    Args:
        real: one statistic over real pieces.
        generated: the same statistic over generated pieces.

    Returns:
        A `Range`; its `inside` says whether the generated median lies in the real range.
    """
    r = np.asarray(real, dtype=float)
    g = np.asarray(generated, dtype=float)
    r, g = r[np.isfinite(r)], g[np.isfinite(g)]
    nan = float("nan")
    if not len(r) or not len(g):
        return Range(nan, nan, nan if not len(r) else float(np.median(r)), nan if not len(g) else float(np.median(g)))
    lo, hi = np.percentile(r, [10, 90])
    return Range(float(lo), float(hi), float(np.median(r)), float(np.median(g)))


def compare(real: list[dict[str, float]], generated: list[dict[str, float]]) -> dict[str, Range]:
    """`real_range` for every statistic of two lists of `musicality` results (a missing value counts as nan).

    Args:
        real: `musicality` results of real pieces.
        generated: `musicality` results of generated pieces.

    Returns:
        statistic -> `Range`, in `STATISTICS` order.
    """
    nan = float("nan")
    return {k: real_range([r.get(k, nan) for r in real], [g.get(k, nan) for g in generated]) for k in STATISTICS}


# Long pieces, section by section (the form benchmark): what thins out, narrows or stalls over time.
SECTION_STATISTICS: dict[str, str] = {
    "polyphony": "mean notes sounding at each onset",
    "density": "notes per beat",
    "pitch_range": "highest minus lowest pitch, semitones",
    "pitch_classes": "distinct pitch classes",
}


def sections(path: str | os.PathLike, section_bars: int = 16, n_sections: int = 4) -> list[dict[str, float]]:
    """`SECTION_STATISTICS` of each `section_bars`-bar section of a file (its own bar length), counted
    from the bar of its first note.

    Why from the first note: POP909's files open with one to four silent bars before the music (the
    recording's lead-in; 37 of 60 val songs), so sections counted from the file's start put a silent
    bar in the first section and make real openings seem to build up (last-over-first notes per beat
    at 16 bars, median 1.42 from the file's start, 1.35 from the first note).

    Args:
        path: a MIDI file (drum tracks ignored).
        section_bars: bars per section.
        n_sections: sections measured from the start (an empty one gets zeros).

    Returns:
        One dict per section.
    """
    (pitch, start, dur, _vel), _pedals, _tempo, _key, bar = _read(path)
    span = section_bars * bar
    if len(start):
        start = start - np.floor(start.min() / bar + 1e-9) * bar
    out = []
    for k in range(n_sections):
        m = (start >= k * span - 1e-6) & (start < (k + 1) * span - 1e-6)
        if not m.any():
            out.append(dict.fromkeys(SECTION_STATISTICS, 0.0))
            continue
        st, en, p = start[m], start[m] + dur[m], pitch[m]
        onsets = np.unique(np.round(st, 4))
        sounding = ((st[None, :] <= onsets[:, None] + 1e-6) & (en[None, :] > onsets[:, None] + 1e-6)).sum(1)
        out.append({"polyphony": float(sounding.mean()), "density": float(m.sum() / span),
                    "pitch_range": float(p.max() - p.min()), "pitch_classes": float(len(np.unique(p % 12)))})
    return out


def returning_bars(path: str | os.PathLike, n_bars: int | None = None, threshold: float = NEAR_REPEAT) -> float:
    """Share of bars (after the first) that return: their (onset, pitch) set overlaps an earlier bar's.

    Args:
        path: a MIDI file (drum tracks ignored).
        n_bars: measure the first this many bars (default: all).
        threshold: the Jaccard overlap that counts (1.0: an exact repeat; `NEAR_REPEAT`: a near one).

    Returns:
        The share, in [0, 1] (0 for a file without notes).
    """
    (pitch, start, _dur, _vel), _pedals, _tempo, _key, bar = _read(path)
    if not len(start):
        return 0.0
    n = int(np.ceil((start.max() + 1e-6) / bar))
    n = min(n, n_bars) if n_bars else n
    keep = start < n * bar - 1e-6
    return _returning_bars(pitch[keep], start[keep], bar, n, threshold)


def bar_transitions(path: str | os.PathLike, n_bars: int | None = None) -> tuple[list[dict[str, float]], dict]:
    """How each bar leads into the next, and how the last leads into the first (a loop's seam).

    For a transition from bar a to bar b: the pitches sounding in a's last beat against those struck in
    b's first beat. `leap`: the mean distance, in semitones, from each struck pitch to the nearest
    sounding one (voice leading: small when voices move by step or hold); `shared`: the share of pitch
    classes the two sets have in common (Jaccard; harmony that carries over). Transitions where either
    side is silent are left out.

    Args:
        path: a MIDI file (drum tracks ignored).
        n_bars: the piece's length in bars (default: up to its last onset).

    Returns:
        (the inner transitions, the seam from the last bar into the first ({} where one side is silent)).
    """
    (pitch, start, dur, _vel), _pedals, _tempo, _key, bar = _read(path)
    if not len(start):
        return [], {}
    n = n_bars or int(np.ceil((start.max() + 1e-6) / bar))
    end = np.minimum(start + dur, n * bar)
    beat = min(1.0, bar)

    def sounding(b: int) -> np.ndarray:  # in the last beat of bar b
        t1 = (b + 1) * bar
        return pitch[(start < t1 - 1e-6) & (end > t1 - beat + 1e-6)]

    def struck(b: int) -> np.ndarray:  # in the first beat of bar b
        return pitch[(start >= b * bar - 1e-6) & (start < b * bar + beat - 1e-6)]

    def measure(x: np.ndarray, y: np.ndarray) -> dict:
        if not len(x) or not len(y):
            return {}
        leap = float(np.mean(np.abs(y[:, None].astype(int) - x[None, :].astype(int)).min(1)))
        px, py = set((x % 12).tolist()), set((y % 12).tolist())
        return {"leap": leap, "shared": len(px & py) / len(px | py)}

    inner = [m for b in range(n - 1) if (m := measure(sounding(b), struck(b + 1)))]
    return inner, measure(sounding(n - 1), struck(0))


def longest_stall(path: str | os.PathLike, n_bars: int | None = None) -> int:
    """The longest run of bars that stall (`music.form.stall_flags`: a phrase on a triad or less).

    Args:
        path: a MIDI file (drum tracks ignored).
        n_bars: measure the first this many bars (default: all).

    Returns:
        Bars in the longest such run (0 when every bar moves).
    """
    (pitch, start, _dur, _vel), _pedals, _tempo, _key, bar = _read(path)
    if not len(start):
        return 0
    n = int(np.ceil((start.max() + 1e-6) / bar))
    n = min(n, n_bars) if n_bars else n
    classes = [frozenset((pitch[(start >= b * bar - 1e-6) & (start < (b + 1) * bar - 1e-6)] % 12).tolist())
               for b in range(n)]
    run = best = 0
    for stalled in stall_flags(classes):
        run = run + 1 if stalled else 0
        best = max(best, run)
    return best


# ------------------------------------------------------------------------------------ realism of one piece
# The statistics a single piece is judged on, each against the real pieces it means something for:
# tempo needs a real tempo (POP909, whose files carry it); how a piece is played needs performances
# (EMOPIA, POP909, ASAP performances); returning bars need a real bar grid (POP909, ASAP scores and
# Nottingham's folk tunes, as the form benchmark's reference); the rest hold for every piano opening.
REALISM: dict[str, str] = {
    "tempo": "tempo", "distinct_velocities": "performed", "top_voice_excess": "performed",
    "highest_pitch": "openings", "lowest_pitch": "openings", "dissonance": "openings", "returning_bars": "gridded",
}


def is_score(path: str | os.PathLike) -> bool:
    """An ASAP score (quantised, with its written tempo and bars), not a performance."""
    return os.path.basename(str(path)) == "midi_score.mid"


def real_files(datasets: tuple[str, ...], per_set: int, data_root: str | os.PathLike | None = None) -> dict[str, list]:
    """Up to `per_set` val records of each dataset, chosen by a hash of their id (stable, spread out).

    ASAP gives half scores, half performances; EMOPIA gives every val clip (callers subsample it).

    Args:
        datasets: dataset names (`training.datasets.records`).
        per_set: records per dataset.
        data_root: the datasets folder (default: the settings resolver's).

    Returns:
        dataset -> records.
    """
    import hashlib

    from emomusic.training.datasets import records

    def key(r) -> str:
        return hashlib.md5(r.id.encode()).hexdigest()

    out = {}
    for name in datasets:
        recs = [r for r in records(data_root, (name,)) if r.split == "val"]
        if name == "asap":
            scores = sorted((r for r in recs if is_score(r.path)), key=key)
            perfs = sorted((r for r in recs if not is_score(r.path)), key=key)
            out[name] = scores[: per_set // 2] + perfs[: per_set - min(len(scores), per_set // 2)]
            continue
        recs.sort(key=key)
        out[name] = recs[:per_set] if name != "emopia" else recs
    return out


@dataclass(frozen=True)
class RealReference:
    """Real val pieces' 10-90% range of each `REALISM` statistic, and how many statistics real pieces
    themselves have outside (the rule for calling one piece "inside")."""

    ranges: dict[str, tuple[float, float]]
    allowed_outside: int  # at most this many outside: what 90% of the real pieces manage
    real_inside: float  # share of the real piano pieces inside by that rule (at least 0.9)
    real_pieces: int  # the real piano pieces that rule was set on

    def outside(self, stats: dict[str, float]) -> tuple[int, float]:
        """(statistics outside their real range, mean distance outside in range widths; 0 inside).

        A statistic that does not apply (nan) counts as neither.

        Args:
            stats: one piece's `musicality` result.

        Returns:
            (count, distance).
        """
        gaps = self._gaps(stats)
        return int((gaps > 0).sum()), float(gaps.sum() / max(len(gaps), 1))

    def inside_share(self, stats: dict[str, float]) -> float:
        """The share of the statistics that apply (not nan) inside their real range (0 when none apply)."""
        gaps = self._gaps(stats)
        return float(np.mean(gaps == 0)) if len(gaps) else 0.0

    def _gaps(self, stats: dict[str, float]) -> np.ndarray:
        """How far each applicable statistic lies outside its real range, in range widths (0 inside)."""
        gaps = []
        for k, (lo, hi) in self.ranges.items():
            v = stats.get(k, float("nan"))
            if np.isfinite(v):
                gaps.append(max(lo - v, v - hi, 0.0) / max(hi - lo, 1e-9))
        return np.asarray(gaps, dtype=np.float64)

    def inside(self, stats: dict[str, float]) -> bool:
        """Whether a piece has no more statistics outside than 90% of real pieces have."""
        return self.outside(stats)[0] <= self.allowed_outside


def real_reference(per_set: int = 40, data_root: str | os.PathLike | None = None,
                   beats: float = SPAN_BEATS) -> RealReference:
    """The realism reference from EMOPIA, POP909, ASAP and Nottingham val pieces (picked as `real_files` does).

    Args:
        per_set: val pieces per dataset (EMOPIA: that many of its val clips).
        data_root: the datasets folder.
        beats: the span measured.

    Returns:
        The `RealReference`.
    """
    import hashlib

    recs = real_files(("emopia", "pop909", "asap", "nottingham"), per_set, data_root)
    recs["emopia"] = sorted(recs["emopia"], key=lambda r: hashlib.md5(r.id.encode()).hexdigest())[:per_set]
    measured = [(name, r, musicality(r.path, beats)) for name, rs in recs.items() for r in rs]
    piano = ("emopia", "pop909", "asap")
    groups = {"tempo": lambda n, r: n == "pop909",
              "performed": lambda n, r: n in piano and not is_score(r.path),
              "openings": lambda n, r: n in piano,
              "gridded": lambda n, r: n in ("pop909", "nottingham") or is_score(r.path)}
    ranges = {}
    for stat, group in REALISM.items():
        vals = np.array([m[stat] for n, r, m in measured if groups[group](n, r)], dtype=float)
        vals = vals[np.isfinite(vals)]
        ranges[stat] = (float(np.percentile(vals, 10)), float(np.percentile(vals, 90)))
    ref = RealReference(ranges, 0, 0.0, len(measured))
    counts = []
    for n, r, m in measured:  # each real piano piece on the statistics that mean something for it
        if n not in piano:
            continue
        applies = {k: (m[k] if groups[REALISM[k]](n, r) else float("nan")) for k in REALISM}
        counts.append(ref.outside(applies)[0])
    allowed = int(np.ceil(np.percentile(counts, 90)))
    return RealReference(ranges, allowed, float(np.mean(np.array(counts) <= allowed)), len(counts))
