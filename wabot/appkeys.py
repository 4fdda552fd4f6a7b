"""Typed keys for the objects the aiohttp application shares between handlers."""

from __future__ import annotations

from aiohttp import web

from .config import Settings
from .dispatch import Dispatcher
from .outbox import Sender
from .store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
SENDER = web.AppKey("sender", Sender)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
