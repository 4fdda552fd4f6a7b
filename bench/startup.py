"""Start-up time with many flow files: 200 copies of the demo shop, each with its own flow names."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .server import REPO, Server

TARGET_KEYS = ("goto", "then", "else", "on_fail", "on_error", "call")


def _rename(node: Any, names: dict[str, str]) -> Any:
    """Point every jump at a renamed flow (`order` or `order.quantity`) to its new name."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in TARGET_KEYS and isinstance(value, str):
                flow, dot, step = value.partition(".")
                value = names.get(flow, flow) + dot + step
            out[key] = _rename(value, names)
        return out
    if isinstance(node, list):
        return [_rename(v, names) for v in node]
    return node


def make_flows(folder: Path, total: int, *, source: Path = REPO / "flows") -> Path:
    """The shipped flow files plus copies of shop.yaml up to `total` files, every flow name unique."""
    folder.mkdir(parents=True, exist_ok=True)
    shipped = sorted(source.glob("*.yaml"))
    for f in shipped:
        (folder / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    shop = yaml.safe_load((source / "shop.yaml").read_text(encoding="utf-8"))
    for n in range(total - len(shipped)):
        names = {name: f"{name}_{n}" for name in shop["flows"]}
        copy = {"flows": {names[k]: _rename(v, names) for k, v in shop["flows"].items()}}
        text = yaml.safe_dump(copy, allow_unicode=True, sort_keys=False)
        (folder / f"shop_{n:03d}.yaml").write_text(text, encoding="utf-8")
    return folder


def measure(files: int, *, repeat: int = 3, uvloop: bool = True) -> tuple[float, float]:
    """Seconds from process start to /healthz 200 with `files` flow files: (fastest, median) of `repeat`."""
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="wabot-bench-start-") as tmp:
        folder = Path(tmp)
        flows = make_flows(folder / "flows", files) if files > 3 else REPO / "flows"
        for _ in range(repeat):
            # no Graph calls are made while idle: any URL will do
            server = Server(folder, graph_url="http://127.0.0.1:9", flows=flows, uvloop=uvloop)
            try:
                times.append(server.start())
            finally:
                server.stop()
            server.db.unlink(missing_ok=True)
    return min(times), statistics.median(times)
