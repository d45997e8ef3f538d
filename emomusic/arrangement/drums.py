"""A drum part for a generated piece, played from a bank of real bars of the Groove MIDI Dataset.

Why a bank of performed bars rather than a generative network: a drummer's feel is in details a small
model trained in minutes smooths away (ghost-note velocities, the hi-hat's lilt, a kick a few ms early,
swing that is neither straight nor triplet). The Groove MIDI Dataset has ~18,000 bars of ten drummers
recorded to a click, so every bar written here is a bar a drummer played, with its own velocities and
micro-timing. What is learned from the train split is the bank and the statistics that steer choices
in it; generation is seeded numpy choice, fast (a few ms for 16 bars) and needs no torch.

The bank: every bar of the train performances, each hit on a 16th grid (`STEPS_PER_BEAT` per quarter)
with its drum class (the usual 9, Roland TD-11 pitches mapped as Magenta's GrooVAE does), velocity and
the offset from its grid step in 1/1024 beat (so a swung eighth keeps its place: the offset carries it).
Bars are grooves (`GROOVE`), fills from the dataset's fill takes (`FILL`), or fill-like bars found
inside the long takes (`INNER_FILL`: toms, or a burst before a crash; the only fills in 3/4 and 6/8).

How a part is made (`DrumModel.generate`):

1. Style: the asked name (our genres, their stand-ins, or a Groove style) gives Groove style families
   (`GENRE_STYLES`) and, for genres that want a lighter kit (folk, classical, early), an arousal shift.
   Only bars in the piece's metre are used; a metre with no bars in the bank raises `InvalidInputError`.
2. Groove: arousal sets a quantile of the style's bars' hits-per-bar and mean velocity (calm: the
   sparse, soft end; excited: the busy, loud end). A bar is drawn with weight falling with its distance
   from those targets and from the asked tempo (log BPM), among bars the drummer played (within `LOOSE`)
   at least `MIN_REPEATS` more times in that take (so not a solo or a fill the detector missed); it and
   the bar after it (if within `PAIR` of it, not a break) become the section's two-bar pattern.
3. Variation: each bar of the part is a *take* of the pattern, another bar of the same performance
   whose hits match (Jaccard distance of the hit grid <= `TIGHT`), so repeats differ as a drummer's do
   in velocity and timing. With the rate measured on the train takes (how often a drummer's bar differs
   more from the bar two before), a looser variant (<= `LOOSE`) is played instead.
4. Fills in the asked bars: a fill of the same metre, style, tempo and arousal quantile, at least as busy
   as the groove where the bank allows (the same drummer preferred); the groove plays until the beat
   where the fill starts. A crash (with kick) lands on the
   downbeat after a fill and on the asked crash bars; hi-hat/ride on that downbeat gives way to it.
5. Loudness: velocities are scaled so the groove's mean is the arousal quantile's (monotone in arousal).
6. Ending: the last bar is one hit on its downbeat (crash and kick). Every note is inside
   [0, n_bars * bar): early hits on the first downbeat start at 0, durations are short (`HIT_BEATS`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emomusic.errors import InvalidInputError, check_range
from emomusic.music.notes import Notes

__all__ = ["DRUM_PITCHES", "DRUM_NAMES", "GENRE_STYLES", "PITCH_CLASS", "DrumModel", "load_drums",
           "pattern_matrix"]

# The 9 drum classes and the GM pitch written for each.
DRUM_NAMES = ("kick", "snare", "closed_hihat", "open_hihat", "low_tom", "mid_tom", "high_tom", "crash", "ride")
DRUM_PITCHES = (36, 38, 42, 46, 43, 47, 50, 49, 51)
KICK, SNARE, CLOSED_HH, OPEN_HH, LOW_TOM, MID_TOM, HIGH_TOM, CRASH, RIDE = range(9)
TOMS = (LOW_TOM, MID_TOM, HIGH_TOM)
# Roland TD-11 (and GM) pitches -> class, as Magenta's drums encoder (used by GrooVAE) groups them.
_GROUPS = (
    (35, 36),
    (27, 28, 31, 32, 33, 34, 37, 38, 39, 40, 56, 65, 66, 75, 85),
    (22, 42, 44, 54, 68, 69, 70, 71, 73, 78, 80),
    (26, 46, 67, 72, 74, 79, 81),
    (29, 41, 43, 45, 61, 64, 84),
    (47, 48, 60, 63, 77, 86, 87),
    (30, 50, 62, 76, 83),
    (49, 52, 55, 57, 58),
    (51, 53, 59, 82),
)
PITCH_CLASS: dict[int, int] = {p: c for c, group in enumerate(_GROUPS) for p in group}

STEPS_PER_BEAT = 4  # 16th grid per quarter note
OFFSET_UNIT = 1.0 / 1024  # beats per unit of the stored int8 micro-timing offset
GROOVE, FILL, INNER_FILL = 0, 1, 2
HIT_BEATS = 0.1  # written duration of a hit (drums: the onset is what sounds)
TIGHT, LOOSE = 0.2, 0.45  # Jaccard distances of the hit grid: a take of the same pattern, a variant of it
TEMPO_WIDTH = 0.2  # log-BPM width of the tempo preference
QUANTILE_RANGE = (0.1, 0.85)  # arousal -1..1 -> these quantiles of density and loudness (beyond: solos)
MAX_BARS = 4096
PAIR = 0.6  # the bar after the chosen one joins it as a two-bar pattern when this close (Jaccard)
MIN_REPEATS = 2  # a section's pattern is a bar the drummer played (near enough) at least this many more times

# Our genres (and stand-ins) -> (Groove style families, arousal shift). Genres with little drum-kit
# tradition (folk, classical, early) get the lighter families and a calmer shift.
GENRE_STYLES: dict[str, tuple[tuple[str, ...], float]] = {
    "pop": (("pop", "rock", "soul"), 0.0),
    "rock": (("rock", "punk"), 0.0),
    "jazz": (("jazz",), 0.0),
    "country": (("country",), 0.0),
    "folk": (("country", "rock"), -0.4),
    "game": (("rock", "funk", "dance", "hiphop"), 0.2),
    "classical": (("pop", "soul", "rock"), -0.5),
    "early": (("country", "reggae"), -0.5),
}


def pattern_matrix(first: np.ndarray, step: np.ndarray, drum: np.ndarray, bars: np.ndarray,
                   steps: int) -> np.ndarray:
    """(len(bars), steps * 9) bool hit grid of the given bars (open hi-hat counted as hi-hat).

    Args:
        first: (B + 1,) event offsets of every bar.
        step, drum: every event's grid step and class.
        bars: the bar indices wanted (all of one metre, `steps` per bar).
        steps: grid steps per bar.

    Returns:
        The hit grid, one row per bar.
    """
    out = np.zeros((len(bars), steps * 9), dtype=bool)
    for row, b in enumerate(bars):
        s = slice(first[b], first[b + 1])
        d = np.where(drum[s] == OPEN_HH, CLOSED_HH, drum[s])
        out[row, np.minimum(step[s], steps - 1).astype(np.int64) * 9 + d] = True
    return out


def _jaccard(grid: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Jaccard distance of each grid row to `row`."""
    inter = (grid & row).sum(1)
    union = (grid | row).sum(1)
    return 1.0 - inter / np.maximum(union, 1)


def _gain(mean: float, target: float) -> float:
    """The loudness change that takes a bar of mean velocity `mean` to `target` (see `_louder`)."""
    mean, target = float(np.clip(mean, 1.0, 126.0)), float(np.clip(target, 1.0, 126.0))
    if target <= mean:
        return max(target / mean, 0.5)  # softer: a plain scale keeps the accents' ratios
    return -min(np.log(target / 127.0) / np.log(mean / 127.0), 3.0)  # louder: negative = a power, see _louder


def _louder(velocity: np.ndarray, gain: float) -> np.ndarray:
    """Velocities made softer (gain > 0: a scale) or louder (gain < 0: 127 * (v/127) ** -gain, which
    lifts soft hits more than accents and never clips, so a loud groove keeps its accents)."""
    if gain > 0:
        return velocity * gain
    return 127.0 * (np.clip(velocity, 1.0, 127.0) / 127.0) ** (-gain)


@dataclass
class _Perf:
    """One performance's bars of one kind, with their hit grids (built on demand)."""

    bars: np.ndarray
    grid: np.ndarray


@dataclass
class DrumModel:
    """The bank of performed bars and what steers choices in it (see the module docstring).

    Attributes:
        arrays_: the bank (`arrays()` names: perf.*, bar.*, event.*).
        config: styles (Groove style per perf.style index), metres ([num, den] per perf.metre index),
            variation_rate, and what training recorded.
    """

    arrays_: dict[str, np.ndarray]
    config: dict
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        a = self.arrays_
        self.first = a["bar.first"].astype(np.int64)
        self.step = a["event.step"].astype(np.int64)
        self.drum = a["event.drum"].astype(np.int64)
        self.velocity = a["event.velocity"].astype(np.float64)
        self.offset = a["event.offset"].astype(np.float64) * OFFSET_UNIT
        self.bar_perf = a["bar.perf"].astype(np.int64)
        self.bar_kind = a["bar.kind"].astype(np.int64)
        self.bar_index = a["bar.index"].astype(np.int64)
        self.perf_bpm = a["perf.bpm"].astype(np.float64)
        self.perf_style = a["perf.style"].astype(np.int64)
        self.perf_drummer = a["perf.drummer"].astype(np.int64)
        self.perf_metre = a["perf.metre"].astype(np.int64)
        # other bars of the same take within LOOSE of each bar: a groove the drummer kept playing, not a one-off
        repeats = a.get("bar.repeats")
        self.bar_repeats = repeats.astype(np.int64) if repeats is not None else np.full(len(self.bar_perf), 255)
        self.style_names: list[str] = list(self.config["styles"])
        self.metres: list[tuple[int, int]] = [(int(n), int(d)) for n, d in self.config["metres"]]
        self.families = np.array([s.split("/")[0] for s in self.style_names])
        counts = np.diff(self.first)
        self.bar_hits = counts.astype(np.float64)
        sums = np.add.reduceat(self.velocity, self.first[:-1]) if len(self.velocity) else np.zeros(len(counts))
        self.bar_velocity = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        # crash and kick on a groove's downbeat: what a crash bar's first hit is played like
        down = (self.step == 0) & (np.abs(self.offset) < 0.125)
        self.crash_velocity = np.sort(self.velocity[down & (self.drum == CRASH)])
        self.kick_velocity = np.sort(self.velocity[down & (self.drum == KICK)])
        self.crash_offset = np.sort(self.offset[down & (self.drum == CRASH)])
        if not len(self.crash_velocity):
            self.crash_velocity, self.crash_offset = np.array([100.0]), np.array([0.0])
        if not len(self.kick_velocity):
            self.kick_velocity = np.array([100.0])

    # ------------------------------------------------------------------ styles
    def styles(self) -> tuple[str, ...]:
        """Every style name `generate` accepts: our genres, then the Groove style families in the bank.

        Full Groove styles ("funk/groove1", "jazz/swing") are accepted too.
        """
        fams = sorted(set(self.families.tolist()))
        return tuple(GENRE_STYLES) + tuple(f for f in fams if f not in GENRE_STYLES)

    def _resolve_style(self, style: str) -> tuple[np.ndarray, float]:
        """(bool mask over perf styles that match, arousal shift) for a style name."""
        name = str(style).strip().lower()
        if name in GENRE_STYLES:
            fams, shift = GENRE_STYLES[name]
            return np.isin(self.families, fams), shift
        if name in set(self.families.tolist()):  # a family ("latin") before the style of that name
            return self.families == name, 0.0
        if name in self.style_names:
            return np.array([s == name for s in self.style_names]), 0.0
        close = difflib.get_close_matches(name, list(dict.fromkeys([*self.styles(), *self.style_names])), n=3,
                                        cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; styles: {', '.join(self.styles())}"
        raise InvalidInputError(f"unknown drum style {style!r}{hint}")

    # ------------------------------------------------------------------ choice helpers
    def _perf_bars(self, perf: int, kind: int, steps: int) -> _Perf:
        key = (perf, kind)
        if key not in self._cache:
            bars = np.flatnonzero((self.bar_perf == perf) & (self.bar_kind == kind) & (self.bar_hits > 0))
            self._cache[key] = _Perf(bars, pattern_matrix(self.first, self.step, self.drum, bars, steps))
        return self._cache[key]

    @staticmethod
    def _quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
        order = np.argsort(values)
        c = np.cumsum(weights[order])
        return float(values[order][min(np.searchsorted(c, q * c[-1]), len(c) - 1)])

    def _choose(self, bars: np.ndarray, q: float, tempo: float, rng: np.random.Generator,
                prefer: np.ndarray | None = None, min_hits: float = 0.0) -> int:
        """A bar of `bars` near the arousal quantile `q` of their density and loudness, and near `tempo`."""
        perf = self.bar_perf[bars]
        # each performance weighs about the same however long it is
        per_perf = np.bincount(perf, minlength=len(self.perf_bpm)).astype(np.float64)
        base = 1.0 / np.sqrt(per_perf[perf])
        dt = np.log(self.perf_bpm[perf] / tempo) / TEMPO_WIDTH
        tw = base * np.exp(-0.5 * dt**2)
        hits, vel = self.bar_hits[bars], self.bar_velocity[bars]
        t_hits, t_vel = max(self._quantile(hits, tw, q), min_hits), self._quantile(vel, tw, q)
        s_hits = max(np.sqrt(np.cov(hits, aweights=tw)) if len(bars) > 1 else 1.0, 1.0)
        s_vel = max(np.sqrt(np.cov(vel, aweights=tw)) if len(bars) > 1 else 1.0, 1.0)
        z = ((hits - t_hits) / (0.25 * s_hits)) ** 2 + ((vel - t_vel) / (0.5 * s_vel)) ** 2 + dt**2
        w = base * np.exp(-0.5 * (z - z.min()))
        if prefer is not None:
            w = w * np.where(prefer, 3.0, 1.0)
        return int(bars[rng.choice(len(bars), p=w / w.sum())])

    def _events(self, bar: int, from_step: int = 0, to_step: int = 10**6) -> tuple[np.ndarray, ...]:
        s = slice(self.first[bar], self.first[bar + 1])
        keep = (self.step[s] >= from_step) & (self.step[s] < to_step)
        return self.step[s][keep], self.drum[s][keep], self.velocity[s][keep], self.offset[s][keep]

    # ------------------------------------------------------------------ generation
    def generate(self, n_bars: int, *, time_signature: tuple[int, int] = (4, 4), style: str = "pop",
                 tempo: float = 120.0, arousal: float = 0.0, seed: int = 0, fills: Sequence[int] = (),
                 crashes: Sequence[int] = (0,), end: bool = True) -> Notes:
        """A drum part of `n_bars` bars (see the module docstring for how).

        Args:
            n_bars: bars to write (1..MAX_BARS).
            time_signature: (numerator, denominator); a metre the bank has bars of.
            style: one of `styles()`, or a full Groove style ("funk/groove1").
            tempo: BPM of the piece (quarter notes); grooves near it are preferred.
            arousal: -1 (calm: sparse, soft) .. 1 (excited: busy, loud).
            seed: the part for the same inputs and seed is the same.
            fills: 0-based bars that get a fill (the last bar of a phrase).
            crashes: bars whose downbeat gets a crash (the bar after a fill always does).
            end: the last bar is a single hit on its downbeat (otherwise the groove runs through it).

        Returns:
            Notes at the GM drum pitches (`DRUM_PITCHES`), times in quarter-note beats, every onset in
            [0, n_bars * bar length) and every note ending by then; meta holds the performances used.

        Raises:
            InvalidInputError: bad numbers, an unknown style (close names suggested), a metre with no bars.
        """
        n_bars = check_range("n_bars", n_bars, 1, MAX_BARS, int)
        tempo = check_range("tempo", tempo, 20, 400, unit="BPM")
        arousal = check_range("arousal", arousal, -1, 1)
        try:
            num, den = int(time_signature[0]), int(time_signature[1])
        except (TypeError, ValueError, IndexError):
            raise InvalidInputError(f"time_signature must be (numerator, denominator), got {time_signature!r}"
                                    ) from None
        fills_set, crash_set = set(), set()
        for name, given, out in (("fills", fills, fills_set), ("crashes", crashes, crash_set)):
            for b in given:
                out.add(check_range(f"{name} bar", b, 0, n_bars - 1, int))
        if (num, den) not in self.metres:
            playable = ", ".join(f"{n}/{d}" for n, d in self.metres)
            raise InvalidInputError(f"no drum grooves in {num}/{den} in the bank; playable metres: {playable}")
        bpb = num * 4.0 / den
        steps = int(round(bpb * STEPS_PER_BEAT))
        style_mask, shift = self._resolve_style(style)
        metre_perf = self.perf_metre == self.metres.index((num, den))
        perf_ok = metre_perf & style_mask[self.perf_style]
        fallback = not (perf_ok[self.bar_perf] & (self.bar_kind == GROOVE)).any()
        if fallback:  # a style with no grooves in this metre (3/4, 6/8 have few): the metre's grooves
            perf_ok = metre_perf
        lo, hi = QUANTILE_RANGE
        q = lo + (hi - lo) * (float(np.clip(arousal + shift, -1, 1)) + 1) / 2
        rng = np.random.default_rng(seed)

        grooves = np.flatnonzero(perf_ok[self.bar_perf] & (self.bar_kind == GROOVE) & (self.bar_hits > 1))
        kept = grooves[self.bar_repeats[grooves] >= MIN_REPEATS]
        anchor = self._choose(kept if len(kept) else grooves, q, tempo, rng)
        perf = int(self.bar_perf[anchor])
        takes = self._perf_bars(perf, GROOVE, steps)
        nxt = np.flatnonzero(self.bar_index[takes.bars] == self.bar_index[anchor] + 1)
        row_a = int(np.flatnonzero(takes.bars == anchor)[0])
        second = anchor
        if len(nxt):  # the bar after, when it is the same groove's other half (not a break or a fill)
            b = int(takes.bars[nxt[0]])
            if (_jaccard(takes.grid[[nxt[0]]], takes.grid[row_a])[0] <= PAIR and self.bar_repeats[b] >= MIN_REPEATS
                    and self.bar_hits[b] >= 0.5 * self.bar_hits[anchor]):
                second = b
        pattern = [anchor, second]
        rows = [int(np.flatnonzero(takes.bars == b)[0]) for b in pattern]
        dists = [_jaccard(takes.grid, takes.grid[r]) for r in rows]
        rate = float(self.config.get("variation_rate", 0.2))
        # loudness: the groove's mean velocity is the quantile's of the style's grooves at this tempo
        tw = np.exp(-0.5 * (np.log(self.perf_bpm[self.bar_perf[grooves]] / tempo) / TEMPO_WIDTH) ** 2)
        target_vel = self._quantile(self.bar_velocity[grooves], tw, q)
        gain = _gain(float(np.mean(self.bar_velocity[pattern])), target_vel)

        fill_pool = np.flatnonzero(perf_ok[self.bar_perf] & (self.bar_kind != GROOVE) & (self.bar_hits > 1))
        if not len(fill_pool):
            fill_pool = np.flatnonzero(metre_perf[self.bar_perf] & (self.bar_kind != GROOVE) & (self.bar_hits > 1))
        if len(fill_pool):
            fw = np.exp(-0.5 * (np.log(self.perf_bpm[self.bar_perf[fill_pool]] / tempo) / TEMPO_WIDTH) ** 2)
            fill_vel = self._quantile(self.bar_velocity[fill_pool], fw, q)
        last = n_bars - 1
        parts: list[tuple[np.ndarray, ...]] = []
        for k in range(n_bars):
            if end and k == last:
                break
            d = dists[k % 2]
            loose = np.flatnonzero((d > TIGHT) & (d <= LOOSE))
            pool = loose if (len(loose) and rng.random() < rate) else np.flatnonzero(d <= TIGHT)
            bar = int(takes.bars[rng.choice(pool)])
            st, dr, ve, of = self._events(bar)
            ve = _louder(ve, gain)
            if k in fills_set and len(fill_pool):
                fill = self._choose(fill_pool, q, tempo, rng, min_hits=float(np.mean(self.bar_hits[pattern])),
                                    prefer=self.perf_drummer[self.bar_perf[fill_pool]] == self.perf_drummer[perf])
                fs = self._events(fill)
                start = int(fs[0].min()) // STEPS_PER_BEAT * STEPS_PER_BEAT  # the beat the fill starts on
                keep = st < start
                fill_gain = _gain(float(self.bar_velocity[fill]), fill_vel)
                st, dr = np.concatenate([st[keep], fs[0]]), np.concatenate([dr[keep], fs[1]])
                ve = np.concatenate([ve[keep], _louder(fs[2], fill_gain)])
                of = np.concatenate([of[keep], fs[3]])
            crash_here = k in crash_set or (k - 1) in fills_set
            st, dr, ve, of = self._downbeat(st, dr, ve, of, crash_here, q, rng)
            parts.append((st + k * steps, dr, ve, of))
        if end:
            st, dr, ve, of = self._downbeat(*(np.zeros(0, dtype=np.int64),) * 2, np.zeros(0), np.zeros(0), True, q,
                                            rng)
            parts.append((st + last * steps, dr, ve, of))
        return self._notes(parts, bpb, n_bars, tempo, (num, den), perf, style, fallback)

    def _downbeat(self, st: np.ndarray, dr: np.ndarray, ve: np.ndarray, of: np.ndarray, crash: bool, q: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """A bar's events with its downbeat crash (and kick) added, or a lone section crash removed."""
        at_one = st == 0
        crashes = dr == CRASH
        if not crash:
            if crashes.sum() == 1 and (crashes & at_one).any():  # the drummer's section crash: not here
                keep = ~(crashes & at_one)
                return st[keep], dr[keep], ve[keep], of[keep]
            return st, dr, ve, of
        keep = ~(at_one & np.isin(dr, (CLOSED_HH, OPEN_HH, RIDE, CRASH, KICK)))
        st, dr, ve, of = st[keep], dr[keep], ve[keep], of[keep]
        off = float(self.crash_offset[rng.integers(len(self.crash_offset))])
        cv = float(np.quantile(self.crash_velocity, q))
        kv = float(np.quantile(self.kick_velocity, q))
        jitter = float(rng.normal(0.0, 0.004))
        return (np.concatenate([[0, 0], st]), np.concatenate([[CRASH, KICK], dr]),
                np.concatenate([[cv, kv], ve]), np.concatenate([[off, off + jitter], of]))

    def _notes(self, parts: list[tuple[np.ndarray, ...]], bpb: float, n_bars: int, tempo: float,
               ts: tuple[int, int], perf: int, style: str, fallback: bool) -> Notes:
        total = n_bars * bpb
        st = np.concatenate([p[0] for p in parts]).astype(np.float64)
        dr = np.concatenate([p[1] for p in parts]).astype(np.int64)
        ve = np.concatenate([p[2] for p in parts])
        of = np.concatenate([p[3] for p in parts])
        start = np.clip(st / STEPS_PER_BEAT + of, 0.0, None)
        keep = start < total - 1e-6
        start, dr, ve = start[keep], dr[keep], ve[keep]
        pitch = np.asarray(DRUM_PITCHES, dtype=np.int64)[dr]
        order = np.lexsort((start, pitch))
        start, pitch, ve = start[order], pitch[order], ve[order]
        # one pitch struck twice within a millisecond-ish is one hit (a grace note stays: it is further apart)
        dup = np.concatenate([[False], (np.diff(start) < 0.005) & (pitch[1:] == pitch[:-1])])
        start, pitch, ve = start[~dup], pitch[~dup], ve[~dup]
        nxt = np.concatenate([start[1:], [np.inf]])
        same = np.concatenate([pitch[1:] == pitch[:-1], [False]])
        dur = np.minimum(HIT_BEATS, np.where(same, nxt - start, np.inf))
        dur = np.maximum(np.minimum(dur, total - start), 1e-3)
        vel = np.clip(np.round(ve), 1, 127)
        return Notes.from_arrays(pitch, start, dur, vel, tempo=tempo, time_signature=ts,
                                 drums=True, style=str(style), groove_style=self.style_names[self.perf_style[perf]],
                                 groove_bpm=float(self.perf_bpm[perf]), style_fallback=fallback)

    # ------------------------------------------------------------------ persistence
    def arrays(self) -> dict[str, np.ndarray]:
        """The bank as named arrays (what `save` writes)."""
        return {k: np.ascontiguousarray(v) for k, v in self.arrays_.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], config: dict) -> DrumModel:
        """The model from `arrays()` and its config.

        Args:
            arrays: perf.{bpm,style,drummer,metre}, bar.{first,perf,kind,index}, event.{step,drum,velocity,offset},
                optionally bar.repeats (absent: every bar counts as a kept groove).
            config: {"styles": [...], "metres": [[num, den], ...], "variation_rate": float, ...}.

        Returns:
            The model.
        """
        need = {"perf.bpm", "perf.style", "perf.drummer", "perf.metre", "bar.first", "bar.perf", "bar.kind",
                "bar.index", "event.step", "event.drum", "event.velocity", "event.offset"}
        missing = sorted(need - set(arrays))
        if missing:
            raise InvalidInputError(f"drum bank lacks arrays {missing}")
        return cls({k: np.asarray(v) for k, v in arrays.items()}, dict(config))

    def save(self, directory: str | os.PathLike, metrics: dict | None = None, model_card: str = "") -> Path:
        """Write a checkpoint directory (safetensors bank, config, card).

        Args:
            directory: where to write.
            metrics: measured figures to store in the config.
            model_card: the MODEL_CARD.md text.

        Returns:
            The directory.
        """
        from emomusic.checkpoint import save_arrays

        config = {**self.config, "drum_pitches": list(DRUM_PITCHES), "steps_per_beat": STEPS_PER_BEAT,
                  "offset_unit": OFFSET_UNIT}
        return save_arrays(directory, "drums", self.arrays(), config, metrics, model_card)


def load_drums(directory: str | os.PathLike) -> DrumModel:
    """Load a drums checkpoint (numpy arrays, no torch).

    Args:
        directory: the checkpoint folder (e.g. checkpoints/drums).

    Returns:
        The model.

    Raises:
        CheckpointError: missing, corrupt, or written for another grid or drum set.
    """
    from emomusic.checkpoint import load_matching

    ck = load_matching(directory, "drums", {"drum_pitches": DRUM_PITCHES, "steps_per_beat": STEPS_PER_BEAT,
                                            "offset_unit": OFFSET_UNIT}, "emomusic train drums")
    return DrumModel.from_arrays(ck.state_dict, ck.config)
