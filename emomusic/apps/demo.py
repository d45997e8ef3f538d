"""The emomusic Gradio demo: make mood music and judge it without a terminal.

A thin caller of the public Python API: the form fills the same `GenerationRequest` the CLI fills
(so the same prompt and seed give the same music here and there), `EmoMusic.save` writes every
format, `emomusic.recognize` analyses uploads. The prompt widgets are built from the prompt-kind
registry (`emomusic.prompt.registry.PROMPT_KINDS`), so a new kind appears here without an edit. There
is no module-level state: `launch` loads the model and `build_app` closes over it, so tests can build
several apps side by side.

The selector and the recognizer are loaded when a request needs them; a checkpoints folder without
one ranks candidates by attribute distance (selector) or answers the upload with the recognizer's
one-line checkpoint error, and the status line says which are present.

Safety: every file the app writes lives in a fresh per-request folder under the app's output folder,
with names built from sanitised words; uploads over `max_upload_mb` are refused (by Gradio at upload
time and again here); the server binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import inspect
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emomusic.errors import InvalidInputError
from emomusic.export.names import safe_stem
from emomusic.music.form import FORMS
from emomusic.vocab.constants import AUDIO_SUFFIXES, MIDI_SUFFIXES, TEMPO_RANGE, TIME_SIGNATURES
from emomusic.vocab.emotions import INTENSITY_RANGE

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

    from emomusic.pipeline import EmoMusic
    from emomusic.prompt.registry import PromptKind
    from emomusic.request import GenerationRequest, ResolvedRequest
    from emomusic.types import Candidate, Recognition

__all__ = ["DemoService", "Workspace", "build_app", "launch", "serve"]

DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_CONCURRENCY = 4
KEEP_REQUEST_SECONDS = 24 * 3600  # request folders older than this are removed (bounded disk use)
_REQUEST_DIR = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}$")


# ---------------------------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class Workspace:
    """The app's output folder: one fresh sub-folder per request, nothing written outside it."""

    root: Path
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB

    @classmethod
    def create(cls, root: str | os.PathLike, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB) -> Workspace:
        if not max_upload_mb > 0:
            raise InvalidInputError(f"max_upload_mb must be positive, got {max_upload_mb!r}")
        path = Path(root).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls(path, float(max_upload_mb))

    def request_dir(self) -> Path:
        """A new, empty folder for one request (timestamp + random suffix, never reused)."""
        self.prune()
        folder = self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        folder.mkdir()
        return folder

    def file(self, folder: Path, stem: str, suffix: str) -> Path:
        """`folder/<sanitised stem><suffix>`, checked to lie inside the output folder."""
        path = (folder / f"{safe_stem(stem, 60)}{suffix}").resolve()
        if not path.is_relative_to(self.root) or path.parent == self.root:
            raise InvalidInputError(f"refusing to write {path}: outside the demo's output folder")
        return path

    def prune(self, max_age_s: float = KEEP_REQUEST_SECONDS) -> None:
        """Remove request folders older than `max_age_s` (only folders this app named)."""
        cutoff = time.time() - max_age_s
        for child in self.root.iterdir():
            if child.is_dir() and _REQUEST_DIR.match(child.name) and child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)

    def upload(self, path: str | os.PathLike | None, what: str) -> Path | None:
        """An uploaded file, or None when nothing was uploaded; refuses files over the size limit."""
        if path is None or str(path) == "":
            return None
        p = Path(path)
        if not p.is_file():
            raise InvalidInputError(f"{what}: the upload is missing on the server; upload the file again")
        size = p.stat().st_size
        if size > self.max_upload_mb * 1e6:
            raise InvalidInputError(f"{what}: {size / 1e6:.1f} MB is over the {self.max_upload_mb:g} MB upload "
                                    "limit; upload a smaller file")
        return p


def _va_plot(rec: Recognition, out: Path) -> Path:
    """The recognised point on Russell's valence/arousal plane (object API: thread-safe, no pyplot)."""
    from matplotlib.figure import Figure

    from emomusic.io import atomic_write
    from emomusic.vocab.emotions import QUADRANT_NAMES, QUADRANT_VA

    fig = Figure(figsize=(4.2, 4.2), dpi=100)
    ax = fig.add_subplot()
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    for q, (v, a) in QUADRANT_VA.items():
        ax.text(v, a, f"{q}\n{QUADRANT_NAMES[q]}", ha="center", va="center", color="grey", fontsize=11)
    ax.scatter([rec.valence], [rec.arousal], s=140, color="crimson", zorder=3)
    ax.annotate(f"{rec.quadrant}", (rec.valence, rec.arousal), textcoords="offset points", xytext=(8, 8))
    ax.set(xlim=(-1, 1), ylim=(-1, 1), xlabel="valence", ylabel="arousal", title="valence / arousal")
    fig.tight_layout()
    return atomic_write(out, lambda dest: fig.savefig(dest, format="png"))


# ---------------------------------------------------------------------------------------------- service
class DemoService:
    """What the UI's buttons do, as plain Python (testable without a browser)."""

    def __init__(self, em: EmoMusic, workspace: Workspace) -> None:
        self.em = em
        self.ws = workspace
        self._draw_lock = threading.Lock()  # pyplot (piano roll) and music21 are not thread-safe

    # ------------------------------------------------------------------ generate
    def generate(self, emotion: str = "calm", valence: float = 0.0, arousal: float = 0.0, genre: str = "",
                 tempo: float = 0.0, time_signature: str = "", bars: int = 8, candidates: int = 2, seed: int = 0,
                 intensity: float = 1.0, form: str = "", trajectory: str = "", loop: bool = False,
                 arrangement: str = "", instruments: str | list[str] | None = None, progress=None,
                 **prompts: str | None) -> dict[str, Any]:
        """Generate, export .mid/.wav/MusicXML/piano roll into a fresh request folder; describe it.

        Args:
            emotion: a word or quadrant from the dropdown; "" lets the prompts (else the sliders) decide.
            valence, arousal: the sliders, used when neither the emotion nor a prompt names a mood.
            genre: a genre word or "" (from the prompt, else pop). tempo: BPM, 0 = from the emotion.
            time_signature: "3/4", … or "" (from the prompt, else 4/4).
            bars, candidates, seed: as `emomusic generate`.
            intensity: 0 (neutral) … 2 (extreme); 1 = as the word or the prompt says ("very sad").
            form: section letters ("AABA"), a form name ("verse-chorus"), or "" for the default by length.
            trajectory: "calm:8,tense:8,calm:8" (each section's emotion and bars; it sets the length and
                wins over the mood fields), or "" for none.
            loop: make the end lead back to the start (no final chord).
            arrangement: a preset ("band", "strings", …) or "" / "piano" for the piano piece.
            instruments: instrument names (a list from the picker, or "violin, cello"), or None.
            progress: Gradio's progress callback, or None.
            **prompts: prompt kind → text or uploaded file path (None or "" = not given).

        Returns:
            {"files": {"mid", "wav", "musicxml", "roll"} paths, "table": the candidates' scores,
            "summary": Markdown, "candidates": the candidates}.
        """
        step = progress or (lambda *a, **k: None)
        step(0.05, desc="reading the prompt")
        plan = self.request(emotion, valence, arousal, genre, tempo, time_signature, bars, candidates, seed,
                            intensity, form, trajectory, loop, arrangement, instruments, **prompts).resolve()
        step(0.15, desc=f"generating {plan.request.candidates} candidate(s)")
        cands = self.em.generate(plan)
        best = cands[0]
        if not len(best.notes):
            raise InvalidInputError(f"seed {seed} gave no notes in {bars} bar(s); try another seed, more bars or "
                                    "more candidates")
        folder = self.ws.request_dir()
        stem = f"emomusic-{best.attributes.emotion if best.attributes else 'piece'}-seed{plan.request.seed}"
        files = self._export(best, folder, stem, step)
        step(1.0, desc="done")
        return {"files": files, "table": self.scores_table(cands), "summary": self._summary(best, plan),
                "candidates": cands}

    def request(self, emotion: str = "calm", valence: float = 0.0, arousal: float = 0.0, genre: str = "",
                tempo: float = 0.0, time_signature: str = "", bars: int = 8, candidates: int = 2, seed: int = 0,
                intensity: float = 1.0, form: str = "", trajectory: str = "", loop: bool = False,
                arrangement: str = "", instruments: str | list[str] | None = None,
                **prompts: str | None) -> GenerationRequest:
        """The form's values as the `GenerationRequest` the CLI would build from the same inputs.

        Empty fields mean "not given"; uploads are checked against the size limit; the sliders are the
        request's fallback mood, so a prompt or an emotion word wins over them, as on the command line.
        The intensity slider at 1 is "not given" too (as tempo 0 is), so a prompt's "very sad" still counts.
        """
        from emomusic.prompt.registry import PROMPT_KINDS
        from emomusic.request import GenerationRequest

        given: dict[str, Any] = {}
        for name, value in prompts.items():
            kind = PROMPT_KINDS.get(name)
            if kind is None:
                raise TypeError(f"generate() got an unexpected keyword argument {name!r}")
            if kind.is_file:
                value = self.ws.upload(value, name)
            elif isinstance(value, str):
                value = value.strip() or None
            if value is not None:
                given[name] = str(value)
        return GenerationRequest(emotion=(emotion or "").strip() or None, genre=(genre or "").strip() or None,
                                 tempo=float(tempo) if tempo else None,
                                 intensity=None if intensity is None or intensity == 1 else intensity,
                                 time_signature=(time_signature or "").strip() or None, prompts=given,
                                 fallback_mood=(valence, arousal), bars=bars, candidates=candidates, seed=seed,
                                 form=(form or "").strip() or None,
                                 trajectory=(trajectory or "").strip() or None, loop=bool(loop),
                                 arrangement=(arrangement or "").strip() or None,
                                 instruments=_instrument_list(instruments))

    def _export(self, cand: Candidate, folder: Path, stem: str, step) -> dict[str, Path]:
        """Write the best candidate as MIDI, WAV preview, MusicXML and a piano-roll picture (`EmoMusic.save`)."""
        step(0.6, desc="writing the MIDI file")
        mid = self.em.save(cand, self.ws.file(folder, stem, ".mid"))
        step(0.7, desc="rendering the audio preview")
        wav = self.em.save(cand, self.ws.file(folder, stem, ".wav"))
        step(0.8, desc="writing MusicXML and the piano roll")
        with self._draw_lock:
            xml = self.em.save(cand, self.ws.file(folder, stem, ".musicxml"))
            roll = self.em.save(cand, self.ws.file(folder, f"{stem}-roll", ".png"))
        return {"mid": mid, "wav": wav, "musicxml": xml, "roll": roll}

    @staticmethod
    def scores_table(cands: list[Candidate]) -> dict[str, list]:
        """One row per candidate (best first) with the selector's scores where it gave any."""
        keys = sorted({k for c in cands for k in c.scores}, key=lambda k: (k != "score", k))  # combined first
        headers = ["rank", "notes", *keys] if keys else ["rank", "notes", "selector"]
        if keys:
            rows = [[i + 1, len(c.notes), *(round(float(c.scores.get(k, float("nan"))), 4) for k in keys)]
                    for i, c in enumerate(cands)]
        else:
            why = ("one candidate: nothing to select" if len(cands) == 1
                   else "no selector checkpoint: ranked by attribute distance")
            rows = [[i + 1, len(c.notes), why] for i, c in enumerate(cands)]
        return {"headers": headers, "data": rows}

    def _summary(self, best: Candidate, plan: ResolvedRequest) -> str:
        """Markdown: what was asked, what the clusterer chose and why, and how the prompt was read."""
        from emomusic.export.render import find_soundfont

        a = best.attributes
        lines = []
        if a is not None:
            degree = "" if plan.intensity == 1 else f" · intensity {plan.intensity:g}"
            lines.append(f"**{a.emotion}** ({a.quadrant}) · valence {a.valence:+.2f} · arousal {a.arousal:+.2f}"
                         f"{degree} · {len(best.notes)} notes · method {best.method}")
            if a.explanation:
                lines.append("What sets it apart: " + ", ".join(a.explanation))
        if len(best.sections) > 1:
            lines.append("Form: " + " · ".join(
                f"{s['label']} bars {s['first_bar']}–{s['first_bar'] + s['bars'] - 1}"
                + (f" {s['emotion']}, {s['key']}, {s['tempo']:g} BPM" if "emotion" in s else "")
                + (f" (returns to bar {s['returns_to']})" if s["returns_to"] else "") for s in best.sections))
        if best.selection:
            lines.append(f"Picked: {best.selection['text']}")
        if best.arrangement is not None:
            from emomusic.vocab.instruments import GM_PROGRAMS

            lines.append(f"Arrangement ({best.arrangement.name}): " + " · ".join(
                f"{t.name}: {'drum kit' if t.drums else GM_PROGRAMS[t.program]}, {len(t.notes)} notes"
                for t in best.arrangement.tracks))
        if plan.request.prompts:
            lines += [f"prompt → {s}" for s in plan.elements.sources]
            if plan.primer is not None:
                lines.append(f"the piece opens with the hummed melody ({len(plan.primer)} notes)")
        lines += [f"note: {n}" for n in plan.notices]
        if not (shutil.which("fluidsynth") and find_soundfont()):
            lines.append("Audio preview uses sine tones: install `fluidsynth` and `fluid-soundfont-gm` for piano.")
        return "\n\n".join(lines)

    # ------------------------------------------------------------------ analyze
    def analyze(self, file: str | None) -> dict[str, Any]:
        """Recognise a MIDI or audio upload: quadrant, valence/arousal plot and explanation."""
        path = self.ws.upload(file, "analyze")
        if path is None:
            raise InvalidInputError("upload a MIDI (.mid) or audio (.wav, .mp3, .flac, .ogg) file to analyze")
        if path.suffix.lower() not in MIDI_SUFFIXES + AUDIO_SUFFIXES:
            raise InvalidInputError(f"{safe_stem(path.name)}: not a MIDI or audio file; upload .mid, .wav, .mp3, "
                                    ".flac or .ogg")
        import emomusic

        root = _checkpoints_dir(self.em)
        rec = emomusic.recognize([str(path)], checkpoints=root)[0]
        folder = self.ws.request_dir()
        plot = _va_plot(rec, self.ws.file(folder, f"{safe_stem(path.stem)}-va", ".png"))
        probs = ", ".join(f"{q} {p:.0%}" for q, p in sorted(rec.probabilities.items()))
        headline = (f"**{rec.quadrant}** · valence {rec.valence:+.2f} · arousal {rec.arousal:+.2f}\n\n"
                    f"probabilities: {probs}")
        explanation = "\n".join(f"- {e}" for e in rec.explanation) or "(no explanation given)"
        return {"headline": headline, "plot": plot, "explanation": explanation, "recognition": rec}


# ---------------------------------------------------------------------------------------------- UI
def _emotion_choices() -> list[tuple[str, str]]:
    from emomusic.vocab.emotions import QUADRANT_NAMES, WORDS

    quads = [(f"{q} · {name} quadrant", q) for q, name in QUADRANT_NAMES.items()]
    words = [(f"{w} ({e.quadrant})", w) for w, e in sorted(WORDS.items(), key=lambda kv: (kv[1].quadrant, kv[0]))]
    return [("valence/arousal sliders (or the prompt)", ""), *quads, *words]


def _genre_choices() -> list[tuple[str, str]]:
    from emomusic.vocab.emotions import GENRE_STANDINS, GENRES

    extra = [(f"{g} (no training data: generates {t})", g) for g, t in GENRE_STANDINS.items()]
    return [("automatic (pop)", ""), *[(g, g) for g in GENRES], *extra]


def _instrument_list(instruments: str | list[str] | None) -> str | None:
    """The picker's list (or typed text) as the request's comma-separated instruments; None when empty."""
    if isinstance(instruments, (list, tuple)):
        instruments = ", ".join(str(i).strip() for i in instruments if str(i).strip())
    return (instruments or "").strip() or None


def trajectory_text(rows) -> str:
    """The trajectory editor's rows (emotion, bars) as the request's text, e.g. "calm:8, tense:8".

    Rows with no emotion are skipped (an empty editor gives ""); a row without bars gets 8. What the
    text means is checked where every front end's is: `GenerationRequest.resolve`.

    Args:
        rows: the editor's value: a list of [emotion, bars] rows, or a pandas DataFrame of them.

    Returns:
        The trajectory text for the request's textbox.
    """
    if hasattr(rows, "values"):  # a DataFrame
        rows = rows.values.tolist()
    out = []
    for row in rows or []:
        emotion = str(row[0]).strip() if len(row) and row[0] is not None else ""
        if not emotion or emotion.lower() == "nan":
            continue
        bars = row[1] if len(row) > 1 else None
        try:
            n = int(float(bars)) if bars not in (None, "") else 8
        except (TypeError, ValueError):
            n = bars  # left as typed: the request's check names it
        out.append(f"{emotion}:{n}")
    return ", ".join(out)


def _ui_error(exc: InvalidInputError):
    import gradio as gr

    return gr.Error(str(exc).splitlines()[0] if str(exc) else "invalid input", print_exception=False)


FORM_BEFORE = {"emotion": "calm", "valence": 0.5, "arousal": -0.5}
FORM_AFTER = {"genre": "", "tempo": 0.0, "time_signature": "", "bars": 8, "candidates": 2, "seed": 0,
              "intensity": 1.0, "form": "", "trajectory": "", "loop": False, "arrangement": "", "instruments": []}
"""The generate form's fields around the prompt widgets, with their defaults (the API's parameters)."""


def _form_fields() -> dict[str, Any]:
    """Every input of the generate endpoint, in order: mood, one per prompt kind, then the rest."""
    from emomusic.prompt.registry import PROMPT_KINDS

    return {**FORM_BEFORE, **dict.fromkeys(PROMPT_KINDS), **FORM_AFTER}


def _generate_handler(service: DemoService):
    """The `generate` endpoint; its parameters (named for gradio_client) follow the prompt-kind registry."""
    import gradio as gr

    fields = _form_fields()
    names = list(fields)

    def generate(*values):
        """Generate a piece in the asked mood; returns piano roll, audio, scores, .mid, .wav, MusicXML."""
        form = dict(zip(names, values, strict=False))
        progress = values[len(names)] if len(values) > len(names) else None
        try:
            r = service.generate(**form, progress=progress)
        except InvalidInputError as exc:
            raise _ui_error(exc) from None
        f = r["files"]
        return (str(f["roll"]), str(f["wav"]), r["table"], str(f["mid"]), str(f["wav"]), str(f["musicxml"]),
                r["summary"])

    param = inspect.Parameter
    generate.__signature__ = inspect.Signature(  # Gradio names the API's parameters from the signature
        [param(n, param.POSITIONAL_OR_KEYWORD, default=d) for n, d in fields.items()]
        + [param("progress", param.POSITIONAL_OR_KEYWORD, default=gr.Progress())])
    return generate


def _analyze_handler(service: DemoService):
    def analyze(file: str | None = None):
        """Recognise the emotion of a MIDI or audio file: quadrant, valence/arousal plot, explanation."""
        try:
            r = service.analyze(file)
        except InvalidInputError as exc:
            raise _ui_error(exc) from None
        return r["headline"], str(r["plot"]), r["explanation"]

    return analyze


def _checkpoints_dir(em: EmoMusic) -> Path | None:
    """The folder the model was loaded from, or None (the debug model: the default folder applies)."""
    return Path(em.name) if em.name and Path(em.name).is_dir() else None


def _status(em: EmoMusic) -> str:
    """Which optional checkpoints the loaded folder holds (read from disk, nothing is loaded)."""
    from emomusic.settings import checkpoints_root

    root = _checkpoints_dir(em) or checkpoints_root(None)
    has = {"selector": em.has_selector, "recognizer": (root / "recognizer").is_dir()}
    return "Stages — " + " · ".join(f"{k}: {'ready' if v else 'no checkpoint'}" for k, v in has.items())


def _prompt_widget(kind: PromptKind):
    """The input widget of one prompt kind: a recorder/preview for the media kinds, else a file or text box."""
    import gradio as gr

    media = {"image": lambda: gr.Image(type="filepath", sources=["upload"], label=kind.label),
             "video": lambda: gr.Video(sources=["upload"], include_audio=True, label=kind.label),
             "humming": lambda: gr.Audio(sources=["upload", "microphone"], type="filepath", label=kind.label)}
    if kind.name in media:
        return media[kind.name]()
    if kind.is_file:
        return gr.File(type="filepath", label=kind.label)
    return gr.Textbox(label=kind.label, placeholder=kind.help)


def _generate_tab(service: DemoService) -> None:
    import gradio as gr

    from emomusic.arrangement.arrange import PRESETS
    from emomusic.prompt.registry import PROMPT_KINDS
    from emomusic.vocab.instruments import GM_PROGRAMS

    text_kinds = [k for k in PROMPT_KINDS.values() if not k.is_file]
    file_kinds = [k for k in PROMPT_KINDS.values() if k.is_file]
    with gr.Row():
        with gr.Column():
            emotion = gr.Dropdown(_emotion_choices(), value=FORM_BEFORE["emotion"], label="emotion",
                                  allow_custom_value=True,
                                  info="a quadrant or a word; pick the first entry to use the prompt or the sliders")
            with gr.Row():
                valence = gr.Slider(-1, 1, value=FORM_BEFORE["valence"], step=0.05,
                                    label="valence (unpleasant → pleasant)")
                arousal = gr.Slider(-1, 1, value=FORM_BEFORE["arousal"], step=0.05, label="arousal (calm → energetic)")
            intensity = gr.Slider(*INTENSITY_RANGE, value=FORM_AFTER["intensity"], step=0.05,
                                  label="intensity (0 = neutral, 1 = as the word or prompt says, 2 = extreme)")
            prompts = {k.name: _prompt_widget(k) for k in text_kinds}
            with gr.Row():
                prompts |= {k.name: _prompt_widget(k) for k in file_kinds}
            with gr.Row():
                genre = gr.Dropdown(_genre_choices(), value=FORM_AFTER["genre"], label="genre", allow_custom_value=True)
                tempo = gr.Number(value=FORM_AFTER["tempo"], label="tempo (BPM, 0 = from the emotion)", minimum=0,
                                  maximum=TEMPO_RANGE[1])
                metre = gr.Dropdown([("automatic (4/4)", ""), *((f"{n}/{d}", f"{n}/{d}") for n, d in TIME_SIGNATURES)],
                                    value=FORM_AFTER["time_signature"], label="time signature")
            with gr.Row():
                bars = gr.Slider(1, 64, value=FORM_AFTER["bars"], step=1, label="bars")
                candidates = gr.Slider(1, 8, value=FORM_AFTER["candidates"], step=1, label="candidates")
                seed = gr.Number(value=FORM_AFTER["seed"], precision=0, label="seed", minimum=0)
            form = gr.Dropdown([("automatic (by length)", ""), *((f"{name} ({letters})", name)
                                                               for name, letters in FORMS.items())],
                               value=FORM_AFTER["form"], label="form", allow_custom_value=True,
                               info="or section letters, e.g. ABAC: a repeated letter brings its section back")
            with gr.Accordion("emotion trajectory: the mood moves section by section", open=False):
                editor = gr.Dataframe(headers=["emotion", "bars"], datatype=["str", "number"],
                                      value=[["calm", 8], ["tense", 8], ["calm", 8]], row_count=3,
                                      column_count=2, interactive=True,
                                      label="sections (edit, add rows)",
                                      elem_id="trajectory-editor")
                use = gr.Button("use these sections", size="sm", elem_id="trajectory-use")
                trajectory = gr.Textbox(value=FORM_AFTER["trajectory"], label="emotion trajectory",
                                        placeholder="calm:8, tense:8, calm:8",
                                        info="each section's emotion (a word, Q1..Q4 or valence/arousal) and bars; "
                                             "sets the length and wins over the mood above; empty: one mood")
                use.click(trajectory_text, inputs=editor, outputs=trajectory, api_visibility="private")
            loop = gr.Checkbox(value=FORM_AFTER["loop"], label="loop (the end leads back to the start)")
            with gr.Row():
                arrangement = gr.Dropdown([("piano (as generated)", ""), *((f"{n}: {p.description}", n)
                                                                          for n, p in PRESETS.items() if n != "piano")],
                                          value=FORM_AFTER["arrangement"], label="arrangement",
                                          elem_id="arrangement")
                instruments = gr.Dropdown(list(GM_PROGRAMS) + ["Drums"], value=FORM_AFTER["instruments"],
                                          multiselect=True, allow_custom_value=True, label="instruments",
                                          info="in part order (melody first); without an arrangement they choose "
                                               "the parts", elem_id="instruments")
            button = gr.Button("Generate", variant="primary", elem_id="generate-button")
        with gr.Column():
            roll = gr.Image(type="filepath", label="piano roll", interactive=False, elem_id="piano-roll")
            audio = gr.Audio(type="filepath", label="audio preview", interactive=False, elem_id="audio-preview")
            summary = gr.Markdown(label="summary", elem_id="generate-summary")
            table = gr.Dataframe(label="candidates (best first) and selector scores", interactive=False)
            with gr.Column():  # stacked so the file names show in full
                mid = gr.File(label="MIDI (.mid)", interactive=False, elem_id="download-mid")
                wav = gr.File(label="audio (.wav)", interactive=False, elem_id="download-wav")
                xml = gr.File(label="MusicXML", interactive=False, elem_id="download-musicxml")
    widgets = {"emotion": emotion, "valence": valence, "arousal": arousal, **prompts, "genre": genre, "tempo": tempo,
               "time_signature": metre,
               "bars": bars, "candidates": candidates, "seed": seed, "intensity": intensity, "form": form,
               "trajectory": trajectory, "loop": loop, "arrangement": arrangement, "instruments": instruments}
    button.click(_generate_handler(service), inputs=[widgets[name] for name in _form_fields()],
                 outputs=[roll, audio, table, mid, wav, xml, summary], api_name="generate")


def _analyze_tab(service: DemoService) -> None:
    import gradio as gr

    with gr.Row():
        with gr.Column():
            file = gr.File(label="MIDI or audio file", file_types=[*MIDI_SUFFIXES, *AUDIO_SUFFIXES],
                           elem_id="analyze-file")
            button = gr.Button("Analyze", variant="primary", elem_id="analyze-button")
        with gr.Column():
            headline = gr.Markdown(label="quadrant", elem_id="analyze-headline")
            plot = gr.Image(type="filepath", label="valence / arousal", interactive=False, elem_id="va-plot")
            explanation = gr.Markdown(label="explanation", elem_id="analyze-explanation")
    button.click(_analyze_handler(service), inputs=[file], outputs=[headline, plot, explanation],
                 api_name="analyze")


def build_app(em: EmoMusic, out_dir: str | os.PathLike, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
              concurrency: int = DEFAULT_CONCURRENCY) -> gr.Blocks:
    """The Blocks app around one loaded EmoMusic; serve it with `serve` (which applies the limits)."""
    import gradio as gr

    service = DemoService(em, Workspace.create(out_dir, max_upload_mb))
    with gr.Blocks(title="emomusic", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as app:
        gr.Markdown("# emomusic\nWrite new music in the mood you ask for, or recognise the mood of music.")
        status = gr.Markdown(elem_id="stage-status")
        with gr.Tab("Generate"):
            _generate_tab(service)
        with gr.Tab("Analyze"):
            _analyze_tab(service)
        app.load(lambda: _status(service.em), outputs=status, api_visibility="private")
    app.queue(default_concurrency_limit=int(concurrency), max_size=256)
    app.emomusic_service = service  # read by `serve` for the output folder and the upload limit
    return app


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Keep the server's memory near its baseline after bursts of requests (glibc only; best effort).

    Gradio runs each request in a worker thread and glibc gives threads their own malloc arenas, which
    keep freed memory: RSS then creeps up with every burst (docs/BENCHMARKS.md has the measured growth
    with and without the cap).
    An explicit $MALLOC_ARENA_MAX wins.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, int(arenas))  # M_ARENA_MAX
    except (OSError, AttributeError):
        return


def serve(app: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, block: bool = True,
          share: bool = False) -> str:
    """Start the server with the app's upload limit and output folder; returns the local URL."""
    ws: Workspace = app.emomusic_service.ws
    _limit_malloc_arenas()
    _, url, _ = app.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                           max_file_size=int(ws.max_upload_mb * 1e6), allowed_paths=[str(ws.root)],
                           show_error=True, quiet=not block, ssr_mode=False, inbrowser=False)
    return url


def launch(host: str = "127.0.0.1", port: int = 7860, checkpoints: str | os.PathLike | None = None,
           out_dir: str | os.PathLike | None = None, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
           share: bool = False, block: bool = True, generator: str | os.PathLike | None = None) -> str:
    """Load the checkpoints and serve the demo (blocks until stopped unless block=False).

    `generator`: a generator folder to sample from instead of the checkpoints' own (a fine-tuned one);
    chosen at launch, since loading a generator per request would make every request wait for it.
    """
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise InvalidInputError("the demo needs Gradio: pip install 'emomusic[demo]'") from None
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained(checkpoints, generator=generator)
    for line in em.notices:
        print(f"emomusic: note: {line}", file=sys.stderr)
    out = Path(out_dir) if out_dir else Path(tempfile.gettempdir()) / "emomusic-demo"
    return serve(build_app(em, out, max_upload_mb), host=host, port=port, block=block, share=share)
