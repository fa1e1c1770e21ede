"""``openecos.api``: the HTTP interface (FastAPI) over a service runtime.

:func:`create_app` builds the application; :func:`serve` runs it with uvicorn
(the runtime's workers start and stop with the application). The OpenAPI
document at ``/openapi.json`` is the interface specification.
"""

from openecos.api.app import XML_MEDIA_TYPE, create_app
from openecos.api.server import serve

__all__ = ["XML_MEDIA_TYPE", "create_app", "serve"]
