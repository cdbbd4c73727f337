#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: its data and its Unix socket in DIR, no TCP
# port, trust authentication for the superuser `parlor` on that socket only.
#
#   scripts/pg-temp.sh start DIR   starts it; prints the URL template the tests take
#                                  (PARLOR_TEST_POSTGRES: `{db}` is where a database name goes)
#   scripts/pg-temp.sh stop DIR    stops it (DIR is left to the caller to remove)
#
# PostgreSQL refuses to run as root: as root it runs as the `postgres` user the Debian package
# creates. Durability is off (fsync): the data lives as long as the test run.
set -euo pipefail

cmd=${1:?usage: pg-temp.sh start|stop DIR}
dir=$(cd "${2:?usage: pg-temp.sh start|stop DIR}" && pwd)
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
  echo "PostgreSQL is not installed (Debian package postgresql: make bootstrap)" >&2
  exit 1
fi
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  as_owner=(runuser -u postgres --)
  chown postgres: "$dir"
fi

case "$cmd" in
  start)
    "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U parlor -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
      "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=400 \
       -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null || {
      cat "$dir/server.log" >&2
      exit 1
    }
    echo "postgres://parlor@localhost/{db}?host=$dir"
    ;;
  stop)
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: pg-temp.sh start|stop DIR" >&2
    exit 2
    ;;
esac
