#!/usr/bin/env bash
# Local PostgreSQL for citycase (Debian packages, no Docker, no systemd).
#
#   deploy/local/postgres.sh up      install if needed, start cluster, create databases/roles/schemas
#   deploy/local/postgres.sh down    stop the cluster
#   deploy/local/postgres.sh status  exit 0 when the server accepts connections
#   deploy/local/postgres.sh check   verify password login and per-schema isolation
#
# Env: CITYCASE_PG_PORT (5432), CITYCASE_PG_VERSION (highest installed major).
set -euo pipefail
LOG_TAG=postgres
# shellcheck source=deploy/local/_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

PG_PORT="${CITYCASE_PG_PORT:-5432}"
PG_CLUSTER=main
# Extra databases (e.g. one test database per working copy) can be listed in CITYCASE_PG_DATABASES.
read -r -a DATABASES <<< "${CITYCASE_PG_DATABASES:-citycase citycase_test}"
SERVICES=(intake dispatch handling closure assessment)
ADMIN_ROLE=citycase_admin

pg_version() {
    if [[ -n "${CITYCASE_PG_VERSION:-}" ]]; then
        echo "$CITYCASE_PG_VERSION"
    else
        # Debian layout: one directory per installed major version.
        find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n1
    fi
}

ensure_installed() {
    local v
    v="$(pg_version)"
    if [[ -n "$v" && -x "/usr/lib/postgresql/$v/bin/postgres" ]] && command -v pg_ctlcluster >/dev/null; then
        return
    fi
    say "installing PostgreSQL (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
}

is_ready() {
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 1
}

# psql as the postgres superuser over the Unix socket (peer auth).
psql_super() {
    PGOPTIONS="-c client_min_messages=warning" runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" "$@"
}

ensure_cluster() {
    local v="$1" confdir="/etc/postgresql/$1/$PG_CLUSTER"
    if [[ ! -f "$confdir/postgresql.conf" ]]; then
        say "creating cluster $v/$PG_CLUSTER"
        pg_createcluster "$v" "$PG_CLUSTER" -p "$PG_PORT" >/dev/null
    fi

    local restart=0 reload=0 tmp
    # Debian's postgresql.conf includes conf.d/*.conf, so our settings stay in one owned file.
    mkdir -p "$confdir/conf.d"
    tmp="$(mktemp)"
    cat >"$tmp" <<EOF
# Managed by deploy/local/postgres.sh -- local development/test settings.
listen_addresses = '127.0.0.1'
port = $PG_PORT
max_connections = 200
password_encryption = 'scram-sha-256'
EOF
    if install_if_changed "$tmp" "$confdir/conf.d/citycase.conf"; then
        chown postgres:postgres "$confdir/conf.d/citycase.conf"
        restart=1
    fi
    # The port lives in postgresql.conf too; pg_ctlcluster/pg_lsclusters read it from there.
    if ! grep -qE "^port = $PG_PORT\b" "$confdir/postgresql.conf"; then
        sed -i -E "s/^#?port = [0-9]+/port = $PG_PORT/" "$confdir/postgresql.conf"
        restart=1
    fi

    # pg_hba is first-match: put our TCP password lines on top so a distro default
    # (e.g. peer/ident/trust) further down can never shadow them.
    local hba="$confdir/pg_hba.conf" marker="# citycase: managed by deploy/local/postgres.sh"
    if ! grep -qF "$marker" "$hba"; then
        tmp="$(mktemp)"
        {
            echo "$marker"
            echo "host    all             all             127.0.0.1/32            scram-sha-256"
            echo "host    all             all             ::1/128                 scram-sha-256"
            echo "# citycase: end"
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba"
        rm -f "$tmp"
        reload=1
    fi

    if pg_lsclusters -h "$v" "$PG_CLUSTER" | grep -q online; then
        if ((restart)); then
            say "restarting cluster $v/$PG_CLUSTER (config changed)"
            pg_ctlcluster --skip-systemctl-redirect "$v" "$PG_CLUSTER" restart
        elif ((reload)); then
            pg_ctlcluster --skip-systemctl-redirect "$v" "$PG_CLUSTER" reload
        fi
    else
        say "starting cluster $v/$PG_CLUSTER on 127.0.0.1:$PG_PORT"
        pg_ctlcluster --skip-systemctl-redirect "$v" "$PG_CLUSTER" start
    fi

    local i
    for ((i = 0; i < 60; i++)); do
        is_ready && return 0
        sleep 0.5
    done
    tail -n 30 "/var/log/postgresql/postgresql-$v-$PG_CLUSTER.log" >&2 || true
    die "PostgreSQL did not become ready on 127.0.0.1:$PG_PORT"
}

# All statements are idempotent, so this runs on every `up` (one psql process, ~100 ms).
provision_sql() {
    local r s db roles=("$ADMIN_ROLE")
    for s in "${SERVICES[@]}"; do roles+=("citycase_$s"); done

    # Roles are cluster-wide. Password == role name: local dev/test only.
    for r in "${roles[@]}"; do
        echo "SELECT 'CREATE ROLE $r' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$r') \\gexec"
        echo "ALTER ROLE $r WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$r';"
    done
    for s in "${SERVICES[@]}"; do
        echo "ALTER ROLE citycase_$s SET search_path = $s;"
        # Membership lets the admin (tests) read/truncate every service schema.
        echo "GRANT citycase_$s TO $ADMIN_ROLE;"
    done

    for db in "${DATABASES[@]}"; do
        echo "SELECT 'CREATE DATABASE $db OWNER $ADMIN_ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db') \\gexec"
        echo "ALTER DATABASE $db OWNER TO $ADMIN_ROLE;"
        echo "REVOKE ALL ON DATABASE $db FROM PUBLIC;"
        for s in "${SERVICES[@]}"; do
            echo "GRANT CONNECT ON DATABASE $db TO citycase_$s;"
        done
    done
    for db in "${DATABASES[@]}"; do
        echo "\\connect $db"
        # Nobody but the owner (admin) may use public; services live in their own schema only.
        echo "REVOKE ALL ON SCHEMA public FROM PUBLIC;"
        for s in "${SERVICES[@]}"; do
            echo "CREATE SCHEMA IF NOT EXISTS $s AUTHORIZATION citycase_$s;"
            echo "ALTER SCHEMA $s OWNER TO citycase_$s;"
            echo "REVOKE ALL ON SCHEMA $s FROM PUBLIC;"
        done
    done
}

cmd_up() {
    ensure_installed
    local v
    v="$(pg_version)"
    [[ -n "$v" ]] || die "no PostgreSQL version found under /usr/lib/postgresql"
    ensure_cluster "$v"
    provision_sql | psql_super -d postgres >/dev/null
    say "ready: postgresql://citycase_<service>:citycase_<service>@127.0.0.1:$PG_PORT/citycase (and citycase_test)"
}

cmd_down() {
    local v
    v="$(pg_version)"
    if [[ -n "$v" ]] && pg_lsclusters -h "$v" "$PG_CLUSTER" 2>/dev/null | grep -q online; then
        say "stopping cluster $v/$PG_CLUSTER"
        pg_ctlcluster --skip-systemctl-redirect "$v" "$PG_CLUSTER" stop
    else
        say "not running"
    fi
}

cmd_status() {
    if is_ready; then
        say "up on 127.0.0.1:$PG_PORT"
    else
        say "down"
        return 1
    fi
}

cmd_check() {
    is_ready || die "not running"
    local db
    for db in "${DATABASES[@]}"; do
        PGPASSWORD=citycase_intake psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
            -U citycase_intake -d "$db" -c 'create table intake.t(x int); drop table intake.t' \
            || die "citycase_intake cannot create in its own schema ($db)"
        if PGPASSWORD=citycase_intake psql -X -q -h 127.0.0.1 -p "$PG_PORT" \
            -U citycase_intake -d "$db" -c 'create table dispatch.t(x int)' 2>/dev/null; then
            die "citycase_intake could create in schema dispatch ($db)"
        fi
        PGPASSWORD=$ADMIN_ROLE psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
            -U "$ADMIN_ROLE" -d "$db" -c 'create table dispatch.t(x int); drop table dispatch.t' >/dev/null \
            || die "$ADMIN_ROLE cannot manage schema dispatch ($db)"
    done
    say "check ok: password login, own-schema DDL, cross-schema denied, admin reaches all schemas"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    check) cmd_check ;;
    *)
        echo "usage: $0 up|down|status|check" >&2
        exit 2
        ;;
esac
