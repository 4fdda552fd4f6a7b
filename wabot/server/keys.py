"""Typed keys for the objects the aiohttp application shares between handlers."""

from __future__ import annotations

from aiohttp import web

from wabot.config import Settings
from wabot.db.base import Database
from wabot.server.dispatch import Dispatcher
from wabot.server.hub import Hub
from wabot.server.outbox import Sender

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Database)
SENDER = web.AppKey("sender", Sender)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
HUB = web.AppKey("hub", Hub)
