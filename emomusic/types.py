"""Dataclasses passed between pipeline stages (plain data, JSON-friendly via `to_dict`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from emomusic.music.notes import Notes
from emomusic.music.tracks import Arrangement


@dataclass
class Attributes:
    """What the clusterer hands the generator for one emotion (EmoGen stage 1 output)."""

    emotion: str
    quadrant: str
    valence: float
    arousal: float
    values: dict[str, float]  # raw attribute values of the chosen real piece (all attributes)
    controls: dict[str, int]  # binned control attributes (the generator's prefix)
    explanation: list[str]
    source: str = ""  # id of the real piece whose attributes were taken

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Candidate:
    """One generated piece with how it was made and what it measures."""

    notes: Notes
    tokens: list[int]
    seed: int
    method: str
    attributes: Attributes | None = None
    measured: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    # the form plan as sampled: one dict per section (label, first bar, bars, the section it returns to)
    sections: list[dict] = field(default_factory=list)
    # the piece written for instruments (`--arrangement`); None: the piano piece `notes` is the output
    arrangement: Arrangement | None = None
    # the request that made it, model and version (`GenerationRequest.provenance`): written into MIDI files
    provenance: dict = field(default_factory=dict)
    # the winner of a ranked batch: why it won (`selection.selector.explain`); empty otherwise
    selection: dict = field(default_factory=dict)

    @property
    def output(self) -> Notes | Arrangement:
        """What is written to files: the arrangement when there is one, else the notes."""
        return self.notes if self.arrangement is None else self.arrangement


@dataclass
class Recognition:
    """What the recognizer says about one file (`emomusic analyze --json` prints `to_dict()`)."""

    file: str
    quadrant: str
    probabilities: dict[str, float]  # Q1..Q4, sums to 1
    valence: float  # [-1, 1]
    arousal: float  # [-1, 1]
    explanation: list[str]  # musical evidence in plain words, e.g. "minor mode", "slow, about 64 BPM"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Elements:
    """What the projector makes of a prompt: the symbolic elements that steer generation.

    Every field may be None (not given by the prompt); `sources` says how each set field was derived,
    e.g. ["quadrant: text 'a rainy lonely night' (embedding prototypes)", "tempo: tag 'slow'"].
    """

    emotion: str | None = None  # a vocabulary word when one was named or matched
    quadrant: str | None = None
    valence: float | None = None
    arousal: float | None = None
    genre: str | None = None
    tempo: float | None = None
    time_signature: tuple[int, int] | None = None  # a metre the prompt names ("3/4", "waltz")
    notes: Notes | None = None  # a melody to open the piece with (humming)
    sources: list[str] = field(default_factory=list)
    intensity: float | None = None  # how strongly the emotion is meant ("very sad": 1.5); None = as named
    genre_asked: str | None = None  # the genre word named ("jazz") when `genre` is what stands in for it

    def to_dict(self) -> dict:
        """JSON-friendly: the melody becomes a list of [pitch, start_beat, duration_beats]."""
        d = {k: getattr(self, k) for k in ("emotion", "quadrant", "valence", "arousal", "intensity", "genre",
                                           "genre_asked", "tempo", "sources")}
        d["time_signature"] = None if self.time_signature is None else "{}/{}".format(*self.time_signature)
        d["notes"] = None if self.notes is None else [
            [int(p), round(float(s), 4), round(float(u), 4)]
            for p, s, u in zip(self.notes.pitch, self.notes.start, self.notes.duration, strict=True)]
        return d
