#!/bin/sh
# As the official image: without a configuration file, protected mode is
# off, so that other containers reach the server.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"
