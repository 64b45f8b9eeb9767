"""natlens imports where Azure engineers work: on Windows too (no POSIX-only module)."""

from __future__ import annotations

import json
import subprocess
import sys

# POSIX-only standard modules: absent from Windows' Python.
POSIX_ONLY = ("fcntl", "termios", "pwd", "grp", "resource")

# Run in a fresh interpreter: the POSIX-only modules are made unimportable (as on
# Windows, where importing them raises ModuleNotFoundError), then natlens and every
# sub-module are imported. Prints {module: error} for those that fail, as JSON.
_IMPORT_ALL = """
import importlib, importlib.abc, json, pkgutil, sys, traceback

BLOCKED = set(sys.argv[1].split(","))


class Windows(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


for name in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[name]
sys.meta_path.insert(0, Windows())

failed = {}


def load(name):
    try:
        return importlib.import_module(name)
    except BaseException as error:
        lines = traceback.format_exception_only(type(error), error)
        failed[name] = "".join(lines).strip()
        return None


names = ["natlens"]
natlens = load("natlens")
if natlens is not None:
    walk = pkgutil.walk_packages(natlens.__path__, "natlens.", onerror=load)
    names += [info.name for info in walk]
    for name in names[1:]:
        load(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"modules": names, "failed": failed, "loaded": loaded}))
"""


def _import_all(blocked: tuple[str, ...]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, ",".join(blocked)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_every_module_imports_without_posix_only_modules() -> None:
    result = _import_all(POSIX_ONLY)
    modules = result["modules"]
    assert isinstance(modules, list)
    # The walk reaches the sub-packages and their private modules.
    assert {"natlens", "natlens.azure", "natlens.azure._blob", "natlens._store"} <= set(modules)
    assert result["failed"] == {}
    assert result["loaded"] == []


def test_the_blocker_would_catch_a_posix_only_import() -> None:
    # The same harness, blocking a module natlens does import: the failure is seen.
    result = _import_all(("json",))
    failed = result["failed"]
    assert isinstance(failed, dict)
    assert "natlens" in failed
    assert "No module named 'json'" in failed["natlens"]
