"""connector: a declarative connector runtime for YAML recipes."""

from connector.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]

__version__ = "0.1.0"
