"""Write ``docs/reference.md``: the vocabulary, then every public name from its docstring.

Run ``uv run --locked python docs/reference.py`` after changing a public signature or
docstring; ``tests/test_api.py`` fails while the committed page is stale.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from natlens._typing import VOCABULARY

MODULES = {
    "natlens": "Loaders, the Parquet store, the analyses and the report.",
    "natlens.charts": "Altair charts: each takes an analysis result and returns a chart.",
    "natlens.widgets": "JupyterLab dashboards over the analyses.",
    "natlens.azure": "Live Azure sources (`pip install 'natlens[azure]'`).",
}
PAGE = Path(__file__).resolve().parent / "reference.md"
_SECTION = re.compile(r"^(\w[\w ]*)\n-{3,}$", re.MULTILINE)


def _markdown(doc: str) -> str:
    """A numpy-style docstring as markdown: sections in bold, examples fenced."""
    parts = _SECTION.split(inspect.cleandoc(doc))
    out = [parts[0].strip()]
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        text = body.strip("\n")
        if title in ("Examples", "Example"):
            blocks = re.split(r"\n\s*\n", text)
            rendered = [
                f"```pycon\n{b}\n```" if b.lstrip().startswith(">>>") else b for b in blocks
            ]
            out.append(f"**{title}**\n\n" + "\n\n".join(rendered))
        elif title in ("Parameters", "Returns", "Raises", "Attributes", "Yields"):
            items = []
            for line in text.splitlines():
                if line and not line.startswith(" "):
                    items.append(f"- `{line.strip()}`:")
                elif items:
                    items[-1] += " " + line.strip()
            out.append(f"**{title}**\n\n" + "\n".join(items))
        else:
            out.append(f"**{title}**\n\n{text}")
    return "\n\n".join(p for p in out if p)


class _Text(str):
    """An annotation shown as written (``FrameLike``), not quoted."""

    def __repr__(self) -> str:
        return str(self)


def _signature(obj: Any) -> str:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""

    def shown(annotation: Any) -> Any:
        return _Text(annotation) if isinstance(annotation, str) else annotation

    parameters = [p.replace(annotation=shown(p.annotation)) for p in signature.parameters.values()]
    return str(
        signature.replace(
            parameters=parameters, return_annotation=shown(signature.return_annotation)
        )
    )


def _entries(module_name: str) -> Iterator[str]:
    module = importlib.import_module(module_name)
    for name in sorted(module.__all__, key=str.lower):
        obj = getattr(module, name)
        where = f"{module_name}.{name}"
        if inspect.isclass(obj) or callable(obj):
            yield f"### `{where}{_signature(obj)}`\n\n{_markdown(obj.__doc__ or '')}"
        else:
            yield f"### `{where}`\n\n`{obj!r}`"
        if inspect.isclass(obj):
            for attribute, value in vars(obj).items():
                function = getattr(value, "__func__", value)
                if attribute.startswith("_") or not inspect.isfunction(function):
                    continue
                doc = _markdown(function.__doc__ or "")
                yield f"#### `{where}.{attribute}{_signature(function)}`\n\n{doc}"


def render() -> str:
    """The whole page."""
    lines = [
        "# natlens reference",
        "",
        "Generated from the docstrings by `docs/reference.py`; do not edit by hand.",
        "",
        "## Vocabulary",
        "",
        "Every public function, chart, widget and Azure reader names its parameters with",
        "these words, each with one meaning (`tests/test_api.py` checks it). The types are",
        "in `natlens._typing`.",
        "",
        "| name | means |",
        "|---|---|",
        *[f"| `{name}` | {meaning} |" for name, meaning in VOCABULARY.items()],
    ]
    for module_name, summary in MODULES.items():
        lines += ["", f"## `{module_name}`", "", summary]
        for entry in _entries(module_name):
            lines += ["", entry]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    PAGE.write_text(render(), encoding="utf-8")
