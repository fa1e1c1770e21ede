"""OpenECoS: the Enduring Change of Supplier service of GB smart metering.

The package is layered as docs/architecture.md describes: ``gbcs`` (bytes),
``smki`` (certificates), ``keys`` (key custody), ``duis`` (XML), and the
decision, storage and service layers above them. A part imports only the parts
below it.
"""

from openecos.errors import OpenEcosError
from openecos.eui import Eui64

__all__ = ["Eui64", "OpenEcosError"]
__version__ = "0.1.0"
