"""The shift lead's dead letters in a running process (``/ops/dead-letters``, the readiness warning,
the gauge) and on the command line (``python -m services dead-letters``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import pytest

from services.runtime.app import create_app
from services.tools.cli import main
from shared.core.auth import Principal, Role, TokenIssuer
from shared.core.ids import new_id
from shared.core.settings import Mode, Settings
from shared.messaging.bus import Message, TopicSpec
from shared.messaging.bus.embedded import EmbeddedLog
from shared.messaging.consumer import DLQ_CONSUMER, DLQ_ORIGIN, DLQ_REASON, REDRIVE_FOR
from tests.backends.helpers import read_log
from tests.backends.test_service_app import serve, wait_ready

NOT_AN_EVENT = (("ce_specversion", b"1.0"), ("ce_type", b"case.filed"))


def bearer(tokens: TokenIssuer, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue_machine(Principal(f'{role.value}-1', role, 'Test'))}"}


async def test_a_shift_lead_lists_inspects_and_redrives_the_dead_letters_of_a_running_city(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path)
    app = create_app(["all"], settings)
    lead = bearer(app.state.token_issuer, Role.SHIFT_LEAD)
    async with serve(app) as client:
        assert "warnings" not in (await wait_ready(client)).json()
        await app.state.runtime.bus.publish([Message(settings.topic_case_events, b"case-1", b"no event", NOT_AN_EVENT)])
        # Every consumer of the case event log gives up on the record, each with a dead letter of its own.
        async with asyncio.timeout(30):
            while (listed := (await client.get("/ops/dead-letters", headers=lead)).json())["count"] < 5:
                await asyncio.sleep(0.1)
        letter = next(one for one in listed["dead_letters"] if one["consumer"] == "dispatch.lifecycle")
        assert letter["reason"].startswith("not a CloudEvent: missing header(s)")
        assert letter["origin"]["topic"] == settings.topic_case_events
        assert letter["event_type"] == "case.filed"
        assert letter["redrivable"] is True

        # A dead letter is an operator's task: readiness warns and stays ready.
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True
        assert "see GET /ops/dead-letters" in ready.json()["warnings"]["dead_letters"]
        assert 'citycase_dead_letters_pending{consumer="dispatch.lifecycle"} 1.0' in (await client.get("/metrics")).text

        shown = (await client.get(f"/ops/dead-letters/{letter['id']}", headers=lead)).json()
        assert shown["value"] == {"text": "no event", "encoding": "utf-8"}
        assert {"name": DLQ_CONSUMER, "value": {"text": "dispatch.lifecycle", "encoding": "utf-8"}} in shown["headers"]
        assert shown["redriven_at"] is None

        redriven = await client.post(f"/ops/dead-letters/{letter['id']}/redrive", headers=lead)
        assert redriven.status_code == 200
        assert [one["id"] for one in redriven.json()["redriven"]] == [letter["id"]]
        again = await client.post(f"/ops/dead-letters/{letter['id']}/redrive", headers=lead)
        assert again.status_code == 409
        assert again.json()["code"] == "dead_letter_already_redriven"
        pending = (await client.get("/ops/dead-letters?consumer=closure.lifecycle", headers=lead)).json()
        assert [one["consumer"] for one in pending["dead_letters"]] == ["closure.lifecycle"]
        everything = await client.post("/ops/dead-letters/redrive?consumer=closure.lifecycle", headers=lead)
        assert everything.json()["count"] == 1

        # Only the consumer each redrive is for reads it; the record is still no event, so it fails again.
        sent_again = {letter["id"], everything.json()["redriven"][0]["id"]}
        async with asyncio.timeout(30):
            while True:
                letters = (await client.get("/ops/dead-letters", headers=lead)).json()["dead_letters"]
                if {one["redrive_of"] for one in letters} - {None} == sent_again:
                    break
                await asyncio.sleep(0.1)
        assert sorted(one["consumer"] for one in letters) == [
            "assessment.indicators",
            "closure.lifecycle",
            "dispatch.lifecycle",
            "handling.lifecycle",
            "intake.case-file",
        ]


async def test_only_a_shift_lead_may_see_dead_letters_and_an_unknown_one_is_a_404(tmp_path: Path) -> None:
    app = create_app(["dispatch"], Settings(mode=Mode.EMBEDDED, data_dir=tmp_path))
    lead = bearer(app.state.token_issuer, Role.SHIFT_LEAD)
    unknown = new_id()
    async with serve(app) as client:
        await wait_ready(client)
        for role in (Role.DISPATCHER, Role.DEPARTMENT, Role.INSPECTOR):
            headers = bearer(app.state.token_issuer, role)
            assert (await client.get("/ops/dead-letters", headers=headers)).status_code == 403
            assert (await client.get(f"/ops/dead-letters/{unknown}", headers=headers)).status_code == 403
            assert (await client.post(f"/ops/dead-letters/{unknown}/redrive", headers=headers)).status_code == 403
            assert (await client.post("/ops/dead-letters/redrive", headers=headers)).status_code == 403
        assert (await client.get("/ops/dead-letters")).status_code == 401
        assert (await client.post("/ops/dead-letters/redrive")).status_code == 401

        for response in (
            await client.get(f"/ops/dead-letters/{unknown}", headers=lead),
            await client.post(f"/ops/dead-letters/{unknown}/redrive", headers=lead),
        ):
            assert response.status_code == 404
            assert response.json() == {
                "code": "dead_letter_not_found",
                "message": f"there is no dead letter {unknown}",
                "details": None,
            }
        assert (await client.get("/ops/dead-letters/not-an-id", headers=lead)).status_code == 422
        assert (await client.get("/ops/dead-letters", headers=lead)).json() == {"count": 0, "dead_letters": []}
        nothing = await client.post("/ops/dead-letters/redrive", headers=lead)
        assert nothing.json() == {"count": 0, "redriven": []}


async def test_the_command_line_lists_shows_and_redrives_dead_letters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYCASE_MODE", "embedded")
    monkeypatch.setenv("CITYCASE_DATA_DIR", str(tmp_path))
    settings = Settings()
    log = EmbeddedLog(settings.event_log_path)
    await log.start()
    await log.ensure_topics([TopicSpec(settings.topic_case_events, 2), TopicSpec(settings.topic_dead_letter, 1)])
    letters = [
        Message(
            settings.topic_dead_letter,
            f"case-{n}".encode(),
            f"record {n}".encode(),
            (
                *NOT_AN_EVENT,
                (DLQ_REASON, b"not a CloudEvent"),
                (DLQ_CONSUMER, consumer.encode()),
                (DLQ_ORIGIN, f"{settings.topic_case_events}/0/{n}".encode()),
            ),
        )
        for n, consumer in enumerate(["dispatch.lifecycle", "closure.lifecycle", "closure.lifecycle"])
    ]
    await log.publish(letters)
    held = await _run(capsys, "list")
    assert held[0] == 2  # the running city holds the embedded log
    assert "GET /ops/dead-letters" in held[2]
    await log.close()

    status, out, _ = await _run(capsys, "list")
    assert status == 0
    assert out.splitlines()[0] == "3 dead letter(s) pending"
    ids = [UUID(line.split()[0]) for line in out.splitlines() if "from citycase.case-events/0/" in line]
    assert len(ids) == 3
    status, out, _ = await _run(capsys, "list", "--consumer", "closure.lifecycle")
    assert out.splitlines()[0] == "2 dead letter(s) pending"

    status, out, _ = await _run(capsys, "show", str(ids[0]))
    assert status == 0
    assert "header dlq_reason: not a CloudEvent (utf-8)" in out
    assert out.endswith("value (utf-8):\nrecord 0\n")

    assert (await _run(capsys, "redrive", str(ids[0])))[0] == 0
    status, _, err = await _run(capsys, "redrive", str(ids[0]))
    assert status == 1
    assert "redriven already" in err
    status, out, _ = await _run(capsys, "redrive", "--all", "--consumer", "closure.lifecycle")
    assert out.splitlines()[0] == "2 dead letter(s) sent again"
    assert (await _run(capsys, "list"))[1].splitlines()[0] == "0 dead letter(s) pending"
    status, _, err = await _run(capsys, "show", str(new_id()))
    assert status == 1
    assert "there is no dead letter" in err

    await log.start()
    try:
        redriven = await read_log(log, settings.topic_case_events, lambda seen: len(seen) >= 3)
    finally:
        await log.close()
    assert sorted((record.value, record.header(REDRIVE_FOR)) for record in redriven) == [
        (b"record 0", b"dispatch.lifecycle"),
        (b"record 1", b"closure.lifecycle"),
        (b"record 2", b"closure.lifecycle"),
    ]


async def _run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    """``python -m services dead-letters ARGUMENTS`` in a thread (it runs its own event loop)."""
    status = await asyncio.to_thread(main, ["dead-letters", *arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err
