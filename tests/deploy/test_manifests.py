"""The deployment files, checked offline: the Dockerfile, deploy/compose and every kustomization
of deploy/k8s.

Compose is checked by docker-compose itself (``config``), the Kubernetes manifests are rendered by
the pinned kustomize and checked against the Kubernetes API's schemas (kubernetes-validate) and,
for the operators' resources, against the vendored CRDs of Strimzi, CloudNativePG and KEDA
(deploy/k8s/crds). Then what must hold for citycase to work there: the consumers' groups and the
partitions behind the scaling, the log kept forever, session-long database connections, probes,
resources, non-root containers, the routes, pinned images, settings that exist.

The tools come from ``deploy/local/manifest-tools.sh`` (``make test`` runs it first); a missing
one fails these tests, naming the script, rather than skipping them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.runtime.console import MOUNTED_PREFIXES, PROCESS_PREFIXES
from services.runtime.registry import load_specs
from services.runtime.runtime import Runtime, SharedParts
from shared.core.clock import SystemClock
from shared.core.settings import SERVICE_NAMES, Mode, Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "compose" / "compose.yaml"
TOOLS_SCRIPT = "deploy/local/manifest-tools.sh"
# The oldest and the newest Kubernetes the manifests are meant for.
KUBERNETES_VERSIONS = ("1.31", "1.37")
Resource = dict[str, Any]
# The topics' names as the code has them, whatever the environment running the tests says.
CASE_EVENTS, DEAD_LETTER, INTEGRATION = (
    str(Settings.model_fields[f"topic_{topic}"].default) for topic in ("case_events", "dead_letter", "integration")
)

KUSTOMIZATIONS = sorted(path.parent.relative_to(K8S).as_posix() for path in K8S.rglob("kustomization.yaml"))


def _tool(name: str, path: Path | None = None) -> str:
    found = str(path) if path is not None and path.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run {TOOLS_SCRIPT} (make test runs it)")
    return found


def _cache_dir() -> Path:
    return Path(os.environ.get("CITYCASE_CACHE", REPO / ".cache"))


@cache
def rendered(kustomization: str) -> tuple[Resource, ...]:
    """Every resource ``kustomize build`` makes of a kustomization under deploy/k8s."""
    kustomize = _tool("kustomize", _cache_dir() / "bin" / "kustomize")
    result = subprocess.run(
        [kustomize, "build", str(K8S / kustomization)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kustomize build {kustomization}:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(resources: tuple[Resource, ...], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def named(resources: tuple[Resource, ...], kind: str, name: str) -> Resource:
    found = [r for r in of_kind(resources, kind) if r["metadata"]["name"] == name]
    assert len(found) == 1, f"one {kind} named {name} expected, found {len(found)}"
    return found[0]


# --- the consumers, as the services declare them ---------------------------------------------


@pytest.fixture(scope="module")
def consumer_groups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[tuple[str, str]]]:
    """Per service, its consumers as (consumer name, topic): the runtime built from the real
    specs (embedded, nothing started), so a renamed consumer shows up here."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("city"),
        mode=Mode.EMBEDDED,
        topic_case_events=CASE_EVENTS,
        topic_dead_letter=DEAD_LETTER,
        topic_integration=INTEGRATION,
    )
    runtime = Runtime(load_specs(["all"]), SharedParts.load(settings, SystemClock()))
    return {
        service.name: {(runner.spec.name, topic) for runner in service.consumers for topic in runner.spec.topics}
        | {(runner.spec.name, topic) for runner in service.tracked_consumers for topic in runner.spec.topics}
        for service in runtime.services
    }


# --- Kubernetes: schemas ----------------------------------------------------------------------


def test_there_is_a_base_and_an_overlay() -> None:
    assert "base" in KUSTOMIZATIONS
    assert any(k.startswith("overlays/") for k in KUSTOMIZATIONS)


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → the served version's openAPIV3Schema, from the vendored CRDs, made
    strict: an object with declared properties admits no other (the API server would drop an
    unknown field silently, so a misspelt one would do nothing)."""
    schemas = {}
    for path in sorted((K8S / "crds").glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    declared = "properties" in schema and "additionalProperties" not in schema
    if declared and not schema.get("x-kubernetes-preserve-unknown-fields"):
        strict["additionalProperties"] = False
    return strict


def test_the_vendored_crds_cover_the_operators_kinds() -> None:
    kinds = {kind for _, kind in crd_schemas()}
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "Cluster", "ScaledObject"} <= kinds


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_resource_matches_its_schema(kustomization: str) -> None:
    problems = []
    for resource in rendered(kustomization):
        where = f"{resource['kind']}/{resource['metadata']['name']}"
        crd = crd_schemas().get((resource["apiVersion"], resource["kind"]))
        if crd is not None:
            # OpenAPI 3.0 schemas: JSON Schema draft 4's keywords.
            errors = jsonschema.Draft4Validator(crd).iter_errors(resource)
            problems += [f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{where} (Kubernetes {version}): {'.'.join(map(str, error.path))}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{where}: {resource['apiVersion']} is neither Kubernetes' nor a vendored CRD's")
    assert not problems, "\n".join(problems)


# --- Kubernetes: what citycase needs there ---------------------------------------------------


def _config(resources: tuple[Resource, ...]) -> dict[str, str]:
    data: dict[str, str] = named(resources, "ConfigMap", "citycase")["data"]
    return data


def _topics(resources: tuple[Resource, ...]) -> dict[str, Resource]:
    return {t["spec"].get("topicName", t["metadata"]["name"]): t for t in of_kind(resources, "KafkaTopic")}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_topics_are_the_services_and_the_case_event_log_is_kept_forever(kustomization: str) -> None:
    resources = rendered(kustomization)
    topics, config = _topics(resources), _config(resources)
    assert set(topics) == {CASE_EVENTS, DEAD_LETTER, INTEGRATION}
    for kept in (CASE_EVENTS, DEAD_LETTER):
        assert topics[kept]["spec"]["config"]["retention.ms"] == -1, f"{kept} must be kept forever"
        assert topics[kept]["spec"]["config"].get("retention.bytes", -1) == -1
    # Strimzi owns the topics: the services must neither create them nor believe another count.
    assert config["CITYCASE_KAFKA_CREATE_TOPICS"] == "false"
    for topic in (CASE_EVENTS, INTEGRATION):
        assert topics[topic]["spec"]["partitions"] == int(config["CITYCASE_KAFKA_PARTITIONS"])
    for kafka_topic in topics.values():
        assert kafka_topic["spec"]["replicas"] == int(config["CITYCASE_KAFKA_REPLICATION_FACTOR"])
    kafka = of_kind(resources, "Kafka")
    assert len(kafka) == 1
    assert "topicOperator" in kafka[0]["spec"]["entityOperator"]
    assert all(t["metadata"]["labels"]["strimzi.io/cluster"] == kafka[0]["metadata"]["name"] for t in topics.values())


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kafka_runs_in_kraft_mode_with_node_pools(kustomization: str) -> None:
    resources = rendered(kustomization)
    cluster = of_kind(resources, "Kafka")[0]["metadata"]["name"]
    pools = [p for p in of_kind(resources, "KafkaNodePool") if p["metadata"]["labels"]["strimzi.io/cluster"] == cluster]
    roles = {role for pool in pools for role in pool["spec"]["roles"]}
    assert roles == {"controller", "broker"}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_each_service_scales_on_its_consumer_groups_lag_within_the_partitions(
    kustomization: str, consumer_groups: dict[str, set[tuple[str, str]]]
) -> None:
    resources = rendered(kustomization)
    config, topics = _config(resources), _topics(resources)
    kafka = of_kind(resources, "Kafka")[0]["metadata"]["name"]
    namespace = of_kind(resources, "Kafka")[0]["metadata"]["namespace"]
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(resources, "ScaledObject")}
    assert set(scaled) == set(SERVICE_NAMES)
    for service, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        lag = [t["metadata"] for t in spec["triggers"] if t["type"] == "kafka"]
        groups = {(t["consumerGroup"], t["topic"]) for t in lag}
        expected = {(config["CITYCASE_KAFKA_GROUP_PREFIX"] + name, topic) for name, topic in consumer_groups[service]}
        assert groups == expected, f"{service} scales on {groups}, its consumers are {expected}"
        for trigger in lag:
            # The KEDA operator runs in a namespace of its own: the broker's full name.
            assert trigger["bootstrapServers"] == f"{kafka}-kafka-bootstrap.{namespace}.svc:9092"
            partitions = topics[trigger["topic"]]["spec"]["partitions"]
            assert spec["maxReplicaCount"] <= partitions, (
                f"{service}: {spec['maxReplicaCount']} replicas, {trigger['topic']} has {partitions} partitions"
            )
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        named(resources, "Deployment", service)  # the target exists


def _containers(deployment: Resource) -> list[Resource]:
    pod = deployment["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def _env(container: Resource) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_deployment_has_probes_resources_a_non_root_user_and_a_disruption_budget(kustomization: str) -> None:
    resources = rendered(kustomization)
    deployments = {d["metadata"]["name"]: d for d in of_kind(resources, "Deployment")}
    assert set(deployments) == set(SERVICE_NAMES)
    budgets = of_kind(resources, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        assert "replicas" not in deployment["spec"], f"{name}: the ScaledObject owns the replica count"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["securityContext"]["runAsUser"] != 0
        for container in _containers(deployment):
            where = f"{name}/{container['name']}"
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert "memory" in container["resources"]["limits"], where
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert security.get("runAsUser", 1) != 0, where
            assert container["image"] == pod["spec"]["containers"][0]["image"], where
        (main,) = pod["spec"]["containers"]
        assert main["args"] == ["run", name, "--mode", "production"]
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        # The service's database decides; the bus and the relay stay in the report, not in the verdict.
        assert main["readinessProbe"]["httpGet"]["path"] == f"/{name}/readyz?exclude=bus&exclude=outbox"
        metrics_ports = [port for port in main["ports"] if port["name"] == "metrics"]
        assert metrics_ports == [{"name": "metrics", "containerPort": 9100}]
        annotations = pod["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/port") == "9100", name
        (migrate,) = pod["spec"]["initContainers"]
        assert migrate["args"][:2] == ["migrate", name]
        covering = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        ]
        assert len(covering) == 1, f"{name}: {len(covering)} PodDisruptionBudgets"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_postgres_has_a_role_and_a_schema_per_service_and_no_transaction_pooling(kustomization: str) -> None:
    resources = rendered(kustomization)
    (cluster,) = of_kind(resources, "Cluster")
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    statements = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    for service in SERVICE_NAMES:
        role = roles[f"citycase_{service}"]
        assert role["login"] is True
        assert role["passwordSecret"]["name"] == f"citycase-{service}-db"
        assert not role.get("superuser", False)
        assert f"CREATE SCHEMA {service} AUTHORIZATION citycase_{service}" in statements
        assert f"ALTER ROLE citycase_{service} SET search_path = {service}" in statements
    # Session-long connections only: the relay's leader holds an advisory lock on its session.
    poolers = of_kind(resources, "Pooler")
    assert all(p["spec"]["pgbouncer"]["poolMode"] == "session" for p in poolers)
    session_hosts = {f"{cluster['metadata']['name']}-rw"} | {p["metadata"]["name"] for p in poolers}
    for deployment in of_kind(resources, "Deployment"):
        service = deployment["metadata"]["name"]
        for container in _containers(deployment):
            urls = {k: v for k, v in _env(container).items() if k.startswith("CITYCASE_DATABASE_URLS__")}
            assert list(urls) == [f"CITYCASE_DATABASE_URLS__{service.upper()}"], f"{service}: its own database only"
            url = urlsplit(next(iter(urls.values())))
            assert url.hostname in session_hosts, f"{service} connects to {url.hostname}"
            assert url.username == f"citycase_{service}"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_ingress_routes_every_service_the_whole_city_and_the_console(kustomization: str) -> None:
    resources = rendered(kustomization)
    (ingress,) = of_kind(resources, "Ingress")
    routes = {
        path["path"]: path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
        if path["pathType"] == "Prefix"
    }
    for service in SERVICE_NAMES:
        assert routes[f"/{service}"] == service
    for prefix, service in MOUNTED_PREFIXES.items():
        assert routes[f"/{prefix}"] == service
    # The whole city's routes and the console: to a Service over every citycase process.
    deployments = of_kind(resources, "Deployment")
    for prefix in [*(p for p in PROCESS_PREFIXES if p != "metrics"), ""]:
        selector = named(resources, "Service", routes[f"/{prefix}"])["spec"]["selector"]
        for deployment in deployments:
            assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items(), prefix
    # Each process's metrics are scraped inside the cluster, never served to the world.
    assert "/metrics" not in routes


# --- images and settings ----------------------------------------------------------------------


def _pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def _k8s_images(resources: tuple[Resource, ...]) -> Iterator[str]:
    for deployment in of_kind(resources, "Deployment"):
        yield from (c["image"] for c in _containers(deployment))
    yield from (c["spec"]["imageName"] for c in of_kind(resources, "Cluster") if "imageName" in c["spec"])


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kubernetes_images_are_pinned(kustomization: str) -> None:
    images = list(_k8s_images(rendered(kustomization)))
    assert images
    assert all(_pinned(image) for image in images), images


def _setting_exists(variable: str) -> bool:
    """Whether a CITYCASE_ variable names a setting (Settings ignores unknown ones silently)."""
    name, _, inner = variable.removeprefix("CITYCASE_").lower().partition("__")
    field = Settings.model_fields.get(name)
    return field is not None and (not inner or (name == "database_urls" and inner in SERVICE_NAMES))


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kubernetes_sets_only_settings_that_exist(kustomization: str) -> None:
    resources = rendered(kustomization)
    variables = set(_config(resources))
    for deployment in of_kind(resources, "Deployment"):
        variables |= {e["name"] for c in _containers(deployment) for e in c.get("env", [])}
    unknown = {v for v in variables if v.startswith("CITYCASE_") and not _setting_exists(v)}
    assert not unknown


# --- Compose -----------------------------------------------------------------------------------

PLACEHOLDERS = {
    "CITYCASE_JWT_SECRET": "0123456789abcdef0123456789abcdef",
    "CITYCASE_PG_ADMIN_PASSWORD": "admin0",
    **{f"CITYCASE_PG_PASSWORD_{service.upper()}": f"{service}0" for service in SERVICE_NAMES},
}


def _compose(args: list[str], env: Mapping[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """docker-compose on the compose file, with ``env`` as the whole environment: an empty env
    file, so that a .env someone left in deploy/compose changes nothing here."""
    docker_compose = _tool("docker-compose")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    command = [docker_compose, "--env-file", str(empty), "-f", str(COMPOSE_FILE), *args]
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    return subprocess.run(command, capture_output=True, text=True, env={**base, **env}, timeout=60, check=False)


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose file as docker-compose reads it, with placeholder secrets."""
    result = _compose(["config"], PLACEHOLDERS, tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    # docker-compose interpolates the whole file first and stops at the first required variable
    # it misses: one run shows the refusal, and each secret must be written required somewhere.
    text = COMPOSE_FILE.read_text()
    for secret in PLACEHOLDERS:
        assert f"${{{secret}:?" in text, f"{secret} is not required"
        assert f"${{{secret}-" not in text, f"{secret} has a default"
        assert f"${{{secret}:-" not in text, f"{secret} has a default"
    result = _compose(["config", "-q"], {}, tmp_path)
    assert result.returncode != 0
    assert any(secret in result.stderr for secret in PLACEHOLDERS), result.stderr


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_runs_each_service_after_the_migration_job_with_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert _command(services["migrate"]) == ["migrate", "all", "--mode", "production"]
    assert services["migrate"]["restart"] == "no"
    for name in SERVICE_NAMES:
        service = services[name]
        assert _command(service) == ["run", name, "--mode", "production"]
        assert service["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "kafka": {"condition": "service_healthy"},
        }
        test = service["healthcheck"]["test"]
        # The image has Python and no curl.
        assert test[:2] == ["CMD", "python"], test
        assert f"/{name}/readyz" in test[-1], test
        env = service["environment"]
        assert env["CITYCASE_MIGRATE_ON_START"] == "false"
        assert env["CITYCASE_MODE"] == "production"
        own_url = f"CITYCASE_DATABASE_URLS__{name.upper()}"
        assert [k for k in env if k.startswith("CITYCASE_DATABASE_URLS__")] == [own_url]
        assert urlsplit(env[own_url]).username == f"citycase_{name}"
        assert "ports" not in service, f"{name} is reached through the gateway only"
    for backing in ("postgres", "kafka", "gateway"):
        assert services[backing]["healthcheck"]["test"], backing
    migrate_urls = {k for k in services["migrate"]["environment"] if k.startswith("CITYCASE_DATABASE_URLS__")}
    assert migrate_urls == {f"CITYCASE_DATABASE_URLS__{s.upper()}" for s in SERVICE_NAMES}


def test_compose_serves_the_console_and_every_api_on_one_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    published = [name for name, service in services.items() if service.get("ports")]
    assert published == ["gateway"]
    (port,) = services["gateway"]["ports"]
    assert str(port.get("target") if isinstance(port, dict) else port).endswith("8000")
    command = _command(services["gateway"])
    assert command[0] == "gateway"
    upstreams = dict(arg.removeprefix("--service-url=").split("=", 1) for arg in command[1:])
    assert upstreams == {service: f"http://{service}:8000" for service in SERVICE_NAMES}
    assert set(services["gateway"]["depends_on"]) == set(SERVICE_NAMES)


def test_compose_runs_kafka_in_kraft_mode_and_postgres_from_the_official_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka, postgres = services["kafka"], services["postgres"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert re.fullmatch(r"postgres:[\d.]+(-\w+)?", postgres["image"])
    assert all(_pinned(service["image"]) for service in services.values())
    variables = {v for service in services.values() for v in service.get("environment", {})}
    assert not {v for v in variables if v.startswith("CITYCASE_") and not _setting_exists(v)} - {
        f"CITYCASE_PG_PASSWORD_{s.upper()}" for s in SERVICE_NAMES
    }


# --- the Dockerfile ------------------------------------------------------------------------------


@dataclass
class Stage:
    """One stage of a Dockerfile: its base image, its name and its instructions in order."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]]


def dockerfile_stages(text: str) -> list[Stage]:
    """The Dockerfile's stages, with each ARG declared before the first FROM substituted into the
    FROM lines (a few lines of parsing: line continuations, comments, instruction and arguments)."""
    logical = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if not instruction:
            continue
        if instruction == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif instruction == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest).split()
            stages.append(Stage(words[0], words[2] if len(words) == 3 and words[1].upper() == "AS" else None, []))
        else:
            stages[-1].instructions.append((instruction, rest))
    return stages


def test_the_image_is_multi_stage_non_root_and_carries_the_console_and_the_city() -> None:
    stages = dockerfile_stages((REPO / "Dockerfile").read_text())
    assert len(stages) >= 3
    assert all(_pinned(stage.base) for stage in stages)
    console = next(s for s in stages if s.base.startswith("node:20"))
    runs = " && ".join(rest for instruction, rest in console.instructions if instruction == "RUN")
    assert "npm ci" in runs
    assert "npm run build" in runs
    final = stages[-1]
    assert re.fullmatch(r"python:3\.11[\d.]*-slim(-\w+)?", final.base)
    build = next(s for s in stages[:-1] if s.base == final.base)
    installs = [rest for instruction, rest in build.instructions if instruction == "RUN" and "pip install" in rest]
    assert any(re.search(r"pip install (--no-deps )?\.$", rest) for rest in installs), installs
    assert not any("-e " in rest or "[dev]" in rest for rest in installs)

    values: dict[str, str] = {}
    for instruction, rest in final.instructions:
        if instruction in ("ARG", "ENV"):
            for word in shlex.split(rest):
                name, _, value = word.partition("=")
                values[name] = value
    (user,) = [rest for instruction, rest in final.instructions if instruction == "USER"]
    uid = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], user).split(":")[0]
    assert uid.isdigit(), "a numeric user: runAsNonRoot cannot check a name"
    assert int(uid) != 0
    copies = [rest.split() for instruction, rest in final.instructions if instruction == "COPY"]
    assert [f"--from={console.name}", "/src/web/dist", values["CITYCASE_CONSOLE_DIR"]] in copies
    assert ["deploy/cities/demo", values["CITYCASE_CITY_DIR"]] in copies
    assert all(_setting_exists(name) for name in values if name.startswith("CITYCASE_"))
    (entrypoint,) = [rest for instruction, rest in final.instructions if instruction == "ENTRYPOINT"]
    assert yaml.safe_load(entrypoint) == ["python", "-m", "services"]


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_more() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: everything else stays out (.git, .venv, var/, caches)"
    allowed = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    sources = {
        source.rstrip("/")
        for stage in dockerfile_stages((REPO / "Dockerfile").read_text())
        for instruction, rest in stage.instructions
        if instruction == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    }
    for source in sources:
        assert any(source == a or source.startswith(f"{a}/") for a in allowed), source
    assert {"web/node_modules", "web/dist"} <= set(patterns)
