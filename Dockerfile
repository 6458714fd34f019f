# syntax=docker/dockerfile:1
# The citycase image: every service and the console in one image, a process per container
# (`python -m services run intake --mode production`, ...). Three stages:
#   console  the browser console (web/) built by Node from the pinned lockfile into web/dist
#   build    the project installed into a virtual environment (a plain install, no dev extras)
#   runtime  Python slim, the venv, the console's files and the demo city, run as a non-root user
# How to build and run it: deploy/README.md. Image versions are pinned (never `latest`); the
# Python patch release and Debian release are the same in `build` and `runtime`, since the venv's
# interpreter links are the base image's.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${NODE_IMAGE} AS console
WORKDIR /src/web
# The lockfile first: the npm layer is rebuilt only when the dependencies change.
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
# vue-tsc's type check, then Vite: the same `npm run build` as `make web`.
RUN npm run build

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/citycase/venv
ENV PATH=/opt/citycase/venv/bin:$PATH
WORKDIR /src
# The pinned runtime dependencies alone first (read from pyproject.toml), so that a change to the
# code rebuilds only the last layer; every one of them ships a manylinux wheel for CPython 3.11,
# so no compiler is needed here.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY shared/ shared/
COPY services/ services/
COPY intake/ intake/
COPY dispatch/ dispatch/
COPY handling/ handling/
COPY closure/ closure/
COPY assessment/ assessment/
# Not editable and without the dev extras: the venv holds the project's packages (migrations
# included), compiled to bytecode here since the runtime user may not write there.
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
RUN groupadd --system --gid ${UID} citycase \
    && useradd --system --uid ${UID} --gid citycase --home-dir /var/lib/citycase --no-create-home \
        --shell /usr/sbin/nologin citycase \
    && mkdir -p /var/lib/citycase \
    && chown citycase:citycase /var/lib/citycase
COPY --from=build /opt/citycase/venv /opt/citycase/venv
COPY --from=console /src/web/dist /opt/citycase/console
COPY deploy/cities/demo /opt/citycase/city
# The settings' defaults for the console and the city are paths beside a source checkout; in
# the image they are here. A city of its own: a volume (or an image FROM this one) at
# CITYCASE_CITY_DIR. The data folder (photos, log-in sessions, loaded calendar years) must be one
# folder shared by every process of the city: a volume there (deploy/compose, deploy/k8s).
ENV PATH=/opt/citycase/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CITYCASE_HTTP_HOST=0.0.0.0 \
    CITYCASE_HTTP_PORT=8000 \
    CITYCASE_CONSOLE_DIR=/opt/citycase/console \
    CITYCASE_CITY_DIR=/opt/citycase/city \
    CITYCASE_DATA_DIR=/var/lib/citycase
WORKDIR /var/lib/citycase
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER ${UID}:${UID}
EXPOSE 8000
ENTRYPOINT ["python", "-m", "services"]
# With no arguments: every service in one process, embedded (SQLite files and the embedded event
# log in the data folder), a town's whole city in one container. A deployment names one service
# per container instead: `run intake --mode production`, `migrate all --mode production`,
# `gateway --service-url ...` (deploy/compose, deploy/k8s).
CMD ["run", "all"]
