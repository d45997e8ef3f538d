"""Dataclasses passed between pipeline stages (plain data, JSON-friendly via `to_dict`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from emomusic.music.notes import Notes


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
