"""Tokens a forger or a thief gets little from: access tokens short-lived and good only while the
account is in the directory as it was; refresh tokens good once each, in sessions every process
of the city agrees on; machine tokens for the operators' tools that hold the secret."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from pwdlib import PasswordHash

from shared.core.auth import Account, Directory, InvalidToken, Principal, Role, Sessions, TokenIssuer
from shared.core.clock import SimulatedClock
from shared.core.sessions import SessionStore

START = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)
SECRET = "a-secret-of-forty-characters-for-the-tests"
STREET = Principal("dept-street", Role.DEPARTMENT, "Street office", department_id="dept-street")
LEAD = Principal("shiftlead", Role.SHIFT_LEAD, "Shift lead")
RECONCILE = Principal("reconcile", Role.SHIFT_LEAD, "batch recount")


def directory(*principals: Principal) -> Directory:
    return Directory(Account(principal, password=f"pw-{principal.username}") for principal in principals)


def issuer(clock: SimulatedClock, accounts: Directory | None = None) -> TokenIssuer:
    return TokenIssuer(SECRET, clock, timedelta(minutes=15), directory=accounts)


def sessions(tmp_path: Path, clock: SimulatedClock, accounts: Directory) -> Sessions:
    return Sessions(accounts, issuer(clock, accounts), SessionStore(tmp_path), clock, timedelta(hours=12))


def test_an_access_token_is_good_while_its_account_is_in_the_directory_as_it_was() -> None:
    clock = SimulatedClock(START)
    token = issuer(clock, directory(STREET)).issue_access(STREET)
    assert issuer(clock, directory(STREET)).verify(token) == STREET
    # The same token, checked by a process whose directory no longer has the account, or has it
    # with another role, department or inspector: refused.
    moved = Principal("dept-street", Role.DEPARTMENT, "Street office", department_id="dept-power")
    promoted = Principal("dept-street", Role.SHIFT_LEAD, "Street office")
    for accounts in (directory(LEAD), directory(moved), directory(promoted), None):
        with pytest.raises(InvalidToken):
            issuer(clock, accounts).verify(token)
    # A new display name is not a move: the directory's current principal is the caller.
    renamed = Principal("dept-street", Role.DEPARTMENT, "Street office (east)", department_id="dept-street")
    assert issuer(clock, directory(renamed)).verify(token) == renamed


def test_an_access_token_expires_with_the_clock_it_was_issued_on() -> None:
    clock = SimulatedClock(START)
    tokens = issuer(clock, directory(STREET))
    token = tokens.issue_access(STREET)
    clock.advance(timedelta(minutes=14))
    assert tokens.verify(token) == STREET
    clock.advance(timedelta(minutes=2))
    with pytest.raises(InvalidToken):
        tokens.verify(token)


def test_a_machine_token_is_good_without_a_directory_entry_and_a_refresh_token_is_no_bearer() -> None:
    clock = SimulatedClock(START)
    tools = TokenIssuer(SECRET, clock, timedelta(hours=1))
    server = issuer(clock, directory(STREET))
    assert server.verify(tools.issue_machine(RECONCILE)) == RECONCILE
    refresh = server.issue_refresh(STREET, f"{int(START.timestamp())}-{'0' * 32}", "1" * 32, START + timedelta(hours=1))
    with pytest.raises(InvalidToken):
        server.verify(refresh)
    with pytest.raises(InvalidToken):
        server.verify_refresh(server.issue_access(STREET))
    # A token of the kind before there were kinds (the 12-hour tokens), or with a kind of its own,
    # is refused even with a good signature.
    for kind in (None, "admin"):
        claims = {"iss": "citycase", "sub": "reconcile", "role": "shift_lead", "exp": int(START.timestamp()) + 60}
        with pytest.raises(InvalidToken):
            server.verify(jwt.encode({**claims, **({"kind": kind} if kind else {})}, SECRET, algorithm="HS256"))


def test_an_unknown_name_costs_a_password_check_too(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = PasswordHash.recommended()
    accounts = Directory([Account(LEAD, password_hash=hasher.hash("a long and private passphrase"))])
    checked: list[str] = []
    verify = PasswordHash.verify

    def counting(self: PasswordHash, password: str, hash: str) -> bool:
        checked.append(password)
        return verify(self, password, hash)

    monkeypatch.setattr(PasswordHash, "verify", counting)
    assert accounts.authenticate("nobody", "a guess") is None
    assert accounts.authenticate("shiftlead", "a long and private passphrase") == LEAD
    assert checked == ["a guess", "a long and private passphrase"]


def test_a_refresh_token_is_good_once_and_a_second_use_ends_its_session(tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    login = sessions(tmp_path, clock, directory(STREET))
    first = login.log_in("dept-street", "pw-dept-street")
    assert first is not None
    assert login.log_in("dept-street", "a guess") is None
    second = login.refresh(first.refresh_token)
    assert second.principal == STREET
    assert issuer(clock, directory(STREET)).verify(second.access_token) == STREET
    with pytest.raises(InvalidToken):
        login.refresh(first.refresh_token)  # a copy used after the owner: someone else holds it
    with pytest.raises(InvalidToken):
        login.refresh(second.refresh_token)  # so the owner's is ended too
    # Another session of the same user is untouched.
    other = login.log_in("dept-street", "pw-dept-street")
    assert other is not None
    assert login.refresh(other.refresh_token).principal == STREET


def test_logging_out_ends_the_session_and_a_session_ends_a_shift_after_the_log_in(tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    login = sessions(tmp_path, clock, directory(STREET))
    ended = login.log_in("dept-street", "pw-dept-street")
    kept = login.log_in("dept-street", "pw-dept-street")
    assert ended is not None
    assert kept is not None
    login.log_out(ended.refresh_token)
    login.log_out("not a token")
    with pytest.raises(InvalidToken):
        login.refresh(ended.refresh_token)
    # Refreshing does not stretch the session: it ends 12 hours after the log-in.
    clock.advance(timedelta(hours=11))
    kept = login.refresh(kept.refresh_token)
    assert kept.refresh_expires_in == timedelta(hours=1)
    clock.advance(timedelta(hours=1, seconds=1))
    with pytest.raises(InvalidToken):
        login.refresh(kept.refresh_token)


def test_a_removed_or_moved_user_cannot_refresh(tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    grant = sessions(tmp_path, clock, directory(STREET)).log_in("dept-street", "pw-dept-street")
    assert grant is not None
    moved = Principal("dept-street", Role.DEPARTMENT, "Street office", department_id="dept-power")
    for accounts in (directory(LEAD), directory(moved)):
        with pytest.raises(InvalidToken):
            sessions(tmp_path, clock, accounts).refresh(grant.refresh_token)
    # Refused with the session ended, not merely this once.
    with pytest.raises(InvalidToken):
        sessions(tmp_path, clock, directory(STREET)).refresh(grant.refresh_token)


def test_the_store_refuses_ids_that_are_not_its_own(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    session, token = store.open(START + timedelta(hours=1))
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / token).touch()
    for forged in ("../outside", f"{session}/..", ""):
        assert store.rotate(forged, token) is None
    assert (tmp_path / "outside" / token).exists()
    assert store.rotate(session, "../../outside/" + token) is None
    assert store.rotate(session, token) is not None


def test_sweeping_deletes_the_sessions_that_have_ended(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    old, _ = store.open(START + timedelta(hours=1))
    new, token = store.open(START + timedelta(hours=3))
    store.sweep(START + timedelta(hours=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [new]
    assert store.rotate(new, token) is not None
    assert old != new


def _rotate(folder: str, session: str, token: str) -> str | None:
    return SessionStore(Path(folder)).rotate(session, token)


def test_processes_racing_with_one_refresh_token_let_one_use_it_at_most(tmp_path: Path) -> None:
    session, token = SessionStore(tmp_path).open(START + timedelta(hours=1))
    with ProcessPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(_rotate, [str(tmp_path)] * 8, [session] * 8, [token] * 8))
    assert sum(answer is not None for answer in answers) <= 1
    # The others, finding the token used, ended the session: a replacement is no good either.
    assert list(tmp_path.iterdir()) == []
    for answer in answers:
        assert answer is None or SessionStore(tmp_path).rotate(session, answer) is None
