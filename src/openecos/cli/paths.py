"""Where the command line finds the DUIS schemas when it is not told.

The DUIS V5.4 XSDs are DCC's published reference data; OpenECoS reads them
from where they are kept and never copies them (``../shared/reference`` beside
a clone of the project, as its README says).
"""

from __future__ import annotations

import os
from pathlib import Path

import openecos

DUIS_XSD_ENV = "OPENECOS_DUIS_XSD"
_RELATIVE = Path("shared") / "reference" / "duis" / "xsd"


def default_xsd_dir() -> Path | None:
    """``$OPENECOS_DUIS_XSD``, else ``../shared/reference/duis/xsd`` beside the clone or cwd."""
    if DUIS_XSD_ENV in os.environ:
        return Path(os.environ[DUIS_XSD_ENV])
    clone = Path(openecos.__file__).resolve().parents[2]  # src/openecos/__init__.py
    for base in (clone.parent, Path.cwd().parent, Path.cwd()):
        candidate = base / _RELATIVE
        if candidate.is_dir():
            return candidate
    return None
