"""The user's code named by a ``"module:attribute"`` import path (a study's ``family``, a
``verify`` policy's ``verifier``): one lookup rule and one-line errors for both.

The module is imported from the study file's folder (and the folders of the files it
``extends``) first, then from ``sys.path``.  Importing a module runs its code: a study that
names one runs the user's code (``Study.user_code`` lists it, ``modelcollapse validate`` prints
it).  Presets never name one.
"""

from __future__ import annotations

import difflib
import importlib
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["ImportPathError", "IMPORT_PATH", "import_module", "resolve_import_path", "origin"]

#: ``module.sub:attribute.sub`` -- dotted Python names on both sides of one colon
IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class ImportPathError(ValueError):
    """An import path that cannot be resolved; the message is one line starting with the
    field (``family: cannot import 'x' ...``)."""


def _folders(base_dir) -> list[str]:
    folders = base_dir if isinstance(base_dir, (list, tuple)) else [base_dir]
    return [str(f) for f in folders if f is not None]


def import_module(module: str, base_dir=None):
    """Import ``module``, looking in ``base_dir`` (a folder, or a list of folders, nearest
    first) before ``sys.path``; an already imported module is returned as is.

    Raises
    ------
    ImportError
        Not found (``ModuleNotFoundError``) or failing to import.
    Exception
        Whatever the module's own code raises while it is imported.
    """
    if module in sys.modules:
        return sys.modules[module]
    top = module.split(".")[0]
    for folder in (Path(f).resolve() for f in _folders(base_dir)):
        if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
            sys.path.insert(0, str(folder))
            try:
                return importlib.import_module(module)
            finally:
                sys.path.remove(str(folder))
    return importlib.import_module(module)


def resolve_import_path(ref: str, base_dir=None, *, field: str | None = "family",
                        example: str = "my_models:BayesianGMM") -> Any:
    """The object named by ``ref`` = ``"module:attribute"`` (attribute may be dotted).

    Parameters
    ----------
    base_dir : str, Path or list of them, optional
        Folders searched before ``sys.path`` (``config.study_folders``).
    field : str or None
        The study field, first word of every error message (None: no prefix).
    example : str
        A well-formed import path shown when ``ref`` is malformed.

    Raises
    ------
    ImportPathError
        One line: a malformed path, a module that cannot be found (with the folders searched),
        a module whose import raised (its exception in one line), or a missing attribute (with
        did-you-mean).
    """
    head = f"{field}: " if field else ""
    if not isinstance(ref, str) or not IMPORT_PATH.match(ref):
        raise ImportPathError(f"{head}{ref!r} is not 'module:attribute' (e.g. {example})")
    module, _, attr = ref.partition(":")
    try:
        mod = import_module(module, base_dir)
    except ImportError as exc:
        folders = _folders(base_dir)
        where = f"the study's folder {', '.join(folders)} or " if folders else ""
        detail = " ".join(str(exc).split())
        raise ImportPathError(f"{head}cannot import {module!r} from {where}sys.path "
                              f"({type(exc).__name__}: {detail})") from None
    except BaseException as exc:  # the user's module raised (or exited) while importing
        if isinstance(exc, KeyboardInterrupt):
            raise
        detail = " ".join(str(exc).split())
        raise ImportPathError(f"{head}importing {module!r} failed: {type(exc).__name__}: "
                              f"{detail}") from None
    target: Any = mod
    for part in attr.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ImportPathError(f"{head}module {module!r} has no attribute {attr!r}{hint}")
        target = getattr(target, part)
    return target


def origin(obj: Any) -> str | None:
    """The file the module of ``obj`` was loaded from (resolved), if any."""
    path = getattr(sys.modules.get(getattr(obj, "__module__", "") or ""), "__file__", None)
    return str(Path(path).resolve()) if path and Path(path).is_file() else None
