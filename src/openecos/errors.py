"""The root of OpenECoS's exception hierarchy.

Each part defines its own small family under :class:`OpenEcosError` that
carries what a caller needs to answer (a byte offset, a DUIS response code, a
named reason), in the manner of h11's protocol errors.
"""


class OpenEcosError(Exception):
    """Base class of every error OpenECoS raises on purpose."""
