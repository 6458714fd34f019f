"""The report back (处置反馈) over HTTP with its photos: as files (the phone app), as the digests
of photos uploaded before (the console, which uploads each to show it), or both; a digest of no
photo uploaded, a malformed one, or too many photos refused, with nothing stored or changed."""

from __future__ import annotations

import hashlib
import io
from typing import Any
from uuid import UUID

import httpx
from PIL import Image

from handling import handlers
from handling.models import cases
from shared.events.catalogue import CaseHandled
from tests.service.conftest import ServiceUnderTest
from tests.service.handling.conftest import DEPARTMENT, dispatched_case, staff
from tests.service.http import served

USER = staff()


def photo(red: int) -> bytes:
    """A small PNG that decodes in full (every upload is checked), one per ``red``."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (red, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def accepted_case(handling: ServiceUnderTest) -> UUID:
    case_id = await dispatched_case(handling)
    await handlers.accept(handling.ctx, USER, case_id)
    await handling.emitted()
    return case_id


async def upload(client: httpx.AsyncClient, *photos: bytes) -> list[str]:
    """The photos uploaded as the console uploads them, to show them; their digests."""
    files = [("files", (f"{n}.png", data, "image/png")) for n, data in enumerate(photos)]
    answer = await client.post("/handling/photos", files=files)
    assert answer.status_code == 201, answer.text
    return [stored["digest"] for stored in answer.json()]


async def report(
    client: httpx.AsyncClient, case_id: UUID, digests: list[str], files: list[bytes] | None = None
) -> httpx.Response:
    data: dict[str, Any] = {"result": "cover replaced", "photo": digests}
    sent = [("photos", (f"{n}.png", content, "image/png")) for n, content in enumerate(files or [])]
    return await client.post(f"/handling/cases/{case_id}/report", data=data, files=sent or None)


async def test_photos_uploaded_before_are_named_by_their_digests(handling: ServiceUnderTest) -> None:
    case_id = await accepted_case(handling)
    async with served(handling, USER) as client:
        digests = await upload(client, photo(1), photo(2))
        answer = await report(client, case_id, digests)

    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["result_photos"]) == ("handled", digests)
    assert (await handling.row(cases, case_id))["result_photos"] == digests
    assert await handling.payloads() == [
        CaseHandled(department_id=DEPARTMENT, handled_by=USER.username, result="cover replaced", photos=digests)
    ]


async def test_files_still_come_with_the_report_alone_or_beside_digests(handling: ServiceUnderTest) -> None:
    alone, beside = await accepted_case(handling), await accepted_case(handling)
    async with served(handling, USER) as client:
        answer = await report(client, alone, [], [photo(3)])
        assert answer.status_code == 200, answer.text
        assert answer.json()["result_photos"] == [digest(photo(3))]
        (uploaded,) = await upload(client, photo(4))
        answer = await report(client, beside, [uploaded], [photo(5)])

    assert answer.status_code == 200, answer.text
    assert answer.json()["result_photos"] == [uploaded, digest(photo(5))]  # the digests first, then the files
    assert await handling.ctx.photos.exists(digest(photo(5)))


async def refused_leaving_nothing(
    handling: ServiceUnderTest, case_id: UUID, answer: httpx.Response, status: int, files: list[bytes]
) -> dict[str, Any]:
    """The report was refused with ``status``; the task is as it was, nothing emitted, none of
    ``files`` stored; the error's body."""
    assert answer.status_code == status, answer.text
    row = await handling.row(cases, case_id)
    assert (row["status"], row["result"], row["result_photos"]) == ("accepted", None, None)
    assert await handling.payloads() == []
    for data in files:
        assert not await handling.ctx.photos.exists(digest(data))
    body: dict[str, Any] = answer.json()
    return body


async def test_a_digest_of_no_photo_uploaded_is_refused(handling: ServiceUnderTest) -> None:
    case_id = await accepted_case(handling)
    never = digest(b"never uploaded")
    async with served(handling, USER) as client:
        (known,) = await upload(client, photo(6))
        answer = await report(client, case_id, [known, never], [photo(7)])

    body = await refused_leaving_nothing(handling, case_id, answer, 422, [photo(7)])
    assert body["details"] == {"missing_photos": [never]}


async def test_a_malformed_digest_is_refused_saying_what_a_digest_is(handling: ServiceUnderTest) -> None:
    case_id = await accepted_case(handling)
    async with served(handling, USER) as client:
        (known,) = await upload(client, photo(8))
        answer = await report(client, case_id, [known, "photo-1.jpg"])

    body = await refused_leaving_nothing(handling, case_id, answer, 422, [])
    (error,) = body["details"]
    assert error["loc"] == ["body", "photo", 1]
    assert "64 lowercase hex digits" in error["msg"]


async def test_more_photos_than_a_report_takes_are_refused_files_and_digests_together(
    handling: ServiceUnderTest,
) -> None:
    case_id = await accepted_case(handling)
    most = handling.ctx.settings.max_photos
    files = [photo(10 + n) for n in range(most // 2 + 1)]
    async with served(handling, USER) as client:
        digests = await upload(client, *[photo(100 + n) for n in range(most // 2 + 1)])
        too_many_digests = await report(client, case_id, [*digests, *digests])
        too_many_in_all = await report(client, case_id, digests, files)

    for answer in (too_many_digests, too_many_in_all):
        body = await refused_leaving_nothing(handling, case_id, answer, 413, files)
        assert str(most) in body["message"]
