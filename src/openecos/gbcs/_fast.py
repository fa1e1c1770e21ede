"""Fast construction of frozen values by the decoders.

A frozen dataclass's ``__init__`` sets each field through
``object.__setattr__``, which costs about 0.2 µs a field; the decoders build
a few dozen fields per frame, and decoding must stay a small fraction of the
crypto it precedes (the 6.23 benchmark budget is 15 % over one ECDSA verify,
one ECDH and one GMAC).

:func:`constructor` builds the value as an instance of a *mutable* twin class
with the same slots (plain slot stores, the fastest thing CPython does), then
re-labels it with the frozen class. CPython allows ``__class__`` assignment
only between classes with identical layouts, which the twin has by
construction and which :func:`constructor` checks once, at import. The result
is indistinguishable from one made by ``__init__``: ``type()``, equality,
hashing and immutability are the frozen class's. Only decoders use this, and
only with field values they have already validated (``__post_init__`` checks
are the decoder's job).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, make_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def constructor(cls: type[T]) -> Callable[..., T]:
    """A function ``(field values in declaration order) -> cls instance``."""
    names = [field.name for field in fields(cls)]  # type: ignore[arg-type]
    twin: Any = make_dataclass(
        f"_Mutable{cls.__name__}", names, slots=True, eq=False, repr=False, match_args=False
    )

    def make(*values: Any) -> T:
        value = twin(*values)
        value.__class__ = cls
        return value  # type: ignore[no-any-return]

    probe = make(*([None] * len(names)))  # raises TypeError now if the layouts differ
    if type(probe) is not cls:
        raise TypeError(f"cannot build {cls.__name__} quickly")
    make.twin = twin  # type: ignore[attr-defined]
    return make


def twin_of(make: Callable[..., T]) -> Any:
    """The mutable twin class behind a :func:`constructor`, for a caller that inlines it:
    ``value = twin(*fields); value.__class__ = cls`` (one Python call fewer)."""
    return make.twin  # type: ignore[attr-defined]
