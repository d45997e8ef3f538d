"""The Gradio demo (emomusic/apps/demo.py), served for real on a loopback port with the tiny "debug" model.

Driven the way users and scripts drive it: gradio_client against the named `generate` endpoint,
raw HTTP for uploads and file requests, and a headless Chromium (selenium) clicking Generate.
"""

from __future__ import annotations

import gc
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import mido
import numpy as np
import pytest

gr = pytest.importorskip("gradio", reason="the demo needs gradio (pip install -e '.[demo]')")
gradio_client = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")

from emomusic.apps.demo import (  # noqa: E402  (after the importorskip guards)
    DemoService,
    Workspace,
    build_app,
    serve,
)
from emomusic.errors import InvalidInputError  # noqa: E402
from emomusic.export.names import safe_stem  # noqa: E402
from emomusic.music.notes import Notes  # noqa: E402
from emomusic.pipeline import EmoMusic  # noqa: E402

MAX_UPLOAD_MB = 1.0
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running demo: its URL, Blocks app, output folder and the folder around it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "out"
        self.app = build_app(EmoMusic.from_pretrained("debug"), self.out, max_upload_mb=MAX_UPLOAD_MB)
        self.url = serve(self.app, host="127.0.0.1", port=_free_port(), block=False)

    def client(self):
        return gradio_client.Client(self.url, verbose=False)

    def request_dirs(self) -> set[Path]:
        return {p for p in self.out.iterdir() if p.is_dir()}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    srv = Server(tmp_path_factory.mktemp("demo"))
    yield srv
    srv.app.close()


def _generate(client, **kwargs):
    args = {"emotion": "calm", "bars": 2, "candidates": 2, "seed": 0, **kwargs}
    return client.submit(**args, api_name="/generate")


def _files_outside(root: Path, out: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and not p.is_relative_to(out)}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _midi_file(path: Path) -> Path:
    notes = Notes.from_arrays([60, 64, 67, 72], [0, 1, 2, 3], [1, 1, 1, 1], [80, 80, 80, 80], tempo=100)
    from emomusic.export.midi import export_midi

    return export_midi(notes, path)


# ------------------------------------------------------------------------------------ generate over the API
def test_generate_endpoint_returns_a_valid_midi_and_previews(server: Server) -> None:
    import pretty_midi
    import soundfile

    before = server.request_dirs()
    roll, audio, table, mid, wav, xml, summary = _generate(server.client(), bars=4, seed=3).result(timeout=300)
    # The MIDI downloads and is DAW-shaped: type 1, a named piano track, 4 bars at the file's tempo.
    midi = mido.MidiFile(mid)
    assert midi.type == 1 and Path(mid).suffix == ".mid"
    names = [m.name for t in midi.tracks for m in t if m.type == "track_name"]
    assert "Piano" in names
    pm = pretty_midi.PrettyMIDI(mid)
    assert sum(len(i.notes) for i in pm.instruments) > 0
    bar_seconds = 4 * 60.0 / pm.get_tempo_changes()[1][0]
    assert pm.get_end_time() <= 4 * bar_seconds + 1e-3
    # Previews and the other downloads are real files of their kind.
    audio_data, sr = soundfile.read(audio)
    assert sr > 0 and np.abs(audio_data).max() > 0.001
    assert Path(wav).read_bytes()[:4] == b"RIFF"
    assert Path(roll).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<score-partwise" in Path(xml).read_text(errors="replace")
    assert len(table["data"]) == 2 and table["headers"][:2] == ["rank", "notes"]
    if server.app.emomusic_service.em.has_selector:  # the selector scored both candidates, best (highest score) first
        scores = [row[table["headers"].index("score")] for row in table["data"]]
        assert scores == sorted(scores, reverse=True)
    assert "calm" in summary and "Q4" in summary
    # Everything was written into one new request folder under the output folder.
    new = server.request_dirs() - before
    assert len(new) == 1
    assert sorted(p.suffix for p in next(iter(new)).iterdir()) == [".mid", ".musicxml", ".png", ".wav"]


def test_intensity_and_a_genre_without_data_show_in_the_summary(server: Server) -> None:
    *_, summary = _generate(server.client(), emotion="angry", genre="jazz", intensity=1.7).result(timeout=300)
    assert "intensity 1.7" in summary and "genre 'jazz' has no training data: generating pop" in summary
    with pytest.raises(gradio_client.exceptions.AppError, match="greater than maximum"):  # the slider's limit
        _generate(server.client(), intensity=7).result(timeout=120)


def test_the_intensity_slider_at_one_leaves_the_prompts_degree_word(tmp_path: Path) -> None:
    from emomusic.apps.demo import FORM_AFTER, _form_fields

    # fields added later come last, so old positional calls hold
    assert FORM_AFTER["intensity"] == 1.0
    assert list(_form_fields())[-6:] == ["intensity", "form", "trajectory", "loop", "arrangement", "instruments"]
    service = DemoService(EmoMusic.from_pretrained("debug"), Workspace.create(tmp_path))
    assert service.request(emotion="", prompt="very sad", intensity=1.0).resolve().intensity == 1.5
    assert service.request(emotion="", prompt="very sad", intensity=0.4).resolve().intensity == 0.4
    with pytest.raises(InvalidInputError, match="intensity must be between 0 and 2"):  # the API's own check
        service.generate(emotion="sad", intensity=7)


def test_the_form_reaches_the_request_and_the_summary_lists_its_sections(tmp_path: Path) -> None:
    service = DemoService(EmoMusic.from_pretrained("debug"), Workspace.create(tmp_path))
    assert service.request(emotion="calm", bars=8, form=" ABAB ").form == "ABAB"
    assert service.request(emotion="calm", form="").form is None  # "" = the default by length
    r = service.generate(emotion="calm", bars=6, candidates=1, form="ABA")
    assert "Form: A bars 1–2 · B bars 3–4 · A bars 5–6 (returns to bar 1)" in r["summary"]
    with pytest.raises(InvalidInputError, match="unknown form"):
        service.generate(emotion="calm", form="A?B")
    assert service.request(emotion="calm", trajectory=" calm:4,sad:4 ").trajectory == "calm:4,sad:4"
    r = service.generate(emotion="", bars=8, candidates=1, trajectory="calm:2,sad:2")
    assert "A bars 1–2 calm" in r["summary"] and "B bars 3–4 sad" in r["summary"]
    assert service.request(emotion="calm", loop=True).loop


def test_the_trajectory_editor_writes_the_requests_text(tmp_path: Path) -> None:
    import pandas as pd

    from emomusic.apps.demo import trajectory_text

    assert trajectory_text([["calm", 8], ["tense", 4.0], ["", 3], [None, 2], ["0.5/-0.5", None]]) == \
        "calm:8, tense:4, 0.5/-0.5:8"
    assert trajectory_text(pd.DataFrame([["sad", 2], ["happy", 6]], columns=["emotion", "bars"])) == "sad:2, happy:6"
    assert trajectory_text([]) == "" and trajectory_text(None) == ""
    service = DemoService(EmoMusic.from_pretrained("debug"), Workspace.create(tmp_path))
    r = service.generate(emotion="", candidates=1, trajectory=trajectory_text([["calm", 2], ["sad", 2]]))
    assert "A bars 1–2 calm" in r["summary"] and "B bars 3–4 sad" in r["summary"]
    with pytest.raises(InvalidInputError):  # bars typed as words reach the request's own check
        service.generate(emotion="", candidates=1, trajectory=trajectory_text([["calm", "many"]]))


def test_the_arrangement_pickers_reach_the_request_and_the_files(tmp_path: Path) -> None:
    import mido

    service = DemoService(EmoMusic.from_pretrained("debug"), Workspace.create(tmp_path))
    assert service.request(emotion="calm", instruments=["Violin", " Cello "]).instruments == "Violin, Cello"
    assert service.request(emotion="calm", arrangement="", instruments=[]).arrangement is None
    r = service.generate(emotion="happy", bars=4, candidates=1, arrangement="band")
    assert "Arrangement (band): Lead" in r["summary"] and "Drums: drum kit" in r["summary"]
    assert [t.name for t in mido.MidiFile(str(r["files"]["mid"])).tracks[1:]] == ["Lead", "Keys", "Bass", "Drums"]
    with pytest.raises(InvalidInputError, match="unknown instrument"):
        service.generate(emotion="calm", instruments=["zither-o-matic"])


def test_bad_input_is_a_one_line_error_and_writes_nothing(server: Server) -> None:
    before = server.request_dirs()
    with pytest.raises(gradio_client.exceptions.AppError, match="unknown|close|emotion") as info:
        _generate(server.client(), emotion="xqzzy").result(timeout=120)
    assert "\n" not in str(info.value)
    assert server.request_dirs() == before


def test_four_simultaneous_generate_requests_all_complete(server: Server) -> None:
    """Concurrent requests share one model: each must finish, in its own folder, as if it ran alone."""
    client = server.client()
    before = server.request_dirs()
    jobs = [_generate(client, seed=seed, bars=3) for seed in range(4)]
    results = [job.result(timeout=300) for job in jobs]
    assert len(results) == 4 and all(mido.MidiFile(r[3]).type == 1 for r in results)
    assert len(server.request_dirs() - before) == 4
    alone = _generate(client, seed=2, bars=3).result(timeout=300)
    assert Path(alone[3]).read_bytes() == Path(results[2][3]).read_bytes()


@pytest.mark.slow
def test_twenty_concurrent_requests_answered_and_memory_returns_to_baseline(server: Server) -> None:
    if not Path("/proc/self/status").is_file():
        pytest.skip("RSS is read from /proc/self/status (Linux only)")
    client = server.client()
    warm = [_generate(client, seed=seed) for seed in range(4)]  # imports, caches, worker threads
    assert all(Path(job.result(timeout=300)[3]).is_file() for job in warm)
    gc.collect()
    baseline = _rss_mb()
    t0 = time.perf_counter()
    jobs = [_generate(client, seed=100 + seed) for seed in range(20)]  # all queued at once
    results = [job.result(timeout=600) for job in jobs]
    seconds = time.perf_counter() - t0
    assert len(results) == 20 and all(mido.MidiFile(r[3]).type == 1 for r in results)
    gc.collect()
    after = _rss_mb()
    print(f"20 concurrent requests in {seconds:.1f} s; RSS {baseline:.0f} MB before, {after:.0f} MB after")
    assert after - baseline < 100, f"RSS grew from {baseline:.0f} MB to {after:.0f} MB"


# ------------------------------------------------------------------------------------ limits and safety
def test_oversize_upload_is_refused_with_a_message(server: Server, tmp_path: Path) -> None:
    big = b"MThd" + b"\0" * int(MAX_UPLOAD_MB * 1e6 + 10)
    response = httpx.post(server.url + "gradio_api/upload", files={"files": ("big.mid", big)}, timeout=60)
    assert response.status_code == 413
    assert "size" in response.text.lower()
    path = tmp_path / "big.mid"
    path.write_bytes(big)
    with pytest.raises(ValueError, match="maximum file size"):  # gradio_client checks before sending
        server.client().predict(file=gradio_client.handle_file(str(path)), api_name="/analyze")


def test_the_service_refuses_oversize_files_itself(tmp_path: Path) -> None:
    """Defence in depth: a file that reached the handler some other way is still refused."""
    ws = Workspace.create(tmp_path / "out", max_upload_mb=0.001)
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * 5000)
    with pytest.raises(InvalidInputError, match="over the 0.001 MB upload limit"):
        ws.upload(big, "humming")
    assert ws.upload(None, "humming") is None


def test_files_outside_the_upload_cache_cannot_be_read_or_passed_in(server: Server) -> None:
    secret = server.root / "secret.txt"
    secret.write_text("SECRET")
    for path in (f"{server.out}/../secret.txt", str(secret), "/etc/passwd", f"{server.out}/%2e%2e/secret.txt"):
        response = httpx.get(server.url + "gradio_api/file=" + path, timeout=30)
        assert response.status_code in (403, 404), path
        assert "SECRET" not in response.text and "root:" not in response.text
    # A request naming a server path as its "upload" is refused before the handler runs.
    fake = {"path": str(secret), "meta": {"_type": "gradio.FileData"}}
    event = httpx.post(server.url + "gradio_api/call/analyze", json={"data": [fake]}, timeout=30).json()
    stream = httpx.get(server.url + f"gradio_api/call/analyze/{event['event_id']}", timeout=120).text
    assert "event: error" in stream and "SECRET" not in stream


def test_hostile_names_cannot_leave_the_output_folder(server: Server, tmp_path: Path) -> None:
    before_outside = _files_outside(server.root, server.out)
    for emotion in ("../../../tmp/evil", "/etc/passwd", "..\\..\\evil", "calm/../../x"):
        with pytest.raises(gradio_client.exceptions.AppError):
            _generate(server.client(), emotion=emotion).result(timeout=120)
    assert _files_outside(server.root, server.out) == before_outside
    ws = Workspace.create(tmp_path / "out")
    folder = ws.request_dir()
    for stem in ("../../evil", "/abs/path", "..", "a\0b", "C:\\evil", "名前"):
        path = ws.file(folder, stem, ".mid")
        assert path.parent == folder and ".." not in path.name and "/" not in path.stem


@pytest.mark.parametrize("text", ["../../etc/passwd", "..", "/", "a b\nc", "\0", "", "emomusic-calm-seed1"])
def test_safe_stem_keeps_only_plain_characters(text: str) -> None:
    name = safe_stem(text)
    assert name and all(c.isascii() and (c.isalnum() or c in "-_") for c in name)


# ------------------------------------------------------------------------------------ stages from other issues
def test_text_prompt_generates_through_the_projector(server: Server) -> None:
    result = _generate(server.client(), emotion="", prompt="a rainy, lonely night").result(timeout=300)
    assert mido.MidiFile(result[3]).type == 1
    assert "prompt →" in result[6]


def _hum(path: Path) -> Path:
    """A sung-like tune: C4 E4 G4 E4 C4 at 120 BPM, half a second each, with a little vibrato."""
    import soundfile

    sr = 22_050
    t = np.arange(int(0.5 * sr)) / sr
    tones = [0.3 * np.sin(2 * np.pi * 440 * 2 ** ((p - 69 + 0.2 * np.sin(2 * np.pi * 5.5 * t)) / 12) * t)
             * np.minimum(1, np.minimum(t, 0.5 - t) * 40) for p in (60, 64, 67, 64, 60)]
    soundfile.write(str(path), np.concatenate(tones).astype(np.float32), sr)
    return path


def test_humming_upload_opens_the_piece(server: Server, tmp_path: Path) -> None:
    pytest.importorskip("librosa", reason="humming needs the [audio] extra (librosa)")
    hum = gradio_client.handle_file(str(_hum(tmp_path / "hum.wav")))
    result = _generate(server.client(), humming=hum, bars=4).result(timeout=300)
    assert mido.MidiFile(result[3]).type == 1
    assert "prompt →" in result[6] and "opens with the hummed melody" in result[6]


def _image(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.full((48, 64, 3), (250, 200, 40), np.uint8)).save(path)  # bright, warm colours
    return path


def _video(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(20):  # 2 s of a colour that drifts: motion and a little change
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), (i * 10, 50, 200 - i * 5), np.uint8), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("kind", ["image", "video"])
def test_image_and_video_uploads_steer_the_mood(server: Server, tmp_path: Path, kind: str) -> None:
    pytest.importorskip("PIL" if kind == "image" else "av", reason="needs the [vision] extra")
    made = _image(tmp_path / "warm.png") if kind == "image" else _video(tmp_path / "clip.mp4")
    result = _generate(server.client(), emotion="", **{kind: gradio_client.handle_file(str(made))}).result(timeout=300)
    assert mido.MidiFile(result[3]).type == 1
    assert "prompt → quadrant" in result[6] and kind in result[6]


def test_analyze_a_midi_upload(server: Server, tmp_path: Path) -> None:
    midi = _midi_file(tmp_path / "piece.mid")
    try:
        headline, plot, explanation = server.client().predict(file=gradio_client.handle_file(str(midi)),
                                                              api_name="/analyze")
    except gradio_client.exceptions.AppError as exc:
        if "checkpoint" in str(exc):
            pytest.skip(f"emomusic.recognition.api is present but has no trained checkpoint yet: {exc}")
        raise
    assert any(q in headline for q in ("Q1", "Q2", "Q3", "Q4")) and "valence" in headline
    assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert explanation.strip()


def test_analyze_tab_shows_quadrant_plot_and_explanation(server: Server, tmp_path: Path, monkeypatch) -> None:
    """The tab's own work (plot, wording, folder) around whatever the recognizer answers."""
    import emomusic.recognition.api
    from emomusic.types import Recognition

    seen = []

    def fake_recognize(files, **kwargs):
        seen.extend(files)
        return [Recognition(str(files[0]), "Q3", {"Q1": 0.1, "Q2": 0.2, "Q3": 0.6, "Q4": 0.1}, -0.4, -0.3,
                            ["minor mode", "slow, about 64 BPM"])]

    monkeypatch.setattr(emomusic.recognition.api, "recognize", fake_recognize)
    before = server.request_dirs()
    midi = _midi_file(tmp_path / "piece.mid")
    headline, plot, explanation = server.client().predict(file=gradio_client.handle_file(str(midi)),
                                                          api_name="/analyze")
    assert len(seen) == 1 and Path(seen[0]).suffix == ".mid"
    assert "**Q3**" in headline and "valence -0.40" in headline and "Q3 60%" in headline
    assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert explanation.splitlines() == ["- minor mode", "- slow, about 64 BPM"]
    assert len(server.request_dirs() - before) == 1


def test_scores_table_shows_the_selector_scores() -> None:
    from emomusic.types import Candidate

    notes = Notes.from_arrays([60], [0], [1], [80])
    cands = [Candidate(notes, [], 0, "attributes", scores={"quality": 0.9, "emotion": 0.5, "score": 1.0}),
             Candidate(notes, [], 0, "attributes", scores={"quality": 0.1, "emotion": 0.7, "score": 0.5})]
    table = DemoService.scores_table(cands)
    assert table["headers"] == ["rank", "notes", "score", "emotion", "quality"]
    assert table["data"] == [[1, 1, 1.0, 0.5, 0.9], [2, 1, 0.5, 0.7, 0.1]]
    single = DemoService.scores_table([Candidate(notes, [], 0, "attributes")])
    assert single["data"][0][2] == "one candidate: nothing to select"


# ------------------------------------------------------------------------------------ a real browser
@pytest.mark.slow
def test_browser_clicks_generate_and_sees_audio_and_piano_roll(server: Server, tmp_path: Path) -> None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs chromium and chromedriver (Debian: chromium chromium-driver; .ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 "--window-size=1400,1800"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(server.url)
        wait = WebDriverWait(driver, 180)
        wait.until(ec.element_to_be_clickable((By.ID, "generate-button"))).click()
        roll = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#piano-roll img[src]")))
        link = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#audio-preview a[download$='.wav']")))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#audio-preview audio")))
        shot = tmp_path / "demo.png"
        assert driver.save_screenshot(str(shot)) and shot.read_bytes()[:4] == b"\x89PNG"
        print(f"screenshot: {shot}", file=sys.stderr)
        assert httpx.get(roll.get_attribute("src"), timeout=30).content[:8] == b"\x89PNG\r\n\x1a\n"
        assert httpx.get(link.get_attribute("href"), timeout=30).content[:4] == b"RIFF"
    finally:
        driver.quit()


def test_status_line_names_the_checkpoints_present(tmp_path: Path) -> None:
    from emomusic.apps.demo import _status

    em = EmoMusic.from_pretrained("debug")
    em.name = str(tmp_path)  # a folder without a recognizer
    assert _status(em) == "Stages — selector: ready · recognizer: no checkpoint"
    em.selector = None
    (tmp_path / "recognizer").mkdir()
    assert _status(em) == "Stages — selector: no checkpoint · recognizer: ready"
