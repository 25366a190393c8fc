"""kopf handlers: thin decorated functions that record what they see and ask for a reconcile.

Importing this package registers them with kopf's default registry.
"""

from modelyard_operator.handlers import lifecycle, watching

__all__ = ["lifecycle", "watching"]
