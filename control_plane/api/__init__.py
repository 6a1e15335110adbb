"""The Lambda API on the control plane: one handler per AWS operation, in
modules named after the resources they own. Importing the package registers
every handler (see registry.py)."""

from . import functions  # noqa: F401  (registers its operations)
from . import account, concurrency, event_invoke, urls  # noqa: F401
from . import layers, permissions, tagging  # noqa: F401
from . import capacity, code_signing, durable, event_sources  # noqa: F401
from . import function_settings, invoke_variants  # noqa: F401
from . import aliases, versions  # noqa: F401
from . import function_updates  # noqa: F401
from .registry import Api, Caller, Settings, service_handler

__all__ = ["Api", "Caller", "Settings", "service_handler"]
