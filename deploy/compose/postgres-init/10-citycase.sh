#!/bin/bash
# The official postgres image runs this once, on the first start of an empty data volume, as the
# superuser (POSTGRES_USER, citycase_admin) in the database POSTGRES_DB (citycase). As
# deploy/local/postgres.sh does on one machine: a login role per service, owning a schema of the
# same name, which is its search path (the tables carry no schema name); no rights on another
# service's schema or on public. Passwords come from CITYCASE_PG_PASSWORD_<SERVICE> and travel
# as psql variables, quoted by psql (:'password'), never pasted into the SQL.
set -euo pipefail

psql_admin() {
    psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"
}

psql_admin -v database="$POSTGRES_DB" <<'SQL'
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL

for service in intake dispatch handling closure assessment; do
    variable="CITYCASE_PG_PASSWORD_${service^^}"
    password="${!variable:?$variable is not set}"
    psql_admin -v database="$POSTGRES_DB" -v role="citycase_$service" -v schema="$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
ALTER ROLE :"role" SET search_path = :"schema";
GRANT CONNECT ON DATABASE :"database" TO :"role";
CREATE SCHEMA :"schema" AUTHORIZATION :"role";
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
SQL
done
echo "citycase: roles and schemas made for intake dispatch handling closure assessment"
