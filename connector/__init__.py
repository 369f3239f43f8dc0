"""connector: a declarative connector runtime for YAML recipes.

What plugin authors and embedders use is exported here; everything else is internal.
"""

from connector.apps import Action, App, RunContext
from connector.catalog.model import Operation, Parameter, TriggerEvent
from connector.errors import ConnectorError
from connector.hookspecs import hookimpl

__all__ = [
    "Action",
    "App",
    "ConnectorError",
    "Operation",
    "Parameter",
    "RunContext",
    "TriggerEvent",
    "__version__",
    "hookimpl",
]

__version__ = "0.1.0"
