"""The Lambda API on the control plane: one handler per AWS operation, in
modules named after the resources they own. Importing the package registers
every handler (see registry.py)."""

# Imported for their @operation registrations.
from . import (  # noqa: F401
    account,
    aliases,
    capacity,
    code_signing,
    concurrency,
    durable,
    event_invoke,
    event_sources,
    function_settings,
    function_updates,
    functions,
    invoke_variants,
    layers,
    permissions,
    resource_policies,
    tagging,
    urls,
    versions,
)
from .registry import Api, Caller, Settings, service_handler

__all__ = ["Api", "Caller", "Settings", "service_handler"]
