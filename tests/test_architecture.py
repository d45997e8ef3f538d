"""The layer rule of docs/ARCHITECTURE.md, enforced by reading every import in the package.

Imports go downward only: a module may import its own layer's package or a lower layer. The stages
(prompt, conditioning, generation; then selection and recognition) do not import each other sideways,
except where a later stage reads an earlier one's network (selection and recognition embed pieces with
the generator). Training and evaluation sit beside the top: they may use everything below the front
ends, and nothing at inference imports them. Lazy imports inside functions count: they run too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "emomusic"

# (layer, packages or modules); a module belongs to the longest prefix that names it
LAYERS: dict[str, int] = {
    "emomusic.errors": 0, "emomusic.settings": 0, "emomusic.io": 0, "emomusic.vocab": 0, "emomusic.numerics": 0,
    "emomusic.music": 1, "emomusic.types": 1, "emomusic.checkpoint": 1,
    "emomusic.export": 2,
    "emomusic.prompt": 3, "emomusic.conditioning": 3, "emomusic.generation": 3, "emomusic.expression": 3,
    "emomusic.arrangement": 3,
    "emomusic.selection": 4, "emomusic.recognition": 4,
    "emomusic.pipeline": 5, "emomusic.request": 5, "emomusic": 5,  # the package itself: the public API facade
    "emomusic.training": 6, "emomusic.evaluation": 6,  # beside the top
    "emomusic.apps": 7, "emomusic.cli": 8,  # `emomusic demo` starts the app
}
SIDE = ("emomusic.training", "emomusic.evaluation")
FRONT = ("emomusic.cli", "emomusic.apps")
# sideways imports between stages of one layer that the design allows: (importer, imported)
ALLOWED_SIDEWAYS = {("emomusic.training", "emomusic.evaluation"), ("emomusic.evaluation", "emomusic.training"),
                    ("emomusic.pipeline", "emomusic.request")}  # the pipeline runs the request it is given


def home(module: str) -> str:
    """The LAYERS key a module belongs to (its longest prefix)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return key
    raise KeyError(module)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every emomusic import in a file, at any depth (lazy ones included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "emomusic"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "emomusic":
                continue
            # `from emomusic.x import y` may import submodule x.y: count the submodule when it is one
            for a in node.names:
                sub = f"{target}.{a.name}"
                is_module = (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists() or (
                    PACKAGE.parent / Path(*sub.split(".")) / "__init__.py").exists()
                out.append((node.lineno, sub if is_module else target))
    return out


def violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = module_name(path)
        src_home = home(src)
        for line, target in imports(path):
            dst_home = home(target)
            if src_home == dst_home or src_home == "emomusic":
                continue  # within one package; the facade may import anything it exposes
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
            if dst_home.startswith(SIDE) and not src_home.startswith(SIDE + FRONT):
                bad.append(f"{where}: training/evaluation are imported by nothing at inference")
            elif dst_home.startswith(FRONT) and not src_home.startswith(FRONT):
                bad.append(f"{where}: nothing imports the front ends")
            elif LAYERS[dst_home] > LAYERS[src_home]:
                bad.append(f"{where}: upward (layer {LAYERS[src_home]} -> {LAYERS[dst_home]})")
            elif LAYERS[dst_home] == LAYERS[src_home] and LAYERS[src_home] >= 3 and dst_home != "emomusic" and (
                    (src_home, dst_home) not in ALLOWED_SIDEWAYS):
                bad.append(f"{where}: sideways between stages of one layer")
    return bad


def test_every_module_has_a_layer():
    missing = [module_name(p) for p in PACKAGE.rglob("*.py") if not any(
        module_name(p) == k or module_name(p).startswith(k + ".") for k in LAYERS)]
    assert not missing, f"add these to LAYERS (and docs/ARCHITECTURE.md): {missing}"


def test_imports_go_downward_only():
    bad = violations()
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_the_checker_sees_lazy_upward_and_relative_imports(tmp_path, monkeypatch):
    """The rule must be able to fail: an upward import hidden inside a function is reported."""
    fake = tmp_path / "emomusic"
    (fake / "music").mkdir(parents=True)
    (fake / "training").mkdir()
    for p in (fake / "__init__.py", fake / "music" / "__init__.py", fake / "training" / "__init__.py",
              fake / "training" / "data.py"):
        p.write_text("")
    (fake / "music" / "notes.py").write_text(textwrap.dedent("""
        def f():
            from emomusic.training import data
            from ..pipeline import EmoMusic
    """))
    (fake / "pipeline.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    bad = violations()
    assert any("music/notes.py:3 imports emomusic.training.data" in b for b in bad), bad
    assert any("music/notes.py:4 imports emomusic.pipeline" in b and "upward" in b for b in bad), bad


@pytest.mark.slow
def test_generating_imports_no_training_evaluation_or_front_end_module():
    """One and eight candidates through the API load only inference layers (shipped checkpoints)."""
    root = PACKAGE.parent / "checkpoints" / "generator" / "config.json"
    if not root.is_file():
        pytest.skip("no shipped generator checkpoint")
    code = textwrap.dedent("""
        import sys
        from emomusic import EmoMusic
        em = EmoMusic.from_pretrained()
        em.generate(emotion="calm", bars=1, seed=1)
        em.generate(emotion="sad", bars=1, seed=1, candidates=8)
        bad = sorted(m for m in sys.modules if m.startswith(("emomusic.training", "emomusic.evaluation",
                                                             "emomusic.cli", "emomusic.apps")))
        print(",".join(bad))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"EMOMUSIC_WORKERS": "1", "PATH": "/usr/bin:/bin"} | dict(__import__("os").environ))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"generation imported: {out.stdout.strip()}"
