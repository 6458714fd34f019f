"""The people and systems of the simulated city, acting on each case through the HTTP APIs:
inspectors, the hotline, citizens and cameras report; operators file or reject; inspectors verify
and check; dispatchers dispatch; departments sign, send back, ask for time and report back; the
shift lead decides extensions, suspends, resumes and cancels.

One coroutine follows each case from its report to its end, doing each step at the simulated
time its fate says, as the user whose job it is.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from PIL import Image

from services.tools.simulator.client import CityClient, SimulationError, Stuck
from services.tools.simulator.plan import Arrival, Course, Fate, alternative_owner
from services.tools.simulator.scheduler import Scheduler, Script
from shared.city.calendar import TimeBasis, TimeLimit, WorkingCalendar
from shared.city.geo import Datum, from_wgs84
from shared.city.model import Category, City
from shared.core.auth import Role
from shared.events.catalogue import GridPlace, ReportSource

log = logging.getLogger(__name__)

# The smallest photo a phone could send: the handling reports upload it, the reports refer to it.


def _photo() -> bytes:
    """A small image that decodes, as the platform checks every photo."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (90, 140, 60)).save(buffer, "PNG")
    return buffer.getvalue()


PHOTO = _photo()
# Roles played by the city's first user of each (any inspector may upload the photo all reports share).
_ROLES_PLAYED = (Role.OPERATOR, Role.DISPATCHER, Role.SHIFT_LEAD, Role.HOTLINE, Role.VIDEO, Role.INSPECTOR)
_ENDED = ("closed", "cancelled")
_INSTANT = timedelta(microseconds=1)
# Reports remembered for their neighbours: intake's 72-hour duplicate window at eight times the
# reports a day of Zhoushan (about 820).
_REMEMBERED = 20_000


def deadline_passed(case: dict[str, Any], now: datetime) -> bool:
    """Whether dispatch's view of a case (``GET /dispatch/cases/{id}``) has its handling deadline
    passed at ``now``, by the deadline timer's rule: the clock runs and the deadline came before
    ``now`` (its own instant is not yet a miss)."""
    deadline = case["handling_deadline"]
    return (
        case["status"] in ("dispatched", "handled") and deadline is not None and datetime.fromisoformat(deadline) < now
    )


@dataclass
class Tally:
    """What happened, counted as the simulator saw it in the city's answers."""

    counts: Counter[str] = field(default_factory=Counter)
    # Cases not closed or cancelled yet, with the handling deadline last seen (None before signing).
    open_cases: dict[str, datetime | None] = field(default_factory=dict)

    def add(self, what: str, n: int = 1) -> None:
        """Count ``n`` more of ``what``."""
        self.counts[what] += n


class Actors:
    """Everyone who acts on cases, sharing one client, one scheduler and one tally."""

    def __init__(
        self,
        client: CityClient,
        scheduler: Scheduler,
        city: City,
        calendar: WorkingCalendar,
        run_tag: str,
        tally: Tally,
    ) -> None:
        self.client = client
        self.scheduler = scheduler
        self.city = city
        self.calendar = calendar
        self.run_tag = run_tag
        self.tally = tally
        self.photo: str | None = None
        self._missed: set[str] = set()  # open cases whose missed deadline is counted already
        # The cases of recent reports, and which of them have ended: a repeat report must find
        # intake as up to date as simulated time says (see _report).
        self._cases: OrderedDict[int, str] = OrderedDict()
        self._ended: set[str] = set()
        self._inspectors = {u.inspector_id: u.username for u in city.users if u.inspector_id}
        self._departments = {u.department_id: u.username for u in city.users if u.department_id}
        self._roles: dict[Role, str] = {}
        for user in city.users:
            self._roles.setdefault(user.role, user.username)
        missing = [i.id for i in city.inspectors if i.id not in self._inspectors]
        missing += [d.id for d in city.departments if d.id not in self._departments]
        missing += [role.value for role in _ROLES_PLAYED if role not in self._roles]
        if missing:
            raise SimulationError(
                "the city's users.yaml needs a log-in for every inspector, department and command-center role;"
                f" missing: {', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}"
            )

    async def prepare(self) -> None:
        """Upload the photo every report refers to (stored once: photos are content-addressed)."""
        stored = await self.client.call(
            self._roles[Role.INSPECTOR],
            "POST",
            "intake",
            "/photos",
            retry_on=(),
            resendable=True,  # stored by its content: a second upload is the same photo
            files=[("files", ("scene.png", PHOTO, "image/png"))],
        )
        self.photo = stored[0]["digest"]

    async def city_has_history(self) -> bool:
        """Whether the city has filed reports before this simulation."""
        for status in ("filed", "rejected", "merged"):
            found = await self.client.call(
                self._roles[Role.OPERATOR],
                "GET",
                "intake",
                "/reports",
                retry_on=(),
                params={"status": status, "limit": 1},
            )
            if found:
                return True
        return False

    def role(self, role: Role) -> str:
        """The log-in of a command-center role or a system (the first one the city lists)."""
        return self._roles[role]

    # --- one case, from report to end ---------------------------------------------------------------

    async def follow(self, arrival: Arrival) -> None:
        """Report, then act on the case as its fate says, until it ends."""
        try:
            await self._follow(arrival)
        except Stuck as exc:
            self.tally.add("stuck")
            log.error("case of report %d stuck: %s", arrival.number, exc)
        except SimulationError as exc:
            self.tally.add("errors")
            log.error("case of report %d failed: %s", arrival.number, exc)

    async def _follow(self, arrival: Arrival) -> None:
        fate = arrival.fate
        category = self.city.category(arrival.category_code)
        if arrival.neighbours:
            await self._intake_knows_the_neighbours(arrival)
        report = await self._report(arrival)
        self.tally.add("reports")
        self.tally.add(f"reports.{arrival.source.value}")
        case_id = report["id"]
        self._remember(arrival.number, case_id)
        if report["status"] == "merged":
            self.tally.add("merged")
            return
        received = datetime.fromisoformat(report["received_at"])
        if report["status"] != "filed":
            await self._wait(self._after(received, category, "filing", fate.intake_delay))
            if not await self._decide(report, fate):
                self.tally.add("rejected")
                return
        self.tally.add("filed")
        if report["self_handled"]:
            # Closure closes it on hearing of the filing, at the time it hears.
            self._reacted("closure", "the filing", case_id, lambda case: case["status"] == "closed")
            self.tally.add("self_handled")
            self.tally.add("closed")
            self.tally.add("closed_on_time")
            self._ended.add(case_id)
            return
        self.tally.open_cases[case_id] = None
        # Dispatch routes the case on hearing of the filing, and its deadline runs from then.
        self._reacted("dispatch", "the filing", case_id, lambda _case: True)
        place = self.city.cell(report["cell_id"]).place
        rule = self.city.route(category.code, place)
        if rule is None:
            self.tally.add("coordination")
            await self._wait(self._after(self._now(), category, "dispatch", fate.dispatch_delay))
            department = alternative_owner(self.city, place, exclude=None)
            await self._dispatch(case_id, department)
        else:
            department = rule.department_id
        inspector = self._inspectors[self.city.inspector_for(place.cell_id).id]
        deadline = await self._department(case_id, category, place, department, inspector, fate)
        del self.tally.open_cases[case_id]
        self._missed.discard(case_id)
        self._ended.add(case_id)
        self._ended_before(case_id, deadline)

    def _remember(self, number: int, case_id: str) -> None:
        self._cases[number] = case_id
        while len(self._cases) > _REMEMBERED:
            _, forgotten = self._cases.popitem(last=False)
            self._ended.discard(forgotten)

    async def _intake_knows_the_neighbours(self, arrival: Arrival) -> None:
        """Before a report that intake may take for the problem of earlier ones (its neighbours),
        let intake know what became of them: whether it is merged into one of their cases must
        depend on simulated time, not on how fast an event travelled.

        It takes its turn after the instant's other work, which may report, file or end one of
        them (the same order in every run), then waits until intake has heard of every end among
        them that the simulator knows of.
        """
        await self.scheduler.in_turn(arrival.number)
        ended = [case_id for n in arrival.neighbours if (case_id := self._cases.get(n)) in self._ended]
        lead = self._roles[Role.SHIFT_LEAD]
        await asyncio.gather(
            *(
                self.client.poll(
                    lead, "intake", f"/cases/{case_id}", lambda case: case["status"] in _ENDED, waiting_for="the end"
                )
                for case_id in ended
            )
        )

    async def _report(self, arrival: Arrival) -> dict[str, Any]:
        lon, lat = from_wgs84(arrival.lon, arrival.lat, Datum.GCJ02)  # what a phone or a map app sends
        body: dict[str, Any] = {
            "category_code": arrival.category_code,
            "description": f"simulated report {arrival.number}",
            "location": {"lon": lon, "lat": lat, "datum": Datum.GCJ02.value},
            "photos": [self.photo] if self.photo else [],
            "client_ref": f"sim-{self.run_tag}-{arrival.number}",
        }
        user: str | None
        if arrival.source is ReportSource.INSPECTOR:
            assert arrival.inspector_id is not None
            user, path = self._inspectors[arrival.inspector_id], "/reports"
            body["self_handled"] = arrival.fate.self_handled
        elif arrival.source is ReportSource.HOTLINE:
            user, path = self._roles[Role.HOTLINE], "/hotline/work-orders"
            body["external_ref"] = body.pop("client_ref")
        elif arrival.source is ReportSource.VIDEO:
            user, path = self._roles[Role.VIDEO], "/video/detections"
        else:
            user, path = None, "/public/reports"
        # The client_ref (external_ref) makes a report sent twice one report.
        report: dict[str, Any] = await self.client.call(
            user, "POST", "intake", path, retry_on=(), resendable=True, json=body
        )
        return report

    async def _decide(self, report: dict[str, Any], fate: Fate) -> bool:
        """The operator reviews a detection, or the cell's inspector verifies a citizen's report."""
        case_id = report["id"]
        if report["status"] == "awaiting_review":
            if fate.decided:
                await self.client.call(self._roles[Role.OPERATOR], "POST", "intake", f"/reports/{case_id}/file")
            else:
                reason = {"reason_code": "invalid", "reason": "a false detection"}
                await self.client.call(
                    self._roles[Role.OPERATOR], "POST", "intake", f"/reports/{case_id}/reject", json=reason
                )
            return fate.decided
        verifier = self._inspectors[report["verifier_id"]]
        answer = {"confirmed": fate.decided, "note": "seen on site" if fate.decided else "nothing there"}
        await self.client.call(verifier, "POST", "intake", f"/reports/{case_id}/verification", json=answer)
        return fate.decided

    async def _department(
        self, case_id: str, category: Category, place: GridPlace, department: str, inspector: str, fate: Fate
    ) -> datetime:
        """The department's side of the case, then the inspector's check; the deadline in force
        when it ended."""
        await self._wait(self._after(self._now(), category, "handling", fate.accept_delay))
        if fate.returned:
            department = await self._return_and_redispatch(case_id, category, place, department, fate)
        user = self._departments[department]
        task = await self.client.call(user, "POST", "handling", f"/cases/{case_id}/accept")
        self.tally.add("accepted")
        deadline = self._deadline(case_id, task["handling_deadline"])
        course = fate.course
        if course is Course.CANCELLED:
            await self._cancel(case_id, category, deadline, fate)
            return deadline
        if course is Course.SUSPENDED:
            deadline = await self._suspend_and_resume(case_id, category, deadline, fate)
        if course is Course.EXTENSION:
            deadline, course = await self._ask_for_time(user, case_id, category, deadline, fate)
        if course is Course.LATE:
            handled_at = self._after(deadline, category, "handling", fate.overrun)
        else:
            handled_at = self._share_of_left(category, deadline, fate.handle_at)
        await self._open_until(case_id, deadline, handled_at)
        await self._handle(user, case_id)
        if fate.rework:
            await self._open_until(case_id, deadline, self._check_time(category, deadline, fate.check_delay))
            await self._check(inspector, case_id, passed=False)
            await self._open_until(case_id, deadline, self._share_of_left(category, deadline, fate.rework_at))
            await self._handle(user, case_id, again=True)
        await self._open_until(case_id, deadline, self._check_time(category, deadline, fate.check_delay))
        await self._check(inspector, case_id, passed=True)
        return deadline

    async def _return_and_redispatch(
        self, case_id: str, category: Category, place: GridPlace, department: str, fate: Fate
    ) -> str:
        """The department sends the case back (回退); a dispatcher gives it to another one, whose
        id is answered once its user may sign for it."""
        user = self._departments[department]
        await self.client.call(
            user, "POST", "handling", f"/cases/{case_id}/return", json={"reason": "not ours to handle"}
        )
        self.tally.add("returned")
        await self._wait(self._after(self._now(), category, "dispatch", fate.dispatch_delay))
        await self._returned(case_id)
        department = alternative_owner(self.city, place, exclude=department)
        await self._dispatch(case_id, department)
        self.tally.add("redispatched")
        await self._wait(self._after(self._now(), category, "handling", fate.accept_delay))
        return department

    async def _cancel(self, case_id: str, category: Category, deadline: datetime, fate: Fate) -> None:
        await self._open_until(case_id, deadline, self._share_of_left(category, deadline, fate.course_at))
        reason = {"reason": "reported twice"}
        await self.client.call(self._roles[Role.SHIFT_LEAD], "POST", "closure", f"/cases/{case_id}/cancel", json=reason)
        self.tally.add("cancelled")

    async def _suspend_and_resume(self, case_id: str, category: Category, deadline: datetime, fate: Fate) -> datetime:
        """The shift lead suspends the case and resumes it after a pause; the deadline it resumes with."""
        await self._open_until(case_id, deadline, self._share_of_left(category, deadline, fate.course_at))
        lead = self._roles[Role.SHIFT_LEAD]
        await self.client.call(
            lead, "POST", "dispatch", f"/cases/{case_id}/suspend", json={"reason": "waiting for the budget"}
        )
        self.tally.add("suspended")
        await self._wait(self._after(self._now(), category, "handling", fate.pause))  # the clock stands still
        resumed = await self.client.call(lead, "POST", "dispatch", f"/cases/{case_id}/resume")
        self.tally.add("resumed")
        return self._deadline(case_id, resumed["handling_deadline"])

    async def _ask_for_time(
        self, user: str, case_id: str, category: Category, deadline: datetime, fate: Fate
    ) -> tuple[datetime, Course]:
        """The department asks for an extension; the deadline in force after the shift lead's
        answer, and the course the case takes from there."""
        await self._open_until(case_id, deadline, self._share_of_left(category, deadline, fate.course_at))
        wanted = self._after(deadline, category, "handling", fate.extension_extra)
        ask = {"requested_deadline": wanted.isoformat(), "reason": "the parts are on order"}
        await self.client.call(user, "POST", "handling", f"/cases/{case_id}/extension", json=ask)
        self.tally.add("extension_requested")
        await self._open_until(case_id, deadline, self._after(self._now(), category, "handling", fate.decision_delay))
        lead = self._roles[Role.SHIFT_LEAD]
        if fate.extension_approved:
            decided = await self.client.call(lead, "POST", "dispatch", f"/cases/{case_id}/extension/approve")
            self.tally.add("extension_approved")
            return self._deadline(case_id, decided["handling_deadline"]), Course.EXTENSION
        no = {"reason": "the deadline stands"}
        await self.client.call(lead, "POST", "dispatch", f"/cases/{case_id}/extension/deny", json=no)
        self.tally.add("extension_denied")
        return deadline, Course.LATE  # it asked for time because it needed it

    async def _dispatch(self, case_id: str, department: str) -> None:
        body = {"department_id": department}
        dispatched = await self.client.call(
            self._roles[Role.DISPATCHER], "POST", "dispatch", f"/cases/{case_id}/dispatch", json=body
        )
        self.tally.add("dispatched_by_hand")
        self._deadline(case_id, dispatched["handling_deadline"])

    async def _returned(self, case_id: str) -> None:
        """Wait until dispatch has the case back: re-dispatching earlier would move a case the
        department still holds instead of answering its return.
        """
        await self.client.poll(
            self._roles[Role.DISPATCHER],
            "dispatch",
            f"/cases/{case_id}",
            lambda case: case["status"] == "returned",
            waiting_for="the return",
        )

    async def _handle(self, user: str, case_id: str, *, again: bool = False) -> None:
        await self.client.call(
            user,
            "POST",
            "handling",
            f"/cases/{case_id}/report",
            data={"result": "done"},
            files=[("photos", ("after.png", PHOTO, "image/png"))],
        )
        self.tally.add("handled_again" if again else "handled")
        # Closure opens the check task on hearing of it, and the check's time limit runs from then:
        # it has heard when it knows of a handling at this time or later (the check may be over).
        handled = self._now()
        self._reacted(
            "closure",
            "the handling",
            case_id,
            lambda case: case["handled_at"] is not None and datetime.fromisoformat(case["handled_at"]) >= handled,
        )

    def _reacted(self, service: str, event: str, case_id: str, done: Callable[[dict[str, Any]], bool]) -> None:
        """Make sure ``service`` has reacted to what was just done to the case (``event``, as in
        "the filing") before time moves on.

        Services react to each other's events as they arrive and stamp their reaction with the
        clock's time then: were simulated time to move on meanwhile, dispatch would route a case
        filed at 17:50 at 17:55 in one run and at 17:50 in the next (its deadline with it), and
        closure would start a check's time limit a step late; the same seed would not make the
        same city. Checked from now on, alongside the rest of the step's work.
        """
        self.scheduler.meanwhile(self._confirmation(service, event, case_id, done, just_caused=True))

    def _confirmation(
        self, service: str, event: str, case_id: str, done: Callable[[dict[str, Any]], bool], *, just_caused: bool
    ) -> Script:
        """A script that waits until ``service``'s view of the case satisfies ``done`` (it has
        heard of ``event``, which the simulator ``just_caused`` or not)."""

        async def confirm() -> None:
            try:
                lead = self._roles[Role.SHIFT_LEAD]
                path = f"/cases/{case_id}"
                await self.client.poll(lead, service, path, done, waiting_for=event, just_caused=just_caused)
            except SimulationError as exc:
                self.tally.add("stuck")
                log.error("%s did not get there with case %s: %s", service, case_id, exc)

        return confirm

    async def _check(self, inspector: str, case_id: str, *, passed: bool) -> None:
        verdict = {"passed": passed, "note": "cleared" if passed else "still there"}
        checked = await self.client.call(inspector, "POST", "closure", f"/cases/{case_id}/check", json=verdict)
        if not passed:
            self.tally.add("check_failed")
            return
        self.tally.add("closed")
        if checked["on_time"]:
            self.tally.add("closed_on_time")

    def _ended_before(self, case_id: str, deadline: datetime) -> None:
        """Make sure dispatch has heard that a case ended before time passes its deadline (a case
        closed at the deadline's very instant is on time): its timer judges by what it knows, and a
        closure still on its way when the deadline passes would be reported missed. Simulated
        minutes go by in milliseconds here, so that would be common; in a city on real time the
        window is a few milliseconds wide.
        """
        if deadline >= self._now():
            ended = self._confirmation(
                "dispatch", "the end", case_id, lambda case: case["status"] in _ENDED, just_caused=False
            )
            self.scheduler.hold(deadline, ended)

    async def missed(self, case_id: str) -> None:
        """Wait until the deadline timer has reported the case's passed deadline missed (or the
        deadline is no longer passed: moved, stopped, or the case ended)."""

        def reported(case: dict[str, Any]) -> bool:
            return case["deadline_missed_at"] is not None or not deadline_passed(case, self._now())

        case = await self.client.poll(
            self._roles[Role.SHIFT_LEAD], "dispatch", f"/cases/{case_id}", reported, waiting_for="the deadline timer"
        )
        if case["deadline_missed_at"] is not None and case_id not in self._missed:
            self._missed.add(case_id)
            self.tally.add("deadline_missed")

    # --- time ---------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.client.clock.now()

    async def _wait(self, when: datetime) -> None:
        await self.scheduler.until(when)

    async def _open_until(self, case_id: str, deadline: datetime, when: datetime) -> None:
        """Wait until ``when`` with the case open; should its deadline pass first (or the step
        ``when`` falls in come after it), stop at the first step past it until the deadline timer
        has reported it missed, as it would have with time running at its pace.
        """
        if self._now() <= deadline:
            # Steps fall on a grid: the one ``when`` falls in may come after the deadline too.
            await self._wait(min(when, deadline + _INSTANT))
            if self._now() > deadline:
                await self.missed(case_id)
        await self._wait(when)

    def _deadline(self, case_id: str, value: str) -> datetime:
        deadline = datetime.fromisoformat(value)
        self.tally.open_cases[case_id] = deadline
        return deadline

    def _after(self, start: datetime, category: Category, limit: str, share: float) -> datetime:
        """``share`` of one of the category's limits after ``start``, in the category's time basis."""
        minutes = max(1, round(share * getattr(category, limit)))
        return self.calendar.add(start, TimeLimit(minutes, TimeBasis(category.time_basis)))

    def _share_of_left(self, category: Category, deadline: datetime, share: float) -> datetime:
        """``share`` of the time left until ``deadline``, from now."""
        now = self._now()
        left = self.calendar.elapsed(now, deadline, TimeBasis(category.time_basis))
        minutes = max(1, round(share * left / timedelta(minutes=1)))
        return self.calendar.add(now, TimeLimit(minutes, TimeBasis(category.time_basis)))

    def _check_time(self, category: Category, deadline: datetime, share: float) -> datetime:
        """When the inspector checks: within the check limit, and before the deadline when there is time."""
        now = self._now()
        left = self.calendar.elapsed(now, deadline, TimeBasis(category.time_basis)) / timedelta(minutes=1)
        window = min(category.check, left) if left >= 2 else category.check
        minutes = max(1, round(share * window))
        return self.calendar.add(now, TimeLimit(minutes, TimeBasis(category.time_basis)))
