"""Save and load any component (generator, recognizer, clusterer, …) as one checkpoint directory.

A checkpoint is a directory, so weights, configuration and documentation travel together and can be
inspected with ordinary tools::

    model.safetensors   weights (safetensors: no pickle, so loading an untrusted file cannot run code)
    config.json         {"format_version", "class", "config", "tokenizer", "versions", "metrics",
                         "created", "storage_dtype", "files": {filename: sha256}}
    MODEL_CARD.md       what the model is, what it was trained on, how well it does
    <extra files>       optional artifacts (e.g. numpy arrays via :func:`encode_arrays`), checksummed

Why this shape: the config and class name are enough to rebuild the module before loading weights
(audiocraft's one-file-holds-everything idea, MidiTok's config-to-JSON idea), the checksums turn a
truncated download or a hand-edited file into a clear error instead of a model that silently generates
noise, and writing into a temporary directory then renaming means an interrupted save never leaves a
half-written checkpoint where a good one used to be.

Every failure raises :class:`~emomusic.errors.CheckpointError` with one line that names the file.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from safetensors import SafetensorError
from safetensors import numpy as st_numpy

from emomusic.errors import CheckpointError

if TYPE_CHECKING:  # torch is imported where weights are saved or loaded as tensors, not at import
    import torch

__all__ = [
    "CONFIG_FILE",
    "CheckpointError",
    "FORMAT_VERSION",
    "MODEL_CARD_FILE",
    "update_model_card",
    "WEIGHTS_FILE",
    "Checkpoint",
    "check_state_dict",
    "decode_arrays",
    "encode_arrays",
    "load_checkpoint",
    "load_matching",
    "save_arrays",
    "package_version",
    "save_checkpoint",
]

FORMAT_VERSION: Final = 1
WEIGHTS_FILE: Final = "model.safetensors"
CONFIG_FILE: Final = "config.json"
MODEL_CARD_FILE: Final = "MODEL_CARD.md"
_RESERVED: Final = frozenset({WEIGHTS_FILE, CONFIG_FILE, MODEL_CARD_FILE})
# Plain file names only: a tampered config.json must not make us read "../../somewhere".
_SAFE_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LOW_PRECISION: Final = ("float16", "bfloat16")  # storage dtypes that load back as float32
_MAX_LISTED: Final = 3  # mismatches shown per category in check_state_dict's message
# Formats that unpickle on load (pickle, torch.save, joblib, numpy object arrays). emomusic never reads
# them; one found in a checkpoint folder means a mix-up or an attack, so loading stops and names it.
_PICKLE_SUFFIXES: Final = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".dill", ".npy", ".npz")
_PICKLE_MAGIC: Final = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")
_TEXT_SUFFIXES: Final = (".safetensors", ".json", ".jsonl", ".md", ".txt")


def package_version() -> str:
    """The installed emomusic version, recorded in every checkpoint for provenance.

    Prefers ``emomusic.__version__`` (the single source the build reads), then the installed
    distribution's metadata, then a placeholder, so saving works from a bare source checkout too.
    """
    pkg = sys.modules.get("emomusic")
    version = getattr(pkg, "__version__", None)
    if isinstance(version, str) and version:
        return version
    try:
        return importlib.metadata.version("emomusic")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise numpy arrays with safetensors, for ``extra_files`` (e.g. a clusterer's centroids).

    Args:
        arrays: name → array (made contiguous).

    Returns:
        safetensors bytes.
    """
    try:
        return st_numpy.save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    except (SafetensorError, TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot encode arrays for a checkpoint: {exc}") from exc


def decode_arrays(data: bytes, name: str = "<bytes>") -> dict[str, np.ndarray]:
    """Inverse of :func:`encode_arrays`; ``name`` is used in the error message.

    Args:
        data: bytes written by :func:`encode_arrays`.
        name: the file's name, for the error message.

    Returns:
        name → numpy array.
    """
    try:
        return st_numpy.load(data)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{name}: not a readable safetensors array file ({_one_line(exc)})") from exc


def _one_line(exc: BaseException) -> str:
    """An exception's message squeezed to one line, so our errors stay one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _to_json(obj: Any, what: str) -> str:
    """Strict JSON (no NaN): config.json must be readable by any JSON parser, not only Python's."""
    try:
        return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{CONFIG_FILE}: {what} is not JSON-serialisable ({_one_line(exc)})") from exc


def _prepare_tensors(
    state_dict: Mapping[str, torch.Tensor], dtype: torch.dtype | None
) -> dict[str, torch.Tensor]:
    """CPU, contiguous, unshared copies; floating tensors cast to ``dtype`` when one is given.

    safetensors refuses non-contiguous tensors and tensors that share storage (tied embeddings),
    so a tensor whose storage was already seen is cloned.
    """
    import torch

    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{WEIGHTS_FILE}: state_dict keys must be strings, got {key!r}")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{WEIGHTS_FILE}: state_dict[{key!r}] is a {type(value).__name__}, not a torch.Tensor"
            )
        t = value.detach().to("cpu")
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        t = t.contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel() > 0:
            t = t.clone()
        else:
            seen.add(ptr)
        out[key] = t
    return out


def _default_card(kind: str, metrics: Mapping[str, Any], created: str) -> str:
    lines = [f"# {kind} checkpoint", "", f"Created {created}. No model card was provided.", ""]
    if metrics:
        lines += ["## Metrics", ""] + [f"- {k}: {v}" for k, v in metrics.items()] + [""]
    return "\n".join(lines)


def _write(path: Path, data: bytes) -> None:
    """Write and fsync, so the rename that publishes the checkpoint never exposes unwritten data."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _existing_kind(target: Path) -> str | None:
    """The kind of the checkpoint at ``target``, or None if it is not a readable checkpoint."""
    try:
        meta = json.loads((target / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = meta.get("class") if isinstance(meta, dict) else None
    return kind if isinstance(kind, str) else None


def save_checkpoint(
    directory: str | os.PathLike[str],
    *,
    kind: str,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor] | None,
    tokenizer: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    model_card: str = "",
    extra_files: Mapping[str, bytes] | None = None,
    dtype: torch.dtype | None = None,
    versions: Mapping[str, str] | None = None,
) -> Path:
    """Write a checkpoint directory atomically and return its path.

    ``kind`` is a dotted class path or a short name ("generator"); :func:`load_checkpoint` can insist
    on it. ``state_dict=None`` is for components without torch weights (their arrays go in
    ``extra_files``). ``dtype`` (float16/bfloat16) halves the file size for shipping; floating tensors
    come back as float32 on load. ``versions`` adds entries to the recorded package versions.

    An existing checkpoint of the same kind at ``directory`` is replaced; anything else there (a
    checkpoint of another kind, unrelated files) is left alone and raises, so a typo in a path cannot
    delete someone's data.

    Args:
        directory: the checkpoint folder to write (replaced only if it holds a checkpoint of ``kind``).
        kind: the component's class path or short name.
        config: the component's configuration (JSON-serialisable).
        state_dict: torch weights, or None for weightless components.
        tokenizer: the tokenizer's JSON, if the component has one.
        metrics: measured figures recorded in config.json.
        model_card: MODEL_CARD.md text (a short default card when empty).
        extra_files: further artifacts by plain file name.
        dtype: float16/bfloat16 to halve the weights file, or None to keep float32.
        versions: package versions to record beside the detected ones.

    Returns:
        The checkpoint folder's path.
    """
    import torch
    from safetensors.torch import save as safetensors_save

    if not isinstance(kind, str) or not kind.strip():
        raise CheckpointError(f"{CONFIG_FILE}: kind must be a non-empty string, got {kind!r}")
    if not isinstance(config, Mapping):
        raise CheckpointError(f"{CONFIG_FILE}: config must be a dict, got {type(config).__name__}")
    if dtype is not None and dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise CheckpointError(f"{WEIGHTS_FILE}: dtype must be float32, float16 or bfloat16, got {dtype}")
    target = Path(directory)
    if target.exists():
        if not target.is_dir():
            raise CheckpointError(f"{target}: exists and is not a directory; choose another path")
        if any(target.iterdir()):
            existing = _existing_kind(target)
            if existing is None:
                raise CheckpointError(
                    f"{target}: not empty and not a checkpoint; refusing to overwrite (choose another path)"
                )
            if existing != kind:
                raise CheckpointError(
                    f"{target}: holds a {existing!r} checkpoint; refusing to overwrite it with {kind!r}"
                )

    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    metrics_d = dict(metrics or {})
    files: dict[str, bytes] = {}
    if state_dict is not None:
        tensors = _prepare_tensors(state_dict, dtype)
        try:
            # One metadata key only: safetensors keeps metadata in a hash map, so with two keys their order (and
            # the file's SHA-256, which other components pin) changed from one save of the same weights to the next.
            files[WEIGHTS_FILE] = safetensors_save(tensors, metadata={"format": "pt"})
        except (SafetensorError, ValueError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{WEIGHTS_FILE}: cannot serialise weights ({_one_line(exc)})") from exc
    card = model_card if model_card.strip() else _default_card(kind, metrics_d, created)
    files[MODEL_CARD_FILE] = card.encode("utf-8")
    for name, data in (extra_files or {}).items():
        if not isinstance(name, str) or not _SAFE_NAME.match(name) or name in _RESERVED:
            raise CheckpointError(
                f"{name!r}: invalid extra file name (plain name of letters, digits, '.', '_', '-'; "
                f"not {', '.join(sorted(_RESERVED))})"
            )
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CheckpointError(f"{name}: extra file content must be bytes, got {type(data).__name__}")
        files[name] = bytes(data)

    meta = {
        "format_version": FORMAT_VERSION,
        "class": kind,
        "config": dict(config),
        "tokenizer": dict(tokenizer) if tokenizer is not None else None,
        "versions": {
            "emomusic": package_version(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            **dict(versions or {}),
        },
        "metrics": metrics_d,
        "created": created,
        "storage_dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
        "files": {name: _sha256(data) for name, data in files.items()},
    }
    config_text = _to_json(meta, "the config, tokenizer or metrics")

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for name, data in files.items():
            _write(tmp / name, data)
        _write(tmp / CONFIG_FILE, (config_text + "\n").encode("utf-8"))
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def update_model_card(directory: str | os.PathLike[str], card: str, metrics: Mapping[str, Any] | None = None,
                      config: Mapping[str, Any] | None = None) -> Path:
    """Replace a checkpoint's MODEL_CARD.md (and merge `metrics` and `config` into its config.json),
    leaving the weights' bytes untouched: other components pin those by SHA-256, so re-saving them to
    add new numbers (e.g. an evaluation run after shipping, tuned ranking weights) would break the pins.

    Args:
        directory: a checkpoint folder (verified first).
        card: the new MODEL_CARD.md text.
        metrics: figures merged into config.json's metrics.
        config: top-level entries merged into config.json's "config" (e.g. a selector's tuned weights).

    Returns:
        The checkpoint folder's path.
    """
    ck = load_checkpoint(directory)  # verify everything before touching anything
    config_path = ck.path / CONFIG_FILE
    meta = json.loads(config_path.read_text(encoding="utf-8"))
    data = card.encode("utf-8")
    meta["files"][MODEL_CARD_FILE] = _sha256(data)
    meta["metrics"] = {**meta.get("metrics", {}), **dict(metrics or {})}
    meta["config"] = {**meta.get("config", {}), **dict(config or {})}
    config_text = (_to_json(meta, "the config or metrics") + "\n").encode("utf-8")
    for path, content in ((ck.path / MODEL_CARD_FILE, data), (config_path, config_text)):
        tmp = path.with_name(f".{path.name}.tmp")
        _write(tmp, content)
        os.replace(tmp, path)
    return ck.path


def _publish(tmp: Path, target: Path) -> None:
    """Move the finished temp dir into place; an old checkpoint is swapped out, then deleted.

    POSIX cannot rename a directory over a non-empty one, so the old one is renamed aside first and
    put back if the second rename fails.
    """
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old.rmdir()
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@dataclass
class Checkpoint:
    """A loaded checkpoint: everything needed to rebuild and restore a component.

    ``state_dict`` is empty for weightless components. Tensors saved in float16/bfloat16 are returned
    as float32, since the models compute in float32 on CPU: torch tensors, or numpy arrays when loaded
    with ``arrays=True``.
    """

    kind: str
    config: dict[str, Any]
    state_dict: dict[str, Any]
    tokenizer: dict[str, Any] | None
    metrics: dict[str, Any]
    versions: dict[str, str]
    path: Path
    created: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def read_extra(self, name: str) -> bytes:
        """Bytes of an extra artifact, verified against its recorded checksum.

        Args:
            name: the extra file's name.

        Returns:
            Its bytes.
        """
        if name not in self.files:
            known = ", ".join(sorted(set(self.files) - _RESERVED)) or "none"
            raise CheckpointError(f"{self.path / name}: not in this checkpoint (extra files: {known})")
        return _read_verified(self.path, name, self.files[name])

    def read_arrays(self, name: str) -> dict[str, np.ndarray]:
        """An extra artifact written with :func:`encode_arrays`, decoded back to numpy arrays.

        Args:
            name: the extra file's name.

        Returns:
            name → numpy array.
        """
        return decode_arrays(self.read_extra(name), str(self.path / name))

    @property
    def model_card(self) -> str:
        """The checkpoint's MODEL_CARD.md text."""
        return self.read_extra(MODEL_CARD_FILE).decode("utf-8", errors="replace")

    def load_into(self, module: torch.nn.Module) -> torch.nn.Module:
        """Check keys and shapes (clear error), then ``load_state_dict`` strictly; returns ``module``.

        Args:
            module: a torch module built from this checkpoint's config.

        Returns:
            ``module``, with the weights loaded.
        """
        check_state_dict(module, self.state_dict, self.path / WEIGHTS_FILE)
        module.load_state_dict(self.state_dict, strict=True)
        return module


def _read_verified(directory: Path, name: str, expected: str) -> bytes:
    path = directory / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing (listed in {CONFIG_FILE}); re-download or retrain") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({_one_line(exc)})") from exc
    if _sha256(data) != expected:
        raise CheckpointError(f"{path}: checksum mismatch (tampered or truncated); re-download or retrain")
    return data


def _field(meta: dict[str, Any], key: str, types: type | tuple[type, ...], config_path: Path) -> Any:
    value = meta.get(key)
    if not isinstance(value, types):
        raise CheckpointError(f"{config_path}: field {key!r} is missing or has the wrong type")
    return value


def _refuse_pickles(root: Path, listed: Mapping[str, str]) -> None:
    """Raise on any file in ``root`` named like a pickle, or unlisted and starting like one.

    Such a file would never be loaded anyway; refusing makes a swapped-in ``model.pt`` visible instead of
    silently running the old weights. Listed files are checksummed and read as safetensors/JSON/text only,
    so only unlisted ones are sniffed (a safetensors header length can begin with the same bytes).
    """
    for path in sorted(root.iterdir()):
        if not path.is_file() or path.name == CONFIG_FILE:
            continue
        suspicious = path.suffix.lower() in _PICKLE_SUFFIXES
        if not suspicious and path.name not in listed and path.suffix.lower() not in _TEXT_SUFFIXES:
            try:
                with path.open("rb") as fh:
                    suspicious = fh.read(4).startswith(_PICKLE_MAGIC)
            except OSError:
                pass
        if suspicious:
            raise CheckpointError(
                f"{path}: pickle-format file in a checkpoint folder; emomusic never unpickles (it could run "
                "code), so remove it and use the safetensors checkpoint"
            )


def load_checkpoint(directory: str | os.PathLike[str], *, kind: str | None = None, arrays: bool = False) -> Checkpoint:
    """Load and verify a checkpoint directory written by :func:`save_checkpoint`.

    Every listed file is checked against its SHA-256 before anything is parsed, and weights are read
    with safetensors only (never pickle), so a corrupt or malicious checkpoint fails with a one-line
    :class:`CheckpointError` naming the file. ``kind`` (if given) must equal the saved class name.
    ``arrays=True`` returns the weights as numpy arrays without importing torch (whose import is
    the largest part of a process's start), for code that reads tensors directly (sampling, the
    clusterer).

    Args:
        directory: the checkpoint folder.
        kind: the class name the checkpoint must have, or None to accept any.
        arrays: return the weights as numpy arrays (no torch import).

    Returns:
        The verified :class:`Checkpoint`.
    """
    root = Path(directory)
    if not root.exists():
        raise CheckpointError(f"{root}: checkpoint directory not found")
    if not root.is_dir():
        raise CheckpointError(f"{root}: not a directory; a checkpoint is a directory holding {CONFIG_FILE}")
    config_path = root / CONFIG_FILE
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(
            f"{config_path}: missing; {root} is not a checkpoint directory (or is incomplete)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path}: cannot be read ({_one_line(exc)})") from exc
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{config_path}: unparsable JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object at the top level")

    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # JSON true and 1.0 equal 1 in Python
        hint = (
            "upgrade emomusic"
            if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION
            else "re-save it with this emomusic"
        )
        raise CheckpointError(
            f"{config_path}: format_version {version!r} is not supported (this emomusic reads "
            f"{FORMAT_VERSION}); {hint}"
        )
    saved_kind = _field(meta, "class", str, config_path)
    if kind is not None and saved_kind != kind:
        raise CheckpointError(f"{config_path}: checkpoint holds a {saved_kind!r}, expected {kind!r}")
    files = _field(meta, "files", dict, config_path)
    for name, digest in files.items():
        if not _SAFE_NAME.match(name) or not isinstance(digest, str):
            raise CheckpointError(f"{config_path}: invalid entry in 'files': {name!r}")
    config = _field(meta, "config", dict, config_path)
    tokenizer = meta.get("tokenizer")
    if tokenizer is not None and not isinstance(tokenizer, dict):
        raise CheckpointError(f"{config_path}: field 'tokenizer' must be an object or null")

    _refuse_pickles(root, files)
    # Verify every listed file up front so a broken download fails at load, not mid-generation.
    blobs = {name: _read_verified(root, name, digest) for name, digest in files.items()}

    state_dict: dict[str, Any] = {}
    if WEIGHTS_FILE in blobs:
        state_dict = _load_weights(blobs[WEIGHTS_FILE], root / WEIGHTS_FILE, meta.get("storage_dtype"), arrays)
    elif (root / WEIGHTS_FILE).exists():
        raise CheckpointError(f"{root / WEIGHTS_FILE}: present but has no checksum in {CONFIG_FILE}")

    return Checkpoint(
        kind=saved_kind,
        config=config,
        state_dict=state_dict,
        tokenizer=tokenizer,
        metrics=meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {},
        versions=meta.get("versions") if isinstance(meta.get("versions"), dict) else {},
        path=root,
        created=str(meta.get("created", "")),
        files=dict(files),
    )


def _load_weights(data: bytes, path: Path, storage_dtype: Any, arrays: bool) -> dict[str, Any]:
    """safetensors bytes → float32-restored torch tensors, or numpy arrays (numpy has no bfloat16:
    a bfloat16 file goes through torch even then)."""
    numpy_path = arrays and storage_dtype != "bfloat16"
    try:
        if numpy_path:
            state = st_numpy.load(data)
        else:
            from safetensors.torch import load as safetensors_load

            state = safetensors_load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise CheckpointError(
            f"{path}: not a readable safetensors file, truncated or corrupt ({_one_line(exc)})"
        ) from exc
    if storage_dtype in _LOW_PRECISION:
        if numpy_path:
            state = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in state.items()}
        else:
            state = {k: v.float() if v.dtype.is_floating_point and v.dtype.itemsize == 2 else v
                     for k, v in state.items()}
    if arrays and not numpy_path:
        state = {k: v.numpy() for k, v in state.items()}
    return state


def _shape(t: Any) -> tuple[int, ...] | None:
    return tuple(t.shape) if hasattr(t, "shape") else None


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def check_state_dict(
    module: torch.nn.Module, state_dict: Mapping[str, Any], path: str | os.PathLike[str]
) -> None:
    """Raise a readable :class:`CheckpointError` if ``state_dict`` does not fit ``module``.

    torch's own ``load_state_dict`` error is a multi-line dump of every key; this names the file and
    the first few missing keys, unexpected keys and shape differences on one line, which is usually
    enough to see that the checkpoint was saved with a different config or class.
    """
    check_tensors({k: tuple(v.shape) for k, v in module.state_dict().items()}, state_dict, path,
                  type(module).__name__)


def check_tensors(
    expected: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, Any], path: str | os.PathLike[str],
    what: str, allow_unexpected: bool = False,
) -> None:
    """`check_state_dict` against a table of names and shapes (for code that reads tensors directly)."""
    p = Path(path)
    if p.is_dir():
        p = p / WEIGHTS_FILE
    missing = [k for k in expected if k not in state_dict]
    unexpected = [] if allow_unexpected else [k for k in state_dict if k not in expected]
    shapes = [
        f"{k} checkpoint {_shape(state_dict[k])} vs model {tuple(v)}"
        for k, v in expected.items()
        if k in state_dict and _shape(state_dict[k]) != tuple(v)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch: {_listing(shapes)}")
    if problems:
        raise CheckpointError(
            f"{p}: weights do not fit {what}: {'; '.join(problems)} "
            "(saved with a different config or class?)"
        )


def load_matching(directory: str | os.PathLike[str], kind: str, expected: Mapping[str, Any],
                  retrain: str) -> Checkpoint:
    """A numpy checkpoint whose config records the feature set (or grid) this version computes.

    Why: the small numpy models (expression, melody, drums, quality) read features computed by code;
    weights fitted to another feature list would load fine and answer nonsense, so their loaders
    compare the recorded constants first.

    Args:
        directory: the checkpoint folder.
        kind: its component kind.
        expected: config key -> the value this version uses (lists compared as lists).
        retrain: the command that writes a matching checkpoint, for the message.

    Returns:
        The checkpoint, loaded with numpy arrays.

    Raises:
        CheckpointError: missing, corrupt, or written for other constants (one line naming them).
    """
    ck = load_checkpoint(directory, kind=kind, arrays=True)
    differ = [k for k, v in expected.items() if ck.config.get(k) != (list(v) if isinstance(v, tuple) else v)]
    if differ:
        raise CheckpointError(f"{directory}: written for another {', '.join(differ)}; retrain it ({retrain})")
    return ck


def save_arrays(directory: str | os.PathLike[str], kind: str, arrays: Mapping[str, np.ndarray], config: dict,
                metrics: Mapping[str, Any] | None = None, model_card: str = "") -> Path:
    """`save_checkpoint` for the small numpy models (expression, melody, drums, quality): numpy arrays in.

    Args:
        directory: where to write.
        kind: the component kind.
        arrays: name -> array (copied, so read-only or non-contiguous arrays are fine).
        config: what rebuilding and checking the model needs (feature names, grids, sizes).
        metrics: measured figures to store in the config.
        model_card: the MODEL_CARD.md text.

    Returns:
        The directory.
    """
    import torch

    tensors = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
    return save_checkpoint(directory, kind=kind, config=config, state_dict=tensors, metrics=dict(metrics or {}),
                           model_card=model_card)
