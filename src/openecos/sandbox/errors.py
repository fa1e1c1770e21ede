"""The one error of the sandbox part."""

from __future__ import annotations

from openecos.errors import OpenEcosError


class SandboxError(OpenEcosError):
    """A sandbox cannot be created or read: the message names the file and the reason."""
