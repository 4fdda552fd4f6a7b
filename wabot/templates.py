"""The sandboxed Jinja environment, the Vietnamese filters, and rendering of flow texts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Renderer:
    """Compiles each Jinja source once (cached) and renders it in a sandbox."""

    def render(self, source: str, context: Mapping[str, Any]) -> str:
        raise NotImplementedError  # filled in by the engine work

    def evaluate(self, expression: str, context: Mapping[str, Any]) -> Any:
        """Evaluate a Jinja expression (`quantity > 10`) to a Python value."""
        raise NotImplementedError
