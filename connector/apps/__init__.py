"""Apps: what a vendor is to the runtime (:class:`App`, its operations, actions and trigger
events), the :class:`~connector.apps.registry.Registry` that holds them, and the plugin loading
that fills it (:mod:`connector.apps.plugins`)."""

from connector.apps.model import Action, App, RunContext

__all__ = ["Action", "App", "RunContext"]
