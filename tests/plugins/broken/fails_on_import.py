"""A plugin whose import fails: it is reported by name, and the other plugins still load."""

import connector_no_such_module  # noqa: F401
