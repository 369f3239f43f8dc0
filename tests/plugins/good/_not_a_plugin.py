"""Files starting with an underscore are helpers, never loaded as plugins: loading this one fails."""

raise RuntimeError("_not_a_plugin.py must not be loaded")
