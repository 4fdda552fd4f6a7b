"""`wabot graph`: the flows as Mermaid or Graphviz DOT diagram (drawn by flows/diagram.py, shared with the console)."""

from __future__ import annotations

from wabot.flows.diagram import Graph, build, dot, mermaid

__all__ = ["Graph", "build", "dot", "mermaid"]
