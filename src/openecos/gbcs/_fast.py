"""Fast construction of frozen values by the decoders.

A frozen dataclass's ``__init__`` sets each field through
``object.__setattr__``, which costs about 0.2 µs a field; the decoders build
a few dozen fields per frame, and decoding must stay a small fraction of the
crypto it precedes (the 6.23 benchmark budget is 15 % over one ECDSA verify,
one ECDH and one GMAC). :func:`constructor` returns a positional builder that
writes the slots directly. Only decoders use it, and only with field values
they have already validated, so the result is the same value ``__init__``
would have produced (``__post_init__`` checks are the decoder's job).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def constructor(cls: type[T]) -> Callable[..., T]:
    """A function ``(field values in declaration order) -> cls instance``."""
    names = [field.name for field in fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    for name in names:
        namespace[f"_set_{name}"] = getattr(cls, name).__set__
    body = "".join(f"    _set_{name}(obj, {name})\n" for name in names)
    source = f"def make({', '.join(names)}):\n    obj = _new(_cls)\n{body}    return obj\n"
    exec(source, namespace)  # builds a straight-line setter; names are dataclass field names
    make: Callable[..., T] = namespace["make"]
    return make
