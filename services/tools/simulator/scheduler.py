"""Discrete-event time over asyncio: many case scripts run concurrently, each waiting for the
simulated instant of its next step; the clock moves on only when every script is waiting.

A script busy with the city — an HTTP call, or a retry while an event travels between services —
holds time still, so nothing happens "later" in simulated time before what caused it has
happened in the city. Time advances on a grid of ``step``: what is due within one step runs
together, concurrently, at the step's instant; steps with nothing due are skipped.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, Protocol

Script = Callable[[], Coroutine[Any, Any, None]]


class SettableClock(Protocol):
    """A clock the simulation moves: SimulatedClock in one process, FileClock across processes."""

    def now(self) -> datetime:
        """The simulated instant."""
        ...

    def set(self, instant: datetime) -> None:
        """Move time forward to ``instant``."""
        ...


class Scheduler:
    """Runs scripts on simulated time."""

    def __init__(self, clock: SettableClock, step: timedelta) -> None:
        if step <= timedelta(0):
            raise ValueError("the time step must be positive")
        self.clock = clock
        self.step = step
        self._origin = clock.now()
        self._queue: list[tuple[datetime, int, asyncio.Future[None] | Script]] = []
        self._holds: list[tuple[datetime, int, Script]] = []
        self._turns: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    @property
    def pending(self) -> int:
        """Scripts waiting for their time or turn, scripts not started yet, and holds not run yet."""
        return len(self._queue) + len(self._holds) + len(self._turns)

    def start(self, when: datetime, script: Script) -> None:
        """Run ``script`` from the simulated instant ``when`` on."""
        heapq.heappush(self._queue, (when, next(self._order), script))

    def meanwhile(self, script: Script) -> None:
        """Run ``script`` now, alongside the one that calls this: time does not move on before it
        has finished (a check that something has happened in the city at this very instant)."""
        self._run(script)

    def hold(self, horizon: datetime, check: Script) -> None:
        """Run ``check`` before time moves past ``horizon``: a check that something has happened in
        the city before it is too late. It runs alongside the work of the last step before its
        horizon, or on its own just before time jumps past it; it adds no step of its own, and a run
        with nothing else left to do ends without it (unless the run has an end beyond its horizon).
        """
        heapq.heappush(self._holds, (horizon, next(self._order), check))

    async def until(self, when: datetime) -> None:
        """Let simulated time pass until ``when``; returns at once when that time has come."""
        if when <= self.clock.now():
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (when, next(self._order), woken))
        self._done_working()
        await woken  # the scheduler counts this script busy again as it wakes it

    async def in_turn(self, rank: int) -> None:
        """Wait, at the present simulated instant, until every other script is waiting for a later
        one or for its turn; then the scripts waiting for their turn go one at a time, the lowest
        ``rank`` first, each when all else is waiting again (what the one before started meanwhile
        included). What the city matches in the order it hears of it (a duplicate and what it
        repeats) then comes out the same in every run, whichever answers come back first.
        """
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._turns, (rank, next(self._order), woken))
        self._done_working()
        await woken  # the scheduler counts this script busy again as it wakes it

    async def run(self, end: datetime | None = None, on_advance: Callable[[datetime], None] | None = None) -> None:
        """Move time and wake what is due until nothing is left to do, or until the next step would
        pass ``end`` (the holds short of ``end`` checked before it returns: the caller moves the
        clock there). Raises the first error a script did not handle itself.
        """
        while True:
            await self._idle.wait()
            if self._failure is not None:
                raise self._failure
            if self._turns:
                # The instant's other work is done: now what waited for it, one at a time.
                self._wake(heapq.heappop(self._turns)[2])
                continue
            tick = self._tick(self._queue[0][0]) if self._queue else None
            if tick is None or (end is not None and tick > end):
                if end is not None and self._holds and self._holds[0][0] < end:
                    # The run ends at ``end``, and the clock is then moved there: check these first.
                    self._run_holds(before=end)
                    continue
                return
            if self._holds and self._holds[0][0] < tick:
                # Time is about to jump past these horizons: check first, at the present time.
                self._run_holds(before=tick)
                continue
            if tick > self.clock.now():
                self.clock.set(tick)
                if on_advance is not None:
                    on_advance(tick)
            while self._queue and self._queue[0][0] <= tick:
                _, _, wake = heapq.heappop(self._queue)
                if isinstance(wake, asyncio.Future):
                    self._wake(wake)
                else:
                    self._run(wake)
            # The next step may pass these: check alongside this step's work, which costs no wait.
            self._run_holds(before=tick + self.step)

    async def cancel(self) -> None:
        """Stop every script still waiting or running (the end of a simulation stopped early)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._queue.clear()
        self._holds.clear()
        self._turns.clear()

    def _wake(self, woken: asyncio.Future[None]) -> None:
        self._busy += 1
        self._idle.clear()
        woken.set_result(None)

    def _run_holds(self, before: datetime) -> None:
        while self._holds and self._holds[0][0] < before:
            self._run(heapq.heappop(self._holds)[2])

    def _run(self, script: Script) -> None:
        self._busy += 1
        self._idle.clear()
        task = asyncio.create_task(script())
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _tick(self, when: datetime) -> datetime:
        steps = -((self._origin - when) // self.step)  # ceiling division
        return max(self._origin + steps * self.step, self.clock.now())

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return  # cancel() is ending the run; nobody counts busy scripts any more
        if task.exception() is not None and self._failure is None:
            self._failure = task.exception()
        self._done_working()

    def _done_working(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()
