"""Which refresh tokens are still good: log-in sessions kept as files in a folder that every process
of the city shares (as they share the photo folder).

A refresh token is used once: using it swaps it for a new one, and a token used a second time
means someone else holds a copy, so its whole session ends (the thief's copy and the owner's).
That needs one state every process agrees on, at once: a per-process memory would let a copy be
used once on each process. The services share no database (each owns its schema, and a process
runs only some of them), but they share a folder already, and the file system gives the two
atomic steps this needs: removing a file succeeds for exactly one of two racing processes, and
renaming a folder takes a whole session away in one step. A session is a folder named for its
end and a random id; its one file is the id of the refresh token that may be used next.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from datetime import datetime
from pathlib import Path

_SESSION = re.compile(r"^(\d{1,12})-[0-9a-f]{32}$")
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
# Folders of ended sessions are renamed with this prefix before they are deleted.
_ENDED = ".ended-"


class SessionStore:
    """Log-in sessions and the one refresh token each may use next, as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, ends_at: datetime) -> tuple[str, str]:
        """A new session lasting until ``ends_at``: its id and its first refresh token's id."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        session = f"{int(ends_at.timestamp())}-{secrets.token_hex(16)}"
        (self.root / session).mkdir(mode=0o700)
        token = secrets.token_hex(16)
        _create(self.root / session / token)
        return session, token

    def rotate(self, session: str, token: str) -> str | None:
        """Use refresh token ``token`` of ``session``: the id of the token that replaces it, or
        None when it was used before, or its session has ended. A second use ends the session."""
        if not (_SESSION.match(session) and _TOKEN.match(token)):
            return None
        folder = self.root / session
        try:
            (folder / token).unlink()
        except FileNotFoundError:
            self.end(session)
            return None
        replacement = secrets.token_hex(16)
        try:
            _create(folder / replacement)
        except FileNotFoundError:
            return None  # the session ended between the two steps
        return replacement

    def end(self, session: str) -> None:
        """End ``session``: none of its refresh tokens is good any more (log-out, theft)."""
        if not _SESSION.match(session):
            return
        # One rename takes the folder away, so a rotation racing with it cannot leave a token behind.
        ended = self.root / f"{_ENDED}{session}-{secrets.token_hex(4)}"
        try:
            (self.root / session).rename(ended)
        except FileNotFoundError:
            return
        shutil.rmtree(ended, ignore_errors=True)

    def sweep(self, now: datetime) -> None:
        """Delete the sessions that ended before ``now`` (and what an interrupted end left)."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name.startswith(_ENDED):
                shutil.rmtree(entry.path, ignore_errors=True)
            elif (match := _SESSION.match(entry.name)) and int(match.group(1)) < now.timestamp():
                self.end(entry.name)


def _create(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
