#!/usr/bin/env bash
# Bring up a local PostgreSQL (Debian package) for Switchyard's store tests, idempotently.
# Usage: .ci/pg-setup.sh   (as root). Prints the URL to export as SWITCHYARD_TEST_PG.
set -euo pipefail

PG_USER="${PG_USER:-switchyard}"
PG_PASSWORD="${PG_PASSWORD:-switchyard}"
PG_DB="${PG_DB:-switchyard_test}"
PG_PORT="${PG_PORT:-5432}"

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
fi

# The Debian package creates one cluster; take the newest version present.
read -r PG_VERSION PG_CLUSTER < <(pg_lsclusters --no-header | sort -k1,1V | tail -n 1 | awk '{print $1, $2}')
if [ -z "${PG_VERSION:-}" ]; then
  PG_VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
  PG_CLUSTER=main
  pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT"
fi

if ! pg_lsclusters --no-header | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
  pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
fi

# Wait until the server accepts connections.
for _ in $(seq 1 30); do
  if su postgres -c "pg_isready -q -p $PG_PORT"; then break; fi
  sleep 1
done
su postgres -c "pg_isready -p $PG_PORT"

psql_pg() { su postgres -c "psql -p $PG_PORT -v ON_ERROR_STOP=1 -tAc \"$1\""; }

if [ "$(psql_pg "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != "1" ]; then
  psql_pg "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD' SUPERUSER"
fi
if [ "$(psql_pg "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != "1" ]; then
  su postgres -c "createdb -p $PG_PORT -O $PG_USER $PG_DB"
fi

echo "postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
