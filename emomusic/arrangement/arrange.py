"""Arranging a generated piano piece for instruments: presets, roles, and the rules each role plays by.

The piano piece already holds the music: a tune on top, harmony in the middle, a bass below. Arranging
gives each of those to an instrument and writes it the way that instrument plays:

- melody: the learned melody extractor's line (`arrangement.melody`), one note at a time, moved by
  whole octaves (the contour kept) into the instrument's range;
- bass: the piano's own bass line (its lowest sounding notes), in its rhythm; excited music strikes
  each note again on every beat it spans, and on eighths when very excited, as a bass player drives a
  band;
- inner voices (strings, a second pulse channel): the accompaniment under the tune shared among the
  players from the top down (at most a double stop each), in the piano's own rhythm, so the pace
  and the chords that carry the emotion survive;
- chords (keys, a trio's piano): the accompaniment as the piano played it, voiced under the tune (a
  note above it moves down an octave), its lowest notes left to the bass so the two never double;
- drums: the groove model (`arrangement.drums`) in the genre's style, at the piece's tempo, busier
  and louder with arousal, with fills at the ends of the form's sections and a crash after them.

Every note ends inside its instrument's range (`vocab.instruments`), and no two tracks sound the same
pitch at the same time (the lower-priority part gives way), so nothing is doubled at the unison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from emomusic.errors import InvalidInputError
from emomusic.music.notes import Notes
from emomusic.music.tracks import Arrangement, Track
from emomusic.vocab.instruments import Instrument, instrument, parse_instruments

__all__ = ["LOUD_AROUSAL", "PRESETS", "Preset", "Role", "arrange", "phrase_marks", "preset", "roles_for"]

LOUD_AROUSAL: Final = 0.25
"""Arousal above which presets swap in their louder instruments and parts re-strike every beat."""
DRIVING_AROUSAL: Final = 0.7
"""Arousal above which the bass plays eighths (a driving rock/pop bass)."""
BASS_SPLIT: Final = 55
"""The bass part takes the piano's lowest sounding notes below G3 (or below the accompaniment's median
pitch in a piece set higher); the others are the harmony's."""
KEYS_FLOOR: Final = 48
"""Accompaniment notes below C3 are the bass's in a band: keys players leave that register to the bass."""
PRIORITY: Final[dict[str, int]] = {"melody": 0, "bass": 1, "inner": 2, "chords": 3, "piano": 0, "drums": 9}
"""Which part keeps a pitch two parts would sound at once (lower wins)."""


@dataclass(frozen=True)
class Role:
    """One part of a preset: what it plays, its track name, its instrument and the louder alternative."""

    role: str  # "melody", "chords", "bass", "inner", "drums" or "piano" (everything, as written)
    name: str
    instrument: str
    loud: str | None = None  # the instrument used when arousal > LOUD_AROUSAL


@dataclass(frozen=True)
class Preset:
    """A named arrangement: its parts in score order."""

    name: str
    description: str
    roles: tuple[Role, ...]


PRESETS: Final[dict[str, Preset]] = {p.name: p for p in (
    Preset("piano", "solo piano, as generated (default)", (Role("piano", "Piano", "piano"),)),
    Preset("band", "lead, keys, bass and drums", (
        Role("melody", "Lead", "electric guitar", loud="overdriven guitar"),
        Role("chords", "Keys", "electric piano"),
        Role("bass", "Bass", "bass", loud="electric bass (pick)"),
        Role("drums", "Drums", "drums"))),
    Preset("strings", "string quartet: violin I and II, viola, cello", (
        Role("melody", "Violin I", "violin"), Role("inner", "Violin II", "violin"),
        Role("inner", "Viola", "viola"), Role("bass", "Cello", "cello"))),
    Preset("chamber", "piano trio: violin, piano, cello", (
        Role("melody", "Violin", "violin"), Role("chords", "Piano", "piano"), Role("bass", "Cello", "cello"))),
    Preset("chiptune", "game console: two pulse channels, a bass channel and noise drums", (
        Role("melody", "Pulse 1", "square"), Role("inner", "Pulse 2", "square"),
        Role("bass", "Triangle", "synth bass"), Role("drums", "Noise", "drums"))),
)}
"""Arrangement name → preset. Adding one is one entry here (and its line in the docs)."""

_POLYPHONIC_FAMILIES: Final = frozenset({0, 1, 2, 3, 6, 11})  # keyboards, mallets, organs, guitars, ensembles, pads


def preset(name: str) -> Preset:
    """The preset a user names (case and typos forgiven), or one line listing the presets.

    Args:
        name: e.g. "band", "Strings".

    Returns:
        The `Preset`.

    Raises:
        InvalidInputError: an unknown name, with close matches.
    """
    from emomusic.vocab.emotions import lookup, normalise

    if not isinstance(name, str) or not normalise(name):
        raise InvalidInputError(f"arrangement must be a name such as 'band', got {name!r}")
    return lookup(PRESETS, normalise(name), name, "arrangement", f"arrangements: {', '.join(PRESETS)}")


def _polyphonic(inst: Instrument) -> bool:
    return inst.program >= 0 and (inst.program // 8 in _POLYPHONIC_FAMILIES or inst.program == 46)


def roles_for(arrangement: str | None, instruments: str | Sequence[str] | None) -> tuple[Preset, list[Instrument]]:
    """The parts to write: a preset's roles, with `instruments` (in order) replacing its instruments.

    Without a preset, the instruments alone choose the roles: one polyphonic instrument plays
    everything; otherwise the first plays the melody, a last low instrument the bass, drums the kit,
    and the ones between the inner voices (a polyphonic one the chords).

    Args:
        arrangement: a preset name, or None.
        instruments: "violin, cello" or a list of names, or None.

    Returns:
        (preset, one instrument per role), the preset built from the instruments when none was named.

    Raises:
        InvalidInputError: unknown names, more instruments than the preset has parts, or drums given
            where the preset has no kit (or the kit where it has a pitched part).
    """
    insts = list(parse_instruments(instruments if isinstance(instruments, str) or instruments is None
                                   else ",".join(instruments)))
    if arrangement is None and insts:
        return _from_instruments(insts)
    chosen = preset(arrangement or "piano")
    if len(insts) > len(chosen.roles):
        raise InvalidInputError(f"arrangement {chosen.name!r} has {len(chosen.roles)} parts "
                                f"({', '.join(r.name for r in chosen.roles)}); {len(insts)} instruments given")
    out = []
    for i, r in enumerate(chosen.roles):
        inst = insts[i] if i < len(insts) else instrument(r.instrument)
        if inst.drums != (r.role == "drums"):
            raise InvalidInputError(f"arrangement {chosen.name!r}: part {i + 1} ({r.name}) "
                                    f"{'is the drum kit' if r.role == 'drums' else 'is pitched'}; "
                                    f"{inst.name} cannot play it")
        out.append(inst)
    return chosen, out


def _from_instruments(insts: list[Instrument]) -> tuple[Preset, list[Instrument]]:
    kit = [i for i in insts if i.drums]
    pitched = [i for i in insts if not i.drums]
    if len(kit) > 1:
        raise InvalidInputError("give the drums once")
    if not pitched:
        raise InvalidInputError("give at least one pitched instrument besides the drums")
    roles: list[Role] = []
    if len(pitched) == 1:
        only = pitched[0]
        roles.append(Role("piano" if _polyphonic(only) else "melody", only.name, only.name))
    else:
        # a low single-line last instrument (cello, bass, bassoon, tuba) takes the bass; a piano plays chords
        bass_last = pitched[-1].low <= 40 and not _polyphonic(pitched[-1])
        for j, inst in enumerate(pitched):
            if j == 0:
                role = "melody"
            elif j == len(pitched) - 1 and bass_last:
                role = "bass"
            else:
                role = "chords" if _polyphonic(inst) else "inner"
            roles.append(Role(role, inst.name, inst.name))
    ordered = pitched + kit
    roles += [Role("drums", "Drums", "drums")] * len(kit)
    names = _unique([r.name for r in roles])
    roles = [replace(r, name=n) for r, n in zip(roles, names, strict=True)]
    return Preset("custom", ", ".join(i.name for i in insts), tuple(roles)), ordered


def _unique(names: list[str]) -> list[str]:
    """Track names made distinct: two violins become "Violin 1" and "Violin 2"."""
    out = []
    for i, n in enumerate(names):
        total = names.count(n)
        out.append(f"{n} {names[:i + 1].count(n)}" if total > 1 else n)
    return out


# ---------------------------------------------------------------------------------------------- the parts
def _fold(pitch: np.ndarray, inst: Instrument) -> np.ndarray:
    """Each pitch moved by whole octaves into the instrument's range (the nearest octave that fits)."""
    p = pitch.astype(np.int64)
    p = np.where(p < inst.low, p + 12 * np.ceil((inst.low - p) / 12), p)
    p = np.where(p > inst.high, p - 12 * np.ceil((p - inst.high) / 12), p)
    return np.clip(p, inst.low, inst.high).astype(np.int16)


def _with_pitch(notes: Notes, pitch: np.ndarray) -> Notes:
    """`notes` with new pitches, re-sorted by (start, pitch) as `Notes` keeps them; pedal and tempi kept."""
    moved = Notes.from_arrays(pitch, notes.start, notes.duration, notes.velocity, notes.tempo, notes.time_signature,
                              **notes.meta)
    return replace(moved, pedals=notes.pedals, tempos=notes.tempos)


def _line_shift(pitch: np.ndarray, inst: Instrument, enough: float = 0.5) -> int:
    """The whole-octave shift of a line: none when `enough` of it already lies in the range, else the
    one that puts most of it there (ties: the smallest move); the stragglers are folded one by one."""
    if not len(pitch):
        return 0
    shifts = [12 * k for k in range(-4, 5)]
    inside = [float(((pitch + s >= inst.low) & (pitch + s <= inst.high)).mean()) for s in shifts]
    if inside[4] >= enough:
        return 0
    best = max(inside)
    return min((s for s, n in zip(shifts, inside, strict=True) if n == best), key=abs)


def _monophonic(notes: Notes) -> Notes:
    """One note at a time: the highest of each onset, each cut where the next begins."""
    if not len(notes):
        return notes
    onset = np.round(notes.start, 6)
    last_of_onset = np.append(onset[1:] != onset[:-1], True)  # sorted by (start, pitch): the highest is last
    n = notes.select(last_of_onset)
    dur = n.duration.copy()
    dur[:-1] = np.minimum(dur[:-1], np.diff(n.start))
    return replace(n, duration=dur)


def _melody(notes: Notes, mask: np.ndarray, inst: Instrument) -> Notes:
    line = _monophonic(notes.select(mask))
    shifted = line.pitch + _line_shift(line.pitch, inst)
    return replace(_with_pitch(line, _fold(shifted, inst)), pedals=np.zeros((0, 2)))


def _beat(notes: Notes) -> float:
    """The beat length in quarter notes (a dotted quarter in compound metres such as 6/8)."""
    num, den = notes.time_signature
    return 1.5 if den == 8 and num % 3 == 0 and num > 3 else 4.0 / den


def _bass(rest: Notes, inst: Instrument, arousal: float, n_bars: int) -> tuple[Notes, np.ndarray]:
    """The piano's own bass line: each note that is the lowest sounding when it starts and lies below
    `BASS_SPLIT` (or the accompaniment's median pitch, if higher), in its rhythm, each cut where the next
    begins; when the music is excited each note is struck again on every beat it spans (on eighths when
    very excited), as a bass player drives a band.

    Why the piano's line and not one note per beat: sparse, sad pieces live on their silences and held
    notes, and a bass that filled every beat made the recognizer hear them as tense.

    Returns:
        (the bass part, a mask over `rest` of the notes the bass took over).
    """
    end = n_bars * rest.beats_per_bar
    taken = np.zeros(len(rest), dtype=bool)
    empty = replace(rest.select(np.zeros(len(rest), bool)), pedals=np.zeros((0, 2)))
    if not len(rest):
        return empty, taken
    onset = np.round(rest.start, 3)
    ends = rest.start + rest.duration
    split = max(BASS_SPLIT, float(np.median(rest.pitch)))  # a piece set high still has its lowest line
    for t in np.unique(onset):
        idx = np.flatnonzero(onset == t)
        low = idx[np.argmin(rest.pitch[idx])]
        under = (rest.start < rest.start[low] - 1e-6) & (ends > rest.start[low] + 1e-6) & (rest.pitch < rest.pitch[low])
        taken[low] = rest.pitch[low] < split and not under.any()
    line = rest.select(taken)
    dur = line.duration.copy()
    dur[:-1] = np.minimum(dur[:-1], np.diff(line.start))
    dur = np.minimum(dur, end - line.start)
    p, s, d, v = line.pitch, line.start, dur, line.velocity
    if arousal > LOUD_AROUSAL:  # driving: struck again on each beat (or eighth) the note spans
        step = _beat(rest)
        step = step / 2 if arousal > DRIVING_AROUSAL else step
        pp, ss, dd, vv = [], [], [], []
        for pitch, start, length, vel in zip(p, s, d, v, strict=True):
            grid = np.arange(np.floor(start / step + 1e-6) + 1, np.ceil((start + length) / step - 1e-6)) * step
            hits = np.concatenate([[start], grid[grid > start + 1e-6]])  # its onset, then the beats it spans
            for h in hits:
                pp.append(pitch)
                ss.append(h)
                dd.append(min(step, start + length - h) * 0.9)
                vv.append(vel)
        p, s, d, v = np.array(pp), np.array(ss), np.array(dd), np.array(vv)
    part = Notes.from_arrays(_fold(np.asarray(p), inst), s, d, v, rest.tempo, rest.time_signature, **rest.meta)
    return replace(part, tempos=rest.tempos), taken


def _ceiling(melody: Notes, times: np.ndarray) -> np.ndarray:
    """At each time, the lower of the tune's last and next notes (128 where there is no tune): what the
    accompaniment stays under, so no other part rises above the tune, in its rests included."""
    if not len(melody):
        return np.full(len(times), 128)
    i = np.searchsorted(melody.start, times + 1e-6, side="right")
    prev = np.where(i > 0, melody.pitch[np.maximum(i - 1, 0)], 128)
    nxt = np.where(i < len(melody), melody.pitch[np.minimum(i, len(melody) - 1)], 128)
    return np.minimum(prev, nxt).astype(np.int64)


def _under_tune(part: Notes, melody: Notes, floor: int) -> Notes:
    """`part` with each note at or above the tune (`_ceiling`) moved down by octaves; a note that would
    fall below `floor` goes instead. The accompaniment stays under the melody, as an arranger voices it."""
    if not len(part) or not len(melody):
        return part
    cap = _ceiling(melody, part.start)
    over = part.pitch.astype(np.int64) >= cap
    lowered = part.pitch - 12 * np.ceil((part.pitch - cap + 1) / 12).astype(np.int64)
    pitch = np.where(over, lowered, part.pitch)
    return _with_pitch(part.select(pitch >= floor), pitch[pitch >= floor]).deduplicate()


def _inner(rest: Notes, melody: Notes, insts: list[Instrument]) -> list[Notes]:
    """The accompaniment shared among the inner players as the piano played it: at each onset its notes
    from the top down, at most two to a player (a double stop), the highest to the first player; a
    player holds its notes as the piano did while no more than two sound at once. The piano's rhythm, and
    with it the music's pace and its chords, carry over (held chords stay held, a broken-chord figure
    becomes the first player's)."""
    part = _under_tune(rest, melody, 0)
    k = len(insts)
    empty = replace(rest.select(np.zeros(len(rest), bool)), pedals=np.zeros((0, 2)))
    if not len(part):
        return [empty] * k
    onset = np.round(part.start, 3)
    voice = np.full(len(part), -1)
    for t in np.unique(onset):
        idx = np.flatnonzero(onset == t)
        idx = idx[np.argsort(-part.pitch[idx], kind="stable")]
        per = min(2, -(-len(idx) // k))
        for r, i in enumerate(idx[:k * per]):
            voice[i] = r // per
    out = []
    for j, inst in enumerate(insts):
        mine = part.select(voice == j)
        if not len(mine):
            out.append(empty)
            continue
        mine = _with_pitch(mine, _fold(mine.pitch, inst)).deduplicate()
        out.append(replace(mine, duration=_at_most(mine, 2), pedals=np.zeros((0, 2))))
    return out


def _at_most(notes: Notes, voices: int) -> np.ndarray:
    """Durations so that no more than `voices` notes sound at once: where new notes start, the oldest
    still sounding are released (a player holds a note, or a double stop, as long as the piano did)."""
    dur = notes.duration.copy()
    active: list[int] = []
    onset = np.round(notes.start, 3)
    for t in np.unique(onset):
        new = np.flatnonzero(onset == t)
        active = [i for i in active if notes.start[i] + dur[i] > t + 1e-6]
        active.sort(key=lambda i: notes.start[i])
        while active and len(active) + len(new) > voices:
            i = active.pop(0)
            dur[i] = max(1e-3, t - notes.start[i])
        active += [int(i) for i in new]
    return dur


def _chords(rest: Notes, taken: np.ndarray, inst: Instrument, has_bass: bool, melody: Notes) -> Notes:
    """The accompaniment as played, voiced under the tune; with a bass part, the notes the bass took go
    and the other low ones move up an octave out of its register (a keys player's left hand leaves the
    bass to the bass); the pedal is kept only for keyboards."""
    part = rest.select(~taken) if has_bass else rest
    if has_bass and len(part):
        low = part.pitch < KEYS_FLOOR
        up = part.pitch + 12 * np.ceil(np.maximum(KEYS_FLOOR - part.pitch, 0) / 12).astype(np.int64) * low
        part = _with_pitch(part, up).deduplicate()
    part = _under_tune(part, melody, KEYS_FLOOR if has_bass else inst.low)
    part = _with_pitch(part, _fold(part.pitch, inst))
    return part if inst.program < 8 else replace(part, pedals=np.zeros((0, 2)))


def _no_unisons(tracks: list[Track]) -> list[Track]:
    """Where two pitched tracks would sound one pitch at once, the lower-priority track gives way:
    its note is dropped when it starts while the other sounds, and cut short where the other starts."""
    order = sorted(range(len(tracks)), key=lambda i: PRIORITY.get(tracks[i].role, 5))
    kept: list[Notes] = []
    out = list(tracks)
    for i in order:
        t = tracks[i]
        if t.drums or not len(t.notes):
            continue
        n = t.notes
        drop = np.zeros(len(n), bool)
        dur = n.duration.copy()
        for other in kept:
            for p in np.intersect1d(np.unique(n.pitch), np.unique(other.pitch)):
                mine = np.flatnonzero(n.pitch == p)
                o = np.flatnonzero(other.pitch == p)
                os_, oe = other.start[o], other.start[o] + other.duration[o]
                for j in mine:
                    s = n.start[j]
                    if np.any((os_ <= s + 1e-6) & (oe > s + 1e-6)):
                        drop[j] = True
                        continue
                    later = os_[(os_ > s + 1e-6) & (os_ < s + dur[j] - 1e-6)]
                    if len(later):
                        dur[j] = float(later.min() - s)
        n = replace(n, duration=dur).select(~drop)
        out[i] = replace(t, notes=n)
        kept.append(n)
    return out


def phrase_marks(sections: Sequence[dict], n_bars: int, phrase: int = 8) -> tuple[list[int], list[int]]:
    """Bars (0-based) that get a drum fill (the last bar of each section and of each `phrase` bars within
    a long one) and a crash (the first bar of the piece and of each section), the last bar excluded.

    Args:
        sections: the candidate's form sections (`first_bar` 1-based, `bars`), or [] for one section.
        n_bars: the piece's length.
        phrase: bars per phrase inside a section longer than this.

    Returns:
        (fill bars, crash bars), each sorted.
    """
    spans = [(int(s["first_bar"]) - 1, int(s["bars"])) for s in sections] or [(0, n_bars)]
    fills, crashes = set(), {0}
    for first, bars in spans:
        crashes.add(first)
        fills.add(first + bars - 1)
        fills.update(first + k - 1 for k in range(phrase, bars, phrase))
    fills.discard(n_bars - 1)
    return sorted(f for f in fills if 0 <= f < n_bars), sorted(c for c in crashes if 0 <= c < n_bars)


def _drum_part(drums, notes: Notes, sections: Sequence[dict], n_bars: int, style: str, arousal: float,
               seed: int) -> Notes:
    """The kit for the whole piece. A trajectory's sections each carry their own arousal (and tempo): each
    gets its own groove at that arousal, so a calm section stays sparse and soft and a tense one drives,
    with the fill before and the crash after every change; otherwise one groove at the piece's arousal."""
    fills, crashes = phrase_marks(sections, n_bars)
    spans = [(int(s["first_bar"]) - 1, int(s["bars"]), float(s["arousal"]), float(s.get("tempo", notes.tempo)))
             for s in sections if "arousal" in s]
    if len(spans) < 2:
        return drums.generate(n_bars, time_signature=notes.time_signature, style=style, tempo=notes.tempo,
                              arousal=float(arousal), seed=seed, fills=fills, crashes=crashes)
    bar = notes.beats_per_bar
    pieces = []
    for k, (first, bars, level, tempo) in enumerate(spans):
        bars = min(bars, n_bars - first)
        if bars < 1:
            continue
        inside = [b - first for b in fills if first <= b < first + bars]
        kit = drums.generate(bars, time_signature=notes.time_signature, style=style, tempo=tempo,
                             arousal=min(1.0, max(-1.0, level)), seed=seed + k, fills=inside,
                             crashes=[b - first for b in crashes if first <= b < first + bars],
                             end=first + bars >= n_bars)
        pieces.append(replace(kit, start=kit.start + first * bar))
    cat = {k: np.concatenate([getattr(p, k) for p in pieces]) for k in ("pitch", "start", "duration", "velocity")}
    return Notes.from_arrays(cat["pitch"], cat["start"], cat["duration"], cat["velocity"], notes.tempo,
                             notes.time_signature, **pieces[0].meta)


def arrange(notes: Notes, arrangement: str | None = None, instruments: str | Sequence[str] | None = None, *,
            melody: Callable[[Notes], np.ndarray] | None = None, drums=None, arousal: float = 0.0,
            style: str = "pop", seed: int = 0, sections: Sequence[dict] = ()) -> Arrangement:
    """Arrange a piano piece: each role of the preset written for its instrument (see the module docstring).

    Args:
        notes: the generated (or any) piano piece.
        arrangement: a preset name (`PRESETS`); None with `instruments` builds the parts from them,
            None without them is "piano".
        instruments: names replacing the preset's instruments in order ("violin, cello").
        melody: notes → bool mask of the melody (the learned extractor's `mask`); needed when a part
            plays the melody.
        drums: a `DrumModel` (`arrangement.drums.load_drums`); needed when a part is the kit.
        arousal: the piece's arousal in [-1, 1]: louder instruments and driving parts above
            `LOUD_AROUSAL`, and the drums' density and loudness.
        style: the genre (or a Groove style) the drums play in.
        seed: the drums' seed.
        sections: the form's sections (`Candidate.sections`): fills end them, crashes start them.

    Returns:
        The `Arrangement`, tracks in the preset's order.

    Raises:
        InvalidInputError: unknown preset or instrument names (with close matches), a mismatch between
            the instruments and the parts, or a part whose model was not given.
    """
    chosen, insts = roles_for(arrangement, instruments)
    loud = arousal > LOUD_AROUSAL
    insts = [instrument(r.loud) if loud and r.loud and (not instruments) else i
             for r, i in zip(chosen.roles, insts, strict=True)]
    roles = [r.role for r in chosen.roles]
    n_bars = notes.n_bars
    if roles == ["piano"]:
        inst = insts[0]
        part = _with_pitch(notes, _fold(notes.pitch, inst))
        return Arrangement((Track(chosen.roles[0].name, inst.program, "piano", part),), chosen.name)

    parts: dict[int, Notes] = {}
    mel = np.zeros(len(notes), bool)
    if "melody" in roles:
        if melody is None:
            raise InvalidInputError("arranging a melody part needs the melody extractor (checkpoints/melody)")
        mel = np.asarray(melody(notes), dtype=bool)
        i = roles.index("melody")
        parts[i] = _melody(notes, mel, insts[i])
    line = _monophonic(notes.select(mel))  # where the tune sounds, before any octave move
    rest = notes.select(~mel)
    taken = np.zeros(len(rest), bool)
    if "bass" in roles:
        i = roles.index("bass")
        parts[i], taken = _bass(rest, insts[i], arousal, n_bars)
    inner = [i for i, r in enumerate(roles) if r == "inner"]
    if inner:
        upper = rest.select(~taken) if "bass" in roles else rest
        for i, part in zip(inner, _inner(upper, line, [insts[i] for i in inner]), strict=True):
            parts[i] = part
    for i, r in enumerate(roles):
        if r == "chords":
            parts[i] = _chords(rest, taken, insts[i], "bass" in roles, line)
        elif r == "piano":
            parts[i] = _with_pitch(rest, _fold(rest.pitch, insts[i]))
        elif r == "drums":
            if drums is None:
                raise InvalidInputError("arranging drums needs the drum model (checkpoints/drums)")
            parts[i] = replace(_drum_part(drums, notes, sections, n_bars, style, arousal, seed), tempos=notes.tempos)
    tracks = [Track(r.name, inst.program, r.role, parts[i]) for i, (r, inst) in
              enumerate(zip(chosen.roles, insts, strict=True))]
    return Arrangement(tuple(_no_unisons(tracks)), chosen.name)
