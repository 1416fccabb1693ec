"""The package's layering (issue 11): imports flow one way.

The contracts are in pyproject.toml (``[tool.importlinter]``; also run by ``lint-imports``):
a layers contract (cli > api > report > profile > checks > engine > config > tasks > paradigms,
curation > families, metrics, data > theory > results > rng, registry: a module imports only
from layers below its own, directly or through other modules), theory importing nothing else of
the package, metrics knowing nothing of families, tasks or the engine, and no import cycles
between sibling packages or modules at any depth.  ``ignore_imports`` entries marked TODO are
known violations that other parts of issue 11 remove; an entry whose import is gone fails the
contract (import-linter: "No matches for ignored import"), so it is deleted with the import.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, "
            "no_logo=True))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (
        "import contracts broken (pyproject.toml, [tool.importlinter]):\n"
        + proc.stdout[-8000:] + proc.stderr[-4000:])


def test_theory_imports_only_numpy_scipy_and_the_standard_library():
    graph = grimp.build_graph("modelcollapse", include_external_packages=True, cache_dir=None)
    allowed = {"numpy", "scipy", *sys.stdlib_module_names}
    modules = {"modelcollapse.theory", *graph.find_descendants("modelcollapse.theory")}
    bad = sorted(f"{m} -> {imported}" for m in modules
                 for imported in graph.find_modules_directly_imported_by(m)
                 if not imported.startswith("modelcollapse.theory")
                 and imported.split(".")[0] not in allowed)
    assert not bad, "theory must stay pure functions (numpy, scipy): " + "; ".join(bad)
