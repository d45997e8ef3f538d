"""Image prompts → valence/arousal from colour and texture (published colour-emotion findings).

Why these features:
- **Brightness and saturation** drive the two affect axes most (Valdez & Mehrabian 1994, J. Exp. Psych.
  General 123(4)): standardised regressions over Munsell colours give
  pleasure = .69·Y + .22·S, arousal = −.31·Y + .60·S, dominance = −.76·Y + .32·S
  (Y brightness, S saturation). Bright pictures are pleasant and calming, saturated ones pleasant and
  arousing, dark grey ones unpleasant.
- **Hue warmth** adds arousal: warm hues (red, orange) are more arousing than cool ones (blue, green)
  (Wilson 1966; Jacobs & Hustmyer 1974). Warmth uses Ou et al.'s (2004, Color Res. Appl. 29(3)) warm–cool
  axis, cos(h − 50°) in CIELAB, weighted by chroma so greys have no warmth.
- **Edge/texture density** adds arousal: visual complexity raises arousal (Berlyne 1971), and busy,
  high-frequency textures read as energetic in image-emotion work (Machajdik & Hanbury 2010).

Normalisation (documented so the numbers can be checked by hand): brightness Y = mean CIELAB L*/100 and
saturation S = mean min(C*/100, 1), both in [0, 1]; they are standardised as z = (x − centre) / spread
with the centres and spreads below (chosen so a mid-grey, moderately coloured photograph sits at 0 and
the extremes of real photographs at about ±2), fed to the Valdez & Mehrabian weights, the warmth and
edge terms are added to arousal, and tanh maps the sums to [-1, 1].

Pillow and numpy only; Pillow is imported inside the functions that need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from emomusic.errors import InvalidInputError
from emomusic.io import check_input_file
from emomusic.types import Elements
from emomusic.vocab.emotions import emotion_from_va

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "ColourFeatures",
    "colour_emotion",
    "colour_features",
    "image_elements",
    "load_image",
]

MAX_IMAGE_BYTES: Final = 50 * 1024 * 1024
"""Files larger than this are refused before decoding (no photograph needs more)."""

MAX_IMAGE_PIXELS: Final = 80_000_000
"""Images declaring more pixels than this are refused before decoding: a decompression bomb guard."""

ANALYSIS_SIDE: Final = 256
"""Images are reduced to at most this many pixels per side: colour statistics do not need more."""

# Standardisation of the [0, 1] features: z = (x - centre) / spread.
_Y_CENTRE, _Y_SPREAD = 0.5, 0.25
_S_CENTRE, _S_SPREAD = 0.25, 0.25
_E_CENTRE, _E_SPREAD = 0.10, 0.10
# Weights of the arousal additions (warmth is already in [-1, 1]).
_W_WARMTH: Final = 0.3
_W_EDGES: Final = 0.4
# A pixel is an edge when the L* gradient exceeds this (L* units per pixel at ANALYSIS_SIDE).
_EDGE_THRESHOLD: Final = 8.0


@dataclass(frozen=True)
class ColourFeatures:
    """Colour and texture statistics of one picture, each in a documented range."""

    brightness: float  # mean L*/100, [0, 1]
    saturation: float  # mean min(C*/100, 1), [0, 1]
    warmth: float  # chroma-weighted mean cos(h - 50 deg), [-1, 1]; 0 for greys
    edge_density: float  # share of pixels on an edge, [0, 1]


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (H, W, 3) → CIELAB (D65) float (H, W, 3); standard formulas (IEC 61966-2-1, CIE 1976)."""
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lightness = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidInputError(f"expected an RGB image array of shape (H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(np.nan_to_num(arr.astype(np.float64)), 0, 255).astype(np.uint8)
    return arr


def colour_features(rgb: np.ndarray) -> ColourFeatures:
    """Brightness, saturation, hue warmth and edge density of an RGB uint8 array (H, W, 3).

    Used on decoded images and on video frames alike; pass arrays of a similar size (a few hundred
    pixels per side) so the edge threshold means the same thing.
    """
    lab = _srgb_to_lab(_check_rgb(rgb))
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue = np.arctan2(b, a)
    weight = chroma.sum()
    warmth = float((chroma * np.cos(hue - math.radians(50))).sum() / weight) if weight > 1e-6 else 0.0
    gy, gx = np.gradient(lightness) if min(lightness.shape) > 1 else (np.zeros_like(lightness),) * 2
    edges = float((np.hypot(gx, gy) > _EDGE_THRESHOLD).mean())
    return ColourFeatures(
        brightness=float(np.clip(lightness.mean() / 100.0, 0.0, 1.0)),
        saturation=float(np.clip(chroma / 100.0, 0.0, 1.0).mean()),
        warmth=float(np.clip(warmth, -1.0, 1.0)),
        edge_density=edges,
    )


def colour_emotion(f: ColourFeatures) -> tuple[float, float, list[str]]:
    """(valence, arousal, sources) of colour features, each axis in [-1, 1]; see the module docstring."""
    zy = (f.brightness - _Y_CENTRE) / _Y_SPREAD
    zs = (f.saturation - _S_CENTRE) / _S_SPREAD
    ze = float(np.clip((f.edge_density - _E_CENTRE) / _E_SPREAD, -1.0, 3.0))
    pleasure = 0.69 * zy + 0.22 * zs
    arousal = -0.31 * zy + 0.60 * zs
    dominance = -0.76 * zy + 0.32 * zs
    total_arousal = arousal + _W_WARMTH * f.warmth + _W_EDGES * ze
    valence, aro = math.tanh(pleasure), math.tanh(total_arousal)
    sources = [
        f"valence: image brightness {f.brightness:.2f}, saturation {f.saturation:.2f} → pleasure "
        f".69·zY + .22·zS = {pleasure:+.2f}, tanh → {valence:+.2f} (Valdez & Mehrabian 1994)",
        f"arousal: −.31·zY + .60·zS = {arousal:+.2f} (Valdez & Mehrabian 1994), hue warmth {f.warmth:+.2f} "
        f"(Ou et al. 2004; ×{_W_WARMTH}), edge density {f.edge_density:.2f} (Berlyne 1971; ×{_W_EDGES} on "
        f"z={ze:+.2f}), tanh → {aro:+.2f}",
        f"dominance: −.76·zY + .32·zS = {dominance:+.2f} (Valdez & Mehrabian 1994; not used by the generator)",
    ]
    return valence, aro, sources


def _flatten(im):
    """RGB view of any mode; transparent areas show as on a white page rather than as black.

    16-bit and float greyscale are scaled to 8 bits (Pillow's own conversion clips them to white).
    """
    from PIL import Image

    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        step = max(1, max(im.size) // (4 * ANALYSIS_SIDE))  # keep the float copy small
        grey = np.asarray(im)[::step, ::step].astype(np.float64)
        top = 65535.0 if im.mode.startswith("I;16") else max(float(np.nanmax(grey)), 1.0)
        return Image.fromarray(np.clip(np.nan_to_num(grey) / top * 255, 0, 255).astype(np.uint8)).convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return im.convert("RGB")


def load_image(path: str | Path, side: int = ANALYSIS_SIDE) -> np.ndarray:
    """Decode an image file to an RGB uint8 array at most `side` pixels per side.

    Refuses missing, empty, oversized, unreadable and decompression-bomb files with InvalidInputError.
    The pixel count is checked from the header before any pixel is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    p = check_input_file(path, "image", MAX_IMAGE_BYTES)
    try:
        with Image.open(p) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS or w < 1 or h < 1:
                raise InvalidInputError(
                    f"image {p.name!r} declares {w}x{h} pixels, outside 1..{MAX_IMAGE_PIXELS:,}; "
                    "refusing it (possible decompression bomb); use a normal-sized picture")
            im.draft("RGB", (side, side))  # JPEG: decode at reduced scale, much faster
            im.seek(0)
            rgb = _flatten(im)
            rgb.thumbnail((side, side))
            return np.asarray(rgb, dtype=np.uint8).copy()
    except InvalidInputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InvalidInputError(f"cannot read image {p.name!r}: {exc}; give a PNG, JPEG, GIF, BMP or WebP file"
                                ) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidInputError(f"image {p.name!r} is damaged or truncated ({exc}); give an intact image file"
                                ) from exc


def image_elements(path: str | Path) -> Elements:
    """Valence, arousal and quadrant of a picture, with the derivation of each in `sources`.

    Tempo is left unset: a still picture has no rhythm, so the emotion's own tempo applies.
    """
    rgb = load_image(path)
    valence, arousal, sources = colour_emotion(colour_features(rgb))
    emotion = emotion_from_va(valence, arousal)
    sources.append(f"quadrant: {emotion.quadrant} from image valence {valence:+.2f}, arousal {arousal:+.2f}")
    return Elements(quadrant=emotion.quadrant, valence=valence, arousal=arousal, sources=sources)
