"""Several instances on one PostgreSQL: which instance handles a customer, and the notices between them.

Any instance takes any webhook and commits it to the inbox before answering 200. The customer is then
handled by the one instance holding their row in `claims`: it processes their messages in inbox order
and sends their replies, and gives the customer up only when nothing of theirs waits. Its lease is
renewed every third of `database.lease_seconds` while it lives; after a `kill -9` the lease runs out
and the first instance to look (they all look at each renewal) takes the customer over, replies left
queued included. Notices travel by LISTEN/NOTIFY: "a message for your customer is in the inbox", "the
token was refused: pause", "a new token is in place: read it", "I stopped: look for orphans now", "a reply
for your customer was queued outside a turn: send it", "I reloaded my flows: these are their fingerprint".
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import (
    TYPE_CHECKING,
    Any,
)

from wabot.db.base import DB_ERRORS
from wabot.db.postgres import PgStore
from wabot.db.store import OutRow
from wabot.server.hub import Happening

if TYPE_CHECKING:
    from wabot.server.dispatch import Dispatcher
    from wabot.server.outbox import Sender

log = logging.getLogger(__name__)


class Cluster:
    """This instance's place among the instances sharing `store`."""

    def __init__(self, store: PgStore, *, lease: float, on_new_token: Callable[[], object] = lambda: None) -> None:
        self.store = store
        self.lease = lease
        self.me = f"{socket.gethostname()}-{secrets.token_hex(4)}"
        self.owned: set[str] = set()  # customers this instance holds a claim on
        # customers whose claim is being given up (`release`), and when it is done: an acquire waits for it
        self.releasing: dict[str, asyncio.Future[bool]] = {}
        self.claimed_at: dict[str, float] = {}  # customer -> monotonic time just before its claim was taken
        self.renewed_at = float("-inf")  # monotonic time just before the last renewal that succeeded
        self.clock: Callable[[], float] = time.monotonic
        self.alive = 1  # instances seen alive at the last renewal
        self.on_new_token = on_new_token
        self.on_flows: Callable[[str, str], None] = lambda served, by: None  # another instance reloaded its flows
        self.dispatcher: Dispatcher | None = None
        self.sender: Sender | None = None
        self.task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self._unlisten: Callable[[], Awaitable[None]] | None = None

    async def start(self, dispatcher: Dispatcher, sender: Sender) -> None:
        self.dispatcher, self.sender = dispatcher, sender
        sender.on_pause = lambda reason: self.tell(f"pause {reason}")
        sender.on_idle = self.idle
        sender.may_send = self.may_send
        self._unlisten = await self.store.listen(self.heard)
        dispatcher.hub.relay = self.relay
        await self.renew()  # counts the instances alive, this one included: the send rate is shared from the start
        self.tell("joined")  # and the others share it at once, not at their next renewal (issue 14: 115/s for 100/s)
        self.task = asyncio.create_task(self._renewing(), name="cluster")
        log.info("instance %s joined; %d instance(s) share this database", self.me, self.alive)

    async def quiet(self) -> None:
        """Shutting down: stop renewing and listening (the claims stay until `leave`, after the work in hand)."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._unlisten is not None:
            await self._unlisten()
            self._unlisten = None
        if self.dispatcher is not None:
            self.dispatcher.hub.relay = None
        self.dispatcher = None

    async def leave(self) -> None:
        """Give every claim up at once and say so, so the others need not wait for the leases."""
        try:
            await self.store.leave(owner=self.me)
            await self.store.notify(f"{self.me} left")
        except DB_ERRORS as exc:
            log.warning("could not hand this instance's customers over at once (%s); they wait for the lease", exc)

    # --- claims ---------------------------------------------------------------------------------

    async def acquire(self, customer: str) -> bool:
        """Hold the customer; when newly held, take over the replies a dead owner left queued."""
        if (giving_up := self.releasing.get(customer)) is not None:
            # a release in flight may not have seen the message that brought us here: were it taken for held, the
            # claim would be gone under the turn, which is then refused and the message left until something else
            # woke the customer (a timer two seconds later, in a CI run); wait, then claim anew if it was given up
            await asyncio.shield(giving_up)
        if customer in self.owned:
            return True  # the renewal keeps the lease; finish_turn refuses to save a turn once it is lost
        asked = self.clock()
        if not await self.store.claim(customer, owner=self.me, lease=self.lease):
            self.owned.discard(customer)
            return False
        if customer not in self.owned:
            self.owned.add(customer)
            self.claimed_at[customer] = asked
            if self.sender is not None:
                self.sender.adopt(await self.store.queued(customer))
        return True

    def deliver(self, customer: str, rows: list[OutRow]) -> None:
        """Replies queued outside a turn (an agent's answer, a template): sent by the instance holding the customer.

        Held here: queued here. Held elsewhere: that instance is told to read them. Held by nobody: claimed here.
        """
        if customer in self.owned and self.sender is not None:
            self.sender.adopt(rows)
        else:
            self._background(self._deliver(customer))

    async def _deliver(self, customer: str) -> None:
        if not await self.acquire(customer):  # a newly taken claim reads the customer's queued replies itself
            self.tell(f"outbox {customer}")
        elif self.sender is not None:
            self.sender.adopt(await self.store.queued(customer))

    async def release(self, customer: str) -> bool:
        """Give the customer up if nothing of theirs waits here or in the database."""
        sender = self.sender
        if sender is not None and customer in sender.busy:
            return False
        done = self.releasing[customer] = asyncio.get_running_loop().create_future()
        released = False
        try:
            released = await self.store.release(customer, owner=self.me)
            if released:
                self.owned.discard(customer)
                self.claimed_at.pop(customer, None)
        finally:
            del self.releasing[customer]
            done.set_result(released)
        if not released and sender is not None and customer not in sender.busy:  # replies queued elsewhere for them
            sender.adopt(await self.store.queued(customer))
        return released

    def lose(self, customer: str) -> None:
        """Another instance took the customer over (our lease ran out): its replies are that instance's now."""
        if customer in self.owned:
            log.warning("instance %s stalled longer than its lease; another instance took a customer over", self.me)
        self.owned.discard(customer)
        self.claimed_at.pop(customer, None)
        if self.sender is not None:
            self.sender.drop(customer)

    def may_send(self, customer: str) -> bool:
        """Whether a reply to the customer may go now: not while this instance's lease on them is in doubt.

        A lease known to hold for less than a third of its length (the process stalled: a frozen VM, a starved
        CPU) waits for the next renewal, which says whether the customer is still ours; if another instance
        took them over meanwhile, the replies are dropped here and sent there, each once.
        """
        if customer not in self.owned:
            return True  # not claimed by anyone here: the operator's notices, replies queued outside a turn
        sure = max(self.renewed_at, self.claimed_at.get(customer, float("-inf"))) + self.lease
        return self.clock() < sure - self.lease / 3

    def idle(self, customer: str) -> None:
        """The sender has nothing more for the customer: give them up (or handle what came meanwhile)."""
        if customer in self.owned:
            self._background(self._idle(customer))

    async def _idle(self, customer: str) -> None:
        if self.sender is not None and self.sender.flushes:
            await asyncio.wait(set(self.sender.flushes))  # the last reply recorded as sent: it must not hold the claim
        dispatcher = self.dispatcher
        if dispatcher is None or customer not in self.owned or customer in dispatcher.tasks:
            return  # a running task gives the customer up itself when it ends
        if not await self.release(customer):
            dispatcher.wake(customer)  # something came meanwhile: handle it

    # --- notices --------------------------------------------------------------------------------

    def tell(self, what: str) -> None:
        """Notify the other instances in the background."""
        self._background(self.store.notify(f"{self.me} {what}"))

    def heard(self, payload: str) -> None:
        sender, _, what = payload.partition(" ")
        if sender == self.me or self.dispatcher is None or self.sender is None:
            return
        kind, _, rest = what.partition(" ")
        if kind == "inbox" and rest in self.owned:
            self.dispatcher.wake(rest)
        elif kind == "outbox" and rest in self.owned:
            self._background(self._adopt(rest))
        elif kind == "pause" and not self.sender.paused:
            self.sender.paused = rest
            log.error("another instance was refused by the Graph API: %s Sending is paused here too.", rest)
        elif kind == "token":
            self.on_new_token()
        elif kind == "flows":
            self.on_flows(rest, f"instance {sender}")
        elif kind == "joined":
            self._background(self.recount())
        elif kind == "left":
            self._background(self.recount())
            self._background(self.adopt_orphans())
        elif kind == "hub":
            told = json.loads(rest)
            self.dispatcher.hub.deliver(Happening(told["kind"], told["customer"], told["data"]))

    def relay(self, happening: Happening) -> None:
        """A happening the other instances' pages show too (hub.RELAYED): a handoff opened here, say."""
        self.tell("hub " + json.dumps({"kind": happening.kind, "customer": happening.customer,
                                       "data": dict(happening.data)}, ensure_ascii=False, default=str))

    # --- renewal --------------------------------------------------------------------------------

    async def _renewing(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.renew()
            except DB_ERRORS as exc:
                log.error("could not renew this instance's claims (%s); others take its customers over "
                          "after %g seconds if this goes on", exc, self.lease)

    async def renew(self) -> None:
        """Renew the leases, count the instances (the send rate is shared), take over orphans."""
        asked, before = self.clock(), set(self.owned)
        self.alive, held = await self.store.renew(owner=self.me, lease=self.lease)
        for customer in before - held:  # gone from the database although ours when we asked: taken over, unless
            if (customer in self.owned and customer not in self.releasing  # given up here meanwhile (its release
                    and self.claimed_at.get(customer, asked) < asked):     # deleted the claim, not yet told)
                self.lose(customer)
        self.renewed_at = asked
        if self.sender is not None:
            self.sender.share(self.alive)
        await self.adopt_orphans()
        dispatcher, sender = self.dispatcher, self.sender
        if dispatcher is not None and sender is not None:
            for customer in list(self.owned):  # held but idle: hand back, or handle what is waiting
                if customer not in dispatcher.tasks and customer not in sender.busy:
                    dispatcher.wake(customer)
            for customer in held - self.owned:  # ours in the database, forgotten here: never leave them to nobody
                dispatcher.wake(customer)

    async def recount(self) -> None:
        """An instance joined or left: share the send rate among those alive now."""
        self.alive = await self.store.alive(lease=self.lease)
        if self.sender is not None:
            self.sender.share(self.alive)

    async def _adopt(self, customer: str) -> None:
        if self.sender is not None:
            self.sender.adopt(await self.store.queued(customer))

    async def adopt_orphans(self) -> None:
        if self.dispatcher is None:
            return
        orphans = await self.store.orphans()
        if orphans:
            log.info("taking over %d customer(s) whose instance stopped or died", len(orphans))
        for customer in orphans:
            self.dispatcher.wake(customer)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a notice between instances failed: %s", task.exception())
