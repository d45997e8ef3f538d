"""Model-card templates: one Markdown file per shipped component, rendered by `render_card`.

A card is prose that people edit; kept as 60–90-line f-strings inside training code it hid the
training recipe around it. The training code computes the fields (numbers, tables, sentences whose
wording depends on the results); the template holds the words. Placeholders are ``str.format``
fields (``{name}``, ``{name:.3f}``, ``{name[key]}``), so a template can format a value but holds no
logic. Templates ship as package data (pyproject: ``[tool.setuptools.package-data]``).
"""

from __future__ import annotations

import re
from importlib import resources
from string import Formatter
from typing import Any

__all__ = ["card_names", "render_card", "template_fields"]

_ROOT = re.compile(r"[^.\[]*")  # "e[4Q]" and "cfg.model" use the fields "e" and "cfg"


def card_names() -> list[str]:
    """The names of the shipped templates (file names without ``.md``), sorted.

    Returns:
        e.g. ``["audio_recognizer", "clusterer", ...]``.
    """
    return sorted(p.name.removesuffix(".md") for p in resources.files(__name__).iterdir() if p.name.endswith(".md"))


def _template(name: str) -> str:
    path = resources.files(__name__).joinpath(f"{name}.md")
    if not path.is_file():
        raise ValueError(f"no model-card template {name!r}; templates: {', '.join(card_names())}")
    return path.read_text(encoding="utf-8")


def template_fields(name: str) -> set[str]:
    """The field names a template needs (the part of each placeholder before any ``.`` or ``[``).

    Args:
        name: template name, e.g. ``"recognizer"`` for ``cards/recognizer.md``.

    Returns:
        The set of field names ``render_card`` must be given.
    """
    return {_ROOT.match(field).group() for _, field, _, _ in Formatter().parse(_template(name)) if field is not None}


def render_card(name: str, /, **fields: Any) -> str:
    """Fill template ``name`` with ``fields``.

    Every field must be given and every given field used, so a renamed placeholder or a typo in the
    training code fails loudly instead of shipping a card with a hole in it.

    Args:
        name: template name (``cards/<name>.md``).
        **fields: one value per placeholder; dicts and objects may be indexed by the template.

    Returns:
        The card text.

    Raises:
        ValueError: unknown template, or missing or unused fields (all of them named).
    """
    text = _template(name)
    needed = template_fields(name)
    missing, unused = sorted(needed - set(fields)), sorted(set(fields) - needed)
    if missing or unused:
        raise ValueError(f"card {name!r}: " + "; ".join(
            part for part in (f"missing fields {missing}" if missing else "",
                              f"unused fields {unused}" if unused else "") if part))
    return text.format_map(fields)
