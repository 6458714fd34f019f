"""The city's ``integrations.yaml``: the hotlines that push us work orders and callbacks, the
departments with systems of their own, and for each where and how we send, and how we verify
what they send us.

An optional file of the city folder, read once per process beside the city (absent: no
integrations). Secrets are never written in a real city's file: each is ``{id, env: VARIABLE}``;
``{id, value: ...}`` is for the demo and tests. The file is checked whole at start, and a mistake
stops the process with every problem listed, each naming the file and the field (never a secret's
value)::

    retry:                      # defaults for every endpoint; an endpoint's own retry overrides keys
      max_age_hours: 48         # give up on a message after this long of trying (the default bound)
      # max_attempts: 20        # ... or after this many attempts (none by default)
      first_delay_seconds: 5
      max_delay_seconds: 1800
      timeout_seconds: 10
    hotlines:
      - id: "12345"             # the path segment: POST /intake/hotline/12345/work-orders
        name: 12345政务服务便民热线
        account: hotline        # optional: a bearer-token account that pushes as this hotline
        reopen_on_unsatisfied: true
        inbound: {scheme: standard-webhooks, secrets: [{id: 2026a, env: CITYCASE_HOTLINE_12345}]}
        outbound: {url: https://..., scheme: app-key, algorithm: hmac-sm3, app_key: ..., secrets: [...]}
    departments:
      - department_id: dept-water
        outbound: {url: https://..., scheme: standard-webhooks, secrets: [...]}

Endpoints are named ``hotline:<id>`` and ``department:<id>`` everywhere (rows, metrics, the CLI).

The secrets named by ``env`` are read from the environment where something signs or verifies with
them, not when the file is loaded: every process of the city reads the file (closure needs a
hotline's ``reopen_on_unsatisfied``), only intake signs and verifies. Intake reads them all when it
starts (:meth:`Integrations.resolve_secrets`) and refuses to start without one; a process of
another service starts without them.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, model_validator

from shared.city.model import City
from shared.core.auth import Role
from shared.integration.signing import (
    Algorithm,
    Scheme,
    Secret,
    Signer,
    UnknownHotline,
    Verifier,
    sm3_available,
    webhook_secret_bytes,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

INTEGRATIONS_FILE = "integrations.yaml"
# An app-key secret is a shared password: shorter ones fall to guessing offline from one request.
MIN_APP_SECRET_LENGTH = 16
# A hotline id is a path segment of its routes: letters, digits, ``-`` and ``_`` only (no dots,
# so never ``.`` or ``..``; nothing a URL would have to escape).
HOTLINE_ID_PATTERN = r"^[0-9A-Za-z_-]{1,32}$"

_Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.-]+$")]


class IntegrationsError(ValueError):
    """The integrations file is wrong; ``problems`` names the field of each mistake."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__(f"{path} is invalid:\n  " + "\n  ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Strict):
    """How long we keep trying to deliver to an endpoint: exponential backoff from
    ``first_delay_seconds``, doubling up to ``max_delay_seconds``, until ``max_age_hours`` after its
    first attempt or (when set) ``max_attempts``, each attempt given ``timeout_seconds``.

    The age is the bound by default and attempts are unlimited: what DOMAIN.md promises is that
    nothing is lost while the other side is down for hours, and a count of attempts with doubling
    waits runs out in an hour or two whatever the outage. The age counts from the first attempt,
    not from when the message was made: a message waiting its turn behind an earlier one of its
    case (or behind a dead letter until a redrive) has not been tried yet, and a redriven message
    starts a new age."""

    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    max_age_hours: float | None = Field(default=48.0, gt=0)
    first_delay_seconds: float = Field(default=5.0, gt=0)
    max_delay_seconds: float = Field(default=1800.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _delays_grow(self) -> Self:
        if self.max_delay_seconds < self.first_delay_seconds:
            raise ValueError("max_delay_seconds is less than first_delay_seconds")
        return self

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.max_age_hours is None and self.max_attempts is None:
            raise ValueError(
                "a retry policy needs max_age_hours or max_attempts: without either, a message the endpoint"
                " always refuses is tried forever and its case's later messages wait forever behind it"
            )
        return self

    def ceiling(self, failed_attempts: int) -> float:
        """The longest wait, in seconds, after ``failed_attempts`` failures: ``first_delay *
        2**(n-1)`` capped at ``max_delay`` (the exponent is capped too: with unlimited attempts
        ``n`` grows past what a float holds)."""
        exponent = min(failed_attempts - 1, 64)
        return min(self.max_delay_seconds, self.first_delay_seconds * 2.0**exponent)

    def longest_tries(self) -> timedelta | None:
        """The longest ``max_attempts`` attempts can last from the first to the last, each taking
        its whole timeout and each wait its ceiling; None when attempts are unlimited."""
        if self.max_attempts is None:
            return None
        waits = sum(self.ceiling(n) for n in range(1, self.max_attempts))
        return timedelta(seconds=waits + (self.max_attempts - 1) * self.timeout_seconds)


class _RetryOverride(_Strict):
    """An endpoint's own retry keys, each overriding the file's default (``max_attempts: null``
    too: unlimited attempts where the file's default sets a number)."""

    max_attempts: int | None = None
    max_age_hours: float | None = None
    first_delay_seconds: float | None = None
    max_delay_seconds: float | None = None
    timeout_seconds: float | None = None


class _SecretIn(_Strict):
    id: _Id
    env: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str | None = Field(default=None, min_length=1, repr=False)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.env is None) == (self.value is None):
            raise ValueError("a secret has either env (the variable that holds it) or value (demo and tests only)")
        return self


class _Signing(_Strict):
    """How one side signs: the scheme, and for app-key its algorithm and app key."""

    scheme: Scheme = Scheme.STANDARD_WEBHOOKS
    algorithm: Algorithm | None = None
    app_key: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _app_key_fields(self) -> Self:
        if self.scheme is Scheme.APP_KEY and self.app_key is None:
            raise ValueError("the app-key scheme needs app_key")
        if self.scheme is Scheme.STANDARD_WEBHOOKS and (self.algorithm is not None or self.app_key is not None):
            raise ValueError("algorithm and app_key belong to the app-key scheme (standard-webhooks is HMAC-SHA256)")
        return self


class _InboundIn(_Signing):
    # Two at once at most: the old and the new during a rotation.
    secrets: list[_SecretIn] = Field(min_length=1, max_length=2)


class _OutboundIn(_Signing):
    # No URL: nothing is sent to this endpoint (the rest may stay, to switch it on by adding one).
    url: HttpUrl | None = None
    secrets: list[_SecretIn] = Field(default_factory=list, max_length=2)
    retry: _RetryOverride | None = None

    @model_validator(mode="after")
    def _signs_what_it_sends(self) -> Self:
        if self.url is not None and not self.secrets:
            raise ValueError("an outbound url needs a secret to sign with")
        return self


class _HotlineIn(_Strict):
    id: str = Field(pattern=HOTLINE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    account: str | None = Field(default=None, min_length=1)
    # The city's rule for an unsatisfied callback (回访不满意): rework only where it says so.
    reopen_on_unsatisfied: bool = False
    inbound: _InboundIn
    outbound: _OutboundIn | None = None


class _DepartmentIn(_Strict):
    department_id: _Id
    outbound: _OutboundIn


class _FileIn(_Strict):
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    hotlines: list[_HotlineIn] = Field(default_factory=list)
    departments: list[_DepartmentIn] = Field(default_factory=list)


def _made_once(made: T | Callable[[], T]) -> Callable[[], T]:
    """What makes a verifier or signer the first time it is needed (its secrets read from the
    environment then), or the one given."""
    if callable(made):
        return functools.cache(made)
    return lambda: made


@dataclass(frozen=True, init=False)
class Endpoint:
    """Where and how we send to one other system: ``hotline:<id>`` or ``department:<id>``. Its
    signer is made the first time it signs (or the secrets are resolved)."""

    name: str
    url: str
    retry: RetryPolicy
    _signer: Callable[[], Signer] = field(repr=False, compare=False)

    def __init__(self, name: str, url: str, signer: Signer | Callable[[], Signer], retry: RetryPolicy) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "retry", retry)
        object.__setattr__(self, "_signer", _made_once(signer))

    @property
    def signer(self) -> Signer:
        """How we sign for this endpoint; :class:`IntegrationsError` if its secret is not set."""
        return self._signer()


@dataclass(frozen=True, init=False)
class Hotline:
    """A hotline (12345, 12319): how it signs what it pushes us, the city's rule for its
    unsatisfied callbacks, and where we send its receipts, status and replies (``None``: nowhere).
    Its verifier is made the first time it verifies (or the secrets are resolved)."""

    id: str
    name: str
    reopen_on_unsatisfied: bool
    account: str | None
    outbound: Endpoint | None
    _verifier: Callable[[], Verifier] = field(repr=False, compare=False)

    def __init__(
        self,
        id: str,
        name: str,
        verifier: Verifier | Callable[[], Verifier],
        reopen_on_unsatisfied: bool,
        account: str | None = None,
        outbound: Endpoint | None = None,
    ) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "reopen_on_unsatisfied", reopen_on_unsatisfied)
        object.__setattr__(self, "account", account)
        object.__setattr__(self, "outbound", outbound)
        object.__setattr__(self, "_verifier", _made_once(verifier))

    @property
    def verifier(self) -> Verifier:
        """How this hotline's requests are checked; :class:`IntegrationsError` if a secret is not set."""
        return self._verifier()


def hotline_endpoint(hotline_id: str) -> str:
    """The endpoint name of a hotline."""
    return f"hotline:{hotline_id}"


def department_endpoint(department_id: str) -> str:
    """The endpoint name of a department's system."""
    return f"department:{department_id}"


class Integrations:
    """The city's integrations, checked: hotlines by id and by account, and every outbound endpoint."""

    def __init__(
        self,
        hotlines: tuple[Hotline, ...] = (),
        departments: tuple[Endpoint, ...] = (),
        written_secrets: tuple[str, ...] = (),
    ) -> None:
        self.hotlines = hotlines
        # Where the file gives a secret's ``value`` rather than its ``env``: production refuses
        # them (the demo's are public) unless told it runs a demonstration.
        self.written_secrets = written_secrets
        self._hotlines = {hotline.id: hotline for hotline in hotlines}
        self._by_account = {hotline.account: hotline for hotline in hotlines if hotline.account is not None}
        self._departments = {endpoint.name: endpoint for endpoint in departments}
        outbound = [hotline.outbound for hotline in hotlines if hotline.outbound is not None]
        self.endpoints: tuple[Endpoint, ...] = (*outbound, *departments)
        self._endpoints = {endpoint.name: endpoint for endpoint in self.endpoints}

    @classmethod
    def none(cls) -> Integrations:
        """No hotline, no department system: a city without ``integrations.yaml``."""
        return cls()

    def hotline(self, hotline_id: str) -> Hotline:
        """The hotline with this id; :class:`UnknownHotline` (a 401) when none is configured."""
        try:
            return self._hotlines[hotline_id]
        except KeyError:
            raise UnknownHotline("no hotline with this id is configured", {"hotline_id": hotline_id}) from None

    def hotline_of_account(self, username: str) -> Hotline | None:
        """The hotline an account pushes as, when the file names it (``account``)."""
        return self._by_account.get(username)

    def department(self, department_id: str) -> Endpoint | None:
        """The outbound endpoint of a department's own system, if it has one."""
        return self._departments.get(department_endpoint(department_id))

    def endpoint(self, name: str) -> Endpoint:
        """The outbound endpoint ``hotline:<id>`` or ``department:<id>`` (``KeyError`` if none)."""
        return self._endpoints[name]

    def resolve_secrets(self) -> None:
        """Read every secret, and make every verifier and signer, now: what intake does when it
        starts, so that a secret missing from its environment stops it there rather than failing
        a request. Raises :class:`IntegrationsError` listing every secret missing or malformed."""
        problems: list[str] = []
        path: Path | None = None
        makers: list[Callable[[], object]] = [hotline._verifier for hotline in self.hotlines]
        makers += [endpoint._signer for endpoint in self.endpoints]
        for make in makers:
            try:
                make()
            except IntegrationsError as exc:
                path = exc.path
                problems += exc.problems
        if path is not None:
            raise IntegrationsError(path, problems)


def load_integrations(city_dir: Path, city: City, environ: Mapping[str, str] | None = None) -> Integrations:
    """The integrations of the city in ``city_dir``, checked against ``city``; none without the file.

    Secrets given as ``env`` are read from ``environ`` (the process's environment by default) when
    first needed (:meth:`Integrations.resolve_secrets`). Raises :class:`IntegrationsError` listing
    every problem; logs a warning for a retry policy whose attempts run out long before its age.
    """
    path = city_dir / INTEGRATIONS_FILE
    if not path.is_file():
        return Integrations.none()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise IntegrationsError(path, [f"not readable YAML: {exc}"]) from None
    if raw is None:
        return Integrations.none()
    if not isinstance(raw, dict):
        raise IntegrationsError(path, ["the file holds a mapping (retry, hotlines, departments)"])
    try:
        parsed = _FileIn.model_validate(raw)
    except ValidationError as exc:
        raise IntegrationsError(path, [_problem(error) for error in exc.errors()]) from None
    return _Checker(path, city, os.environ if environ is None else environ).integrations(parsed)


def _problem(error: Any, within: str = "") -> str:
    # The message only: pydantic's ``input`` could be a secret's value.
    where = ".".join([*filter(None, [within]), *(str(p) if isinstance(p, str) else f"[{p}]" for p in error["loc"])])
    return f"{where.replace('.[', '[')}: {error['msg']}"


class _Checker:
    """What pydantic cannot check alone: the city's departments and accounts, the environment,
    unique ids, secrets that fit their scheme, SM3 in this OpenSSL."""

    def __init__(self, path: Path, city: City, environ: Mapping[str, str]) -> None:
        self.path = path
        self.city = city
        self.environ = environ
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.written_secrets: list[str] = []

    def integrations(self, parsed: _FileIn) -> Integrations:
        hotlines = tuple(self._hotline(f"hotlines[{n}]", h, parsed.retry) for n, h in enumerate(parsed.hotlines))
        departments = tuple(
            self._department(f"departments[{n}]", d, parsed.retry) for n, d in enumerate(parsed.departments)
        )
        self._unique("hotlines", "id", [h.id for h in parsed.hotlines])
        self._unique("hotlines", "account", [h.account for h in parsed.hotlines if h.account is not None])
        self._unique("departments", "department_id", [d.department_id for d in parsed.departments])
        if self.problems:
            raise IntegrationsError(self.path, self.problems)
        for warning in self.warnings:
            log.warning("%s: %s", self.path, warning)
        return Integrations(
            tuple(h for h in hotlines if h is not None),
            tuple(d for d in departments if d is not None),
            tuple(self.written_secrets),
        )

    def _hotline(self, where: str, hotline: _HotlineIn, retry: RetryPolicy) -> Hotline | None:
        if hotline.account is not None:
            self._check_account(f"{where}.account", hotline.account)
        self._check_reporter(f"{where}.id", hotline.id, hotline.account)
        verifier = self._verifier(f"{where}.inbound", hotline.inbound)
        outbound = (
            None
            if hotline.outbound is None
            else self._endpoint(f"{where}.outbound", hotline_endpoint(hotline.id), hotline.outbound, retry)
        )
        if verifier is None:
            return None
        return Hotline(
            id=hotline.id,
            name=hotline.name,
            verifier=verifier,
            reopen_on_unsatisfied=hotline.reopen_on_unsatisfied,
            account=hotline.account,
            outbound=outbound,
        )

    def _department(self, where: str, department: _DepartmentIn, retry: RetryPolicy) -> Endpoint | None:
        try:
            self.city.department(department.department_id)
        except KeyError:
            self.problems.append(
                f"{where}.department_id: {department.department_id!r} is not a department of departments.csv"
            )
        return self._endpoint(
            f"{where}.outbound", department_endpoint(department.department_id), department.outbound, retry
        )

    def _check_account(self, where: str, username: str) -> None:
        try:
            user = self.city.user(username)
        except KeyError:
            self.problems.append(f"{where}: {username!r} is not an account of users.yaml")
            return
        if user.role is not Role.HOTLINE:
            self.problems.append(f"{where}: {username!r} has role {user.role.value}, not hotline")

    def _check_reporter(self, where: str, hotline_id: str, account: str | None) -> None:
        """A signed work order's reporter is the hotline's id, and a report is shown to whoever
        reported it: an account or an inspector with that name would read the hotline's work
        orders (its own ``account`` may share it)."""
        if hotline_id != account:
            try:
                self.city.user(hotline_id)
                self.problems.append(f"{where}: {hotline_id!r} is the name of an account of users.yaml too")
            except KeyError:
                pass
        try:
            self.city.inspector(hotline_id)
            self.problems.append(f"{where}: {hotline_id!r} is the id of an inspector too")
        except KeyError:
            pass

    def _verifier(self, where: str, inbound: _InboundIn) -> Callable[[], Verifier] | None:
        secrets = self._secrets(where, inbound)
        if secrets is None:
            return None
        algorithm, app_key = inbound.algorithm or Algorithm.HMAC_SHA256, inbound.app_key or ""
        return lambda: Verifier(inbound.scheme, secrets(), algorithm, app_key)

    def _endpoint(self, where: str, name: str, outbound: _OutboundIn, retry: RetryPolicy) -> Endpoint | None:
        secrets = self._secrets(where, outbound)
        policy = self._retry(f"{where}.retry", retry, outbound.retry)
        if outbound.url is None or secrets is None or policy is None:
            return None
        self._check_bounds(f"{where}.retry", policy)
        algorithm, app_key = outbound.algorithm or Algorithm.HMAC_SHA256, outbound.app_key or ""
        return Endpoint(
            name=name,
            url=str(outbound.url),
            signer=lambda: Signer(outbound.scheme, secrets(), algorithm, app_key),
            retry=policy,
        )

    def _retry(self, where: str, defaults: RetryPolicy, override: _RetryOverride | None) -> RetryPolicy | None:
        if override is None:
            return defaults
        try:
            # The keys the endpoint gives, an explicit ``null`` too (``max_attempts: null``: unlimited).
            return RetryPolicy.model_validate({**defaults.model_dump(), **override.model_dump(exclude_unset=True)})
        except ValidationError as exc:
            self.problems += [_problem(error, where) for error in exc.errors()]
            return None

    def _check_bounds(self, where: str, policy: RetryPolicy) -> None:
        """Warn where ``max_attempts`` runs out before ``max_age_hours`` could: an outage longer
        than the attempts last sends every message of the endpoint to the dead letters. Not refused:
        a city may mean it (an endpoint it would rather hear about at once)."""
        longest = policy.longest_tries()
        if longest is None or policy.max_age_hours is None or longest >= timedelta(hours=policy.max_age_hours):
            return
        self.warnings.append(
            f"{where}: max_attempts {policy.max_attempts} gives up after {_hours(longest)} of trying at most,"
            f" long before max_age_hours {policy.max_age_hours:g}: an endpoint down longer than that has its"
            " messages dead-lettered (leave max_attempts out to retry for the whole age)"
        )

    def _secrets(self, where: str, signing: _InboundIn | _OutboundIn) -> Callable[[], tuple[Secret, ...]] | None:
        """What reads the secrets when they are first needed; None when one is wrong already in the
        file. Those written in it are checked now, those in the environment when read."""
        if signing.algorithm is Algorithm.HMAC_SM3 and not sm3_available():
            self.problems.append(
                f"{where}.algorithm: hmac-sm3, but this Python's OpenSSL has no SM3 (OpenSSL 1.1.1 or later"
                " built with it is needed)"
            )
        self._unique(f"{where}.secrets", "id", [secret.id for secret in signing.secrets])
        problems_before = len(self.problems)
        for n, secret in enumerate(signing.secrets):
            if secret.value is not None:
                self.written_secrets.append(f"{where}.secrets[{n}]")
                self.problems += _secret_problems(f"{where}.secrets[{n}]", signing.scheme, secret.value)
        if len(self.problems) > problems_before:
            return None
        path, environ, scheme, listed = self.path, self.environ, signing.scheme, tuple(signing.secrets)

        def read() -> tuple[Secret, ...]:
            secrets, problems = [], []
            for n, secret in enumerate(listed):
                if secret.value is not None:
                    secrets.append(Secret(secret.id, secret.value))
                    continue
                assert secret.env is not None  # the model holds one of the two
                value = environ.get(secret.env, "")
                if not value:
                    problems.append(f"{where}.secrets[{n}].env: the environment variable {secret.env} is not set")
                    continue
                problems += _secret_problems(f"{where}.secrets[{n}]", scheme, value)
                secrets.append(Secret(secret.id, value))
            if problems:
                raise IntegrationsError(path, problems)
            return tuple(secrets)

        return read

    def _unique(self, where: str, key: str, values: list[str]) -> None:
        seen: set[str] = set()
        for value in values:
            if value in seen:
                self.problems.append(f"{where}: two with {key} {value!r}")
            seen.add(value)


def _secret_problems(where: str, scheme: Scheme, value: str) -> list[str]:
    """What is wrong with a secret for its scheme (never the secret itself)."""
    try:
        if scheme is Scheme.STANDARD_WEBHOOKS:
            webhook_secret_bytes(value)
        elif len(value) < MIN_APP_SECRET_LENGTH:
            raise ValueError(f"an app-key secret has at least {MIN_APP_SECRET_LENGTH} characters")
    except ValueError as exc:
        return [f"{where}: {exc}"]
    return []


def _hours(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"
