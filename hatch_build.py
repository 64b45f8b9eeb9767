"""Build natlens's one compiled part, the exact JSON Lines reader (``natlens/_scan.c``).

It is optional: where no C compiler is found (a Windows machine without Build Tools),
the build goes on without it, and natlens reads every file through DuckDB instead, with
the same checks and results (``natlens._files`` says which reader ran).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_NAME = "natlens._scan"
_SOURCE = "natlens/_scan.c"


def _compile(root: Path, out: Path, inplace: bool) -> Path:
    from setuptools import Distribution, Extension

    flags = [] if os.name == "nt" else ["-O3", "-std=c11"]
    extension = Extension(_NAME, [_SOURCE], extra_compile_args=flags)
    dist = Distribution({"name": "natlens", "ext_modules": [extension]})
    dist.script_name = "hatch_build.py"
    dist.src_root = str(root)
    command: Any = dist.get_command_obj("build_ext")
    command.inplace = inplace
    command.build_lib = str(out)
    command.build_temp = str(out / "temp")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        command.ensure_finalized()
        command.run()
        return Path(command.get_ext_fullpath(_NAME)).resolve()
    finally:
        os.chdir(cwd)


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compile ``_scan`` into the wheel, or in place for an editable install."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        editable = version == "editable"
        out = Path(tempfile.mkdtemp(prefix="natlens-build-"))
        try:
            built = _compile(root, out, inplace=editable)
        except Exception as exc:  # any compiler failure: build without it
            warnings.warn(
                f"natlens: the exact JSON Lines reader was not compiled ({exc}); "
                "natlens will read every file through DuckDB instead",
                stacklevel=1,
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if not editable:
            build_data["force_include"][str(built)] = f"natlens/{built.name}"
