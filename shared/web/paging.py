"""Lists in keyset pages over HTTP (``shared.db.keyset``): the ``after`` a request gives read as a
position, and the address of the next page in an RFC 8288 ``Link`` header.

The body stays the list itself, so a client that knows nothing of pages reads the first page as
before; one that wants the rest follows ``rel="next"`` until an answer has none. The next page's
address is the request's own with ``after`` set, every other parameter (a status, a limit) kept,
so the client needs to know nothing of how the list is ordered or what the token holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from sqlalchemy.engine import RowMapping

from shared.db.keyset import Page, Position

# The most rows one page of a work list holds, whatever a request asks for.
MOST_PER_PAGE = 500


async def _after(
    after: Annotated[
        str | None,
        Query(max_length=200, description='the page after this one: follow the answer\'s `Link: <…>; rel="next"`'),
    ] = None,
) -> Position | None:
    return None if after is None else Position.of_token(after, "after")


# A route's ``after`` parameter, read as the position a page ended at (422 naming ``after`` when
# the token is not one).
PageAfter = Annotated[Position | None, Depends(_after)]

# The ``Link`` header of a paged route, for its OpenAPI description.
NEXT_PAGE_LINK: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Link": {
                "description": 'RFC 8288: `<url>; rel="next"`, the next page, when there is one',
                "schema": {"type": "string"},
            }
        }
    }
}


def paged(request: Request, response: Response, page: Page) -> Sequence[RowMapping]:
    """The rows of ``page``, with the next page's address in ``response``'s ``Link`` header when
    one follows."""
    if page.following is not None:
        following = request.url.include_query_params(after=page.following.token())
        response.headers["Link"] = f'<{following}>; rel="next"'
    return page.rows
