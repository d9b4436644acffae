#!/bin/sh
# As the official image: an empty data directory is initialised at the
# first start, reachable from the network with the authentication
# POSTGRES_HOST_AUTH_METHOD names (only `trust` is stood in for).
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    echo "this stand-in for postgres only knows POSTGRES_HOST_AUTH_METHOD=trust" >&2
    exit 1
  fi
  initdb --username=postgres --auth=trust --pgdata="$PGDATA" >/dev/null
  echo "host all all all trust" >> "$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
fi
exec "$@"
