"""miditok's classes the tokenizer uses, imported without torch (see `_import_miditok`)."""

from __future__ import annotations

import sys

__all__ = ["REMI", "TokenizerConfig"]


def _import_miditok():
    """miditok, without the torch its package import brings in when it is imported first here.

    miditok's `__init__` imports its PyTorch data loaders (`miditok.pytorch_data`, which imports torch)
    inside `try: ... except ImportError`, only to list them in `__all__`; tokenizing never uses them.
    Blocking that one submodule for the duration of the import (a None entry in sys.modules makes its
    import raise ImportError, the case miditok already handles) keeps torch out of `emomusic generate`
    (1.3-2.4 s of its cold start here). The entry is removed again at once, so an explicit
    `import miditok.pytorch_data` later still works.
    """
    if "miditok" in sys.modules:
        return sys.modules["miditok"]
    key = "miditok.pytorch_data"
    blocked = key not in sys.modules
    if blocked:
        sys.modules[key] = None
    try:
        import miditok
    finally:
        if blocked and sys.modules.get(key, 0) is None:
            del sys.modules[key]
    return miditok


_miditok = _import_miditok()
REMI, TokenizerConfig = _miditok.REMI, _miditok.TokenizerConfig
