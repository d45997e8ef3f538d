"""Video prompts → valence, arousal and tempo from colour, motion and editing rhythm.

Why these features:
- **Colour per shot** gives valence (and part of arousal) with the image rules of
  :mod:`emomusic.prompt.image` (Valdez & Mehrabian 1994 and friends), averaged over shots weighted by
  their length, so a long dark scene outweighs a flash of colour.
- **Motion energy and cut rate** give arousal: Hanjalic & Xu (2005, IEEE T-MM 7(1), "Affective video
  content representation and modeling") model arousal from motion activity and shot-cut density.
- **Tempo** follows the video's rhythm, as XMusic (and CMT, Di et al. 2021) map visual rhythm to musical
  rhythm: the same activity maps linearly onto 60–160 BPM.

Mapping (documented so it can be checked by hand):
    motion   = mean |Δ grey| / 255 between consecutive sampled frames of the same shot (4 fps)
    cut rate = shot cuts per minute (a cut: joint RGB-histogram total-variation distance > 0.4
               between consecutive sampled frames)
    activity = ½·min(motion / 0.08, 1) + ½·min(cut rate / 30, 1)          ∈ [0, 1]
    tempo    = 60 + 100·activity BPM
    arousal  = 0.4·colour arousal + 0.6·(2·activity − 1)                   ∈ [-1, 1]
    valence  = shot-length-weighted mean colour valence                    ∈ [-1, 1]
0.08 is brisk subject or camera movement at 4 fps; 30 cuts per minute (2-second shots) is music-video
pace, while feature films average about 4–6 s per shot (Cutting et al. 2011).

Frames are decoded with PyAV, which ships its own FFmpeg libraries (no system ffmpeg); `av` is imported
only inside :func:`read_frames`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from emomusic.errors import InvalidInputError
from emomusic.io import check_input_file
from emomusic.prompt.image import MAX_IMAGE_PIXELS, colour_emotion, colour_features
from emomusic.types import Elements
from emomusic.vocab.emotions import emotion_from_va

__all__ = [
    "MAX_VIDEO_BYTES",
    "MAX_VIDEO_SECONDS",
    "Frames",
    "VideoFeatures",
    "read_frames",
    "video_elements",
    "video_features",
]

MAX_VIDEO_BYTES: Final = 500 * 1024 * 1024
"""Files larger than this are refused before decoding."""

MAX_VIDEO_SECONDS: Final = 600.0
"""Videos longer than this (10 minutes) are refused; a music prompt needs no feature film."""

ANALYSED_SECONDS: Final = 60.0
"""Only the first minute is analysed (4 fps → at most 240 frames): every frame up to there must be
decoded, and decoding long high-resolution video dominates the cost of a video prompt."""

SAMPLE_FPS: Final = 4.0
FRAME_WIDTH: Final = 192  # analysis width in pixels; height keeps the aspect ratio

CUT_THRESHOLD: Final = 0.4
_MOTION_FULL: Final = 0.08
_CUTS_FULL: Final = 30.0
_TEMPO_MIN, _TEMPO_MAX = 60.0, 160.0  # the span motion maps onto (calm to busy), inside TEMPO_RANGE
_W_COLOUR_AROUSAL: Final = 0.4


@dataclass(frozen=True)
class Frames:
    """Sampled RGB frames (n, h, w, 3) uint8 with their times in seconds."""

    rgb: np.ndarray
    times: np.ndarray
    duration: float  # seconds of video covered by the samples (whole clip when shorter than the window)
    truncated: bool = False  # True when the clip runs past ANALYSED_SECONDS


@dataclass(frozen=True)
class VideoFeatures:
    """What the mapping uses, kept for the sources and for tests."""

    shots: list[tuple[float, float]]  # (start, end) seconds
    cuts_per_minute: float
    motion: float
    activity: float
    valence: float  # colour valence, shot-weighted
    colour_arousal: float


def _open(p: Path):
    import av

    try:
        return av.open(str(p))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read video {p.name!r} ({exc}); give an MP4, WebM, MKV, AVI or MOV file"
                                ) from exc


def _frame_size(width: int, height: int) -> tuple[int, int]:
    w = min(FRAME_WIDTH, width)
    h = max(2, int(round(height * w / width / 2)) * 2)
    return w, h


def _check_stream(p: Path, container) -> object:
    """The first video stream, after the size and duration checks."""
    if not container.streams.video:
        raise InvalidInputError(f"{p.name!r} has no video stream; give a video file (or use --humming for audio)")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_IMAGE_PIXELS:
        raise InvalidInputError(f"video {p.name!r} frames are {width}x{height}, too large; use a smaller video")
    if container.duration is not None and container.duration / 1e6 > MAX_VIDEO_SECONDS:
        raise InvalidInputError(
            f"video {p.name!r} lasts {container.duration / 1e6:.0f} s, over the {MAX_VIDEO_SECONDS:.0f} s limit; "
            "trim it")
    return stream


def read_frames(path: str | Path) -> Frames:
    """Decode the video's first ANALYSED_SECONDS at SAMPLE_FPS into small RGB frames.

    Refuses missing, empty, oversized, too long, unreadable and frameless files with InvalidInputError.
    """
    import av

    p = check_input_file(path, "video", MAX_VIDEO_BYTES)
    rgb, times, last, truncated = [], [], 0.0, False
    with _open(p) as container:
        stream = _check_stream(p, container)
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or 25)
        size = None
        try:
            for i, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else i / rate
                if t > MAX_VIDEO_SECONDS:
                    raise InvalidInputError(f"video {p.name!r} runs past {MAX_VIDEO_SECONDS:.0f} s; trim it")
                last = t + 1.0 / rate
                if t >= ANALYSED_SECONDS:
                    truncated = True
                    break
                if t + 1e-6 >= len(times) / SAMPLE_FPS:
                    size = size or _frame_size(frame.width, frame.height)
                    rgb.append(frame.to_ndarray(width=size[0], height=size[1], format="rgb24"))
                    times.append(t)
        except av.error.FFmpegError as exc:
            raise InvalidInputError(f"video {p.name!r} is damaged ({exc}); give an intact video file") from exc
    if len(rgb) < 2:
        raise InvalidInputError(
            f"video {p.name!r} has fewer than 2 frames to compare; use --image for a still picture")
    return Frames(np.stack(rgb), np.asarray(times), min(last, ANALYSED_SECONDS), truncated)


def _histograms(rgb: np.ndarray, levels: int = 4) -> np.ndarray:
    """Joint RGB histograms (`levels` per channel), normalised per frame, with soft (linear) binning.

    Soft binning splits each pixel between the two nearest bins per channel, so compression noise on a
    colour that sits near a bin edge does not flip whole regions between bins and fake a cut.
    """
    step = max(1, rgb.shape[2] // 64)  # ~64 pixels per row are plenty for a colour histogram
    rgb = rgb[:, ::step, ::step]
    n = len(rgb)
    x = rgb.reshape(n, -1, 3).astype(np.float32) * (levels / 256.0) - 0.5
    lo = np.floor(x)
    frac = x - lo
    lo = lo.astype(np.int64)
    hist = np.zeros((n, levels**3))
    offsets = np.arange(n)[:, None] * levels**3
    for corner in range(8):
        bits = [(corner >> c) & 1 for c in range(3)]
        idx = np.clip(lo + np.array(bits), 0, levels - 1)
        weight = np.prod(np.where(np.array(bits, dtype=bool), frac, 1 - frac), axis=2)
        flat = (idx[..., 0] * levels + idx[..., 1]) * levels + idx[..., 2] + offsets
        hist += np.bincount(flat.ravel(), weights=weight.ravel(), minlength=n * levels**3).reshape(n, -1)
    return hist / hist.sum(axis=1, keepdims=True)


def _cuts(rgb: np.ndarray) -> np.ndarray:
    """Indices i (≥ 1) where a new shot starts at sampled frame i: a jump in the colour histogram."""
    hist = _histograms(rgb)
    distance = 0.5 * np.abs(np.diff(hist, axis=0)).sum(axis=1)
    return np.flatnonzero(distance > CUT_THRESHOLD) + 1


def _motion(rgb: np.ndarray, cuts: np.ndarray) -> float:
    """Mean absolute grey-level change between consecutive frames of the same shot, in [0, 1]."""
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    diff = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2)) / 255.0
    same_shot = np.ones(len(diff), dtype=bool)
    same_shot[cuts - 1] = False
    return float(diff[same_shot].mean()) if same_shot.any() else 0.0


def _shot_colour(rgb: np.ndarray, bounds: list[tuple[int, int]], weights: np.ndarray) -> tuple[float, float]:
    """Shot-length-weighted colour (valence, arousal); each shot is read from its middle frame."""
    va = np.array([colour_emotion(colour_features(rgb[(a + b - 1) // 2]))[:2] for a, b in bounds])
    w = weights / weights.sum() if weights.sum() > 0 else np.full(len(bounds), 1 / len(bounds))
    return float(w @ va[:, 0]), float(w @ va[:, 1])


def video_features(frames: Frames) -> VideoFeatures:
    """Shots, cut rate, motion, activity and colour emotion of sampled frames."""
    n = len(frames.rgb)
    cuts = _cuts(frames.rgb)
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [n]])
    bounds = [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]
    times = np.append(frames.times, frames.duration)
    shots = [(float(times[a]), float(times[b])) for a, b in bounds]
    valence, colour_arousal = _shot_colour(frames.rgb, bounds, np.array([e - s for s, e in shots]))
    cuts_per_minute = len(cuts) / max(frames.duration, 1e-3) * 60.0
    motion = _motion(frames.rgb, cuts)
    activity = 0.5 * min(motion / _MOTION_FULL, 1.0) + 0.5 * min(cuts_per_minute / _CUTS_FULL, 1.0)
    return VideoFeatures(shots, cuts_per_minute, motion, activity, valence, colour_arousal)


def video_elements(path: str | Path) -> Elements:
    """Valence, arousal, quadrant and tempo of a video clip, with each derivation in `sources`."""
    frames = read_frames(path)
    f = video_features(frames)
    tempo = round(_TEMPO_MIN + (_TEMPO_MAX - _TEMPO_MIN) * f.activity)
    arousal = float(np.clip(_W_COLOUR_AROUSAL * f.colour_arousal + (1 - _W_COLOUR_AROUSAL) * (2 * f.activity - 1),
                            -1.0, 1.0))
    valence = float(np.clip(f.valence, -1.0, 1.0))
    emotion = emotion_from_va(valence, arousal)
    length = f.shots[-1][1] if f.shots else 0.0
    sources = [
        f"valence: video colour {valence:+.2f}, mean over {len(f.shots)} shot(s) weighted by length "
        "(brightness/saturation, Valdez & Mehrabian 1994)",
        f"arousal: {_W_COLOUR_AROUSAL}·colour arousal {f.colour_arousal:+.2f} + {1 - _W_COLOUR_AROUSAL:.1f}·"
        f"(2·activity {f.activity:.2f} − 1) = {arousal:+.2f}; activity from motion {f.motion:.3f} and "
        f"{f.cuts_per_minute:.1f} cuts/min over {length:.1f} s (Hanjalic & Xu 2005)",
        f"tempo: {tempo} BPM = 60 + 100·activity {f.activity:.2f} (video rhythm → musical rhythm, as XMusic)",
        f"quadrant: {emotion.quadrant} from video valence {valence:+.2f}, arousal {arousal:+.2f}",
    ]
    if frames.truncated:
        sources.append(f"note: only the first {ANALYSED_SECONDS:.0f} s of the video were analysed")
    return Elements(quadrant=emotion.quadrant, valence=valence, arousal=arousal, tempo=float(tempo),
                    sources=sources)
