# PostgreSQL from Debian's packages on a private data directory and port (never the system cluster).

PG_BIN=""

postgres_install() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
    [[ $EUID -eq 0 ]] || die "PostgreSQL is missing: sudo apt-get install -y postgresql"
    log "installing PostgreSQL from Debian"
    apt_install postgresql
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
}

# As root, PostgreSQL refuses to run: use Debian's `postgres` account and a directory it can reach.
PG_AS=()
[[ $EUID -eq 0 ]] && PG_AS=(runuser -u postgres --)
pg_as() { "${PG_AS[@]}" "$@"; }

pg_data_dir() {
  local dir="$DATA_DIR/postgres"
  if [[ $EUID -eq 0 ]] && ! runuser -u postgres -- test -x "$DATA_DIR" 2>/dev/null; then
    dir="/var/tmp/helios-stack-$(printf '%s' "$STACK_DIR" | cksum | cut -d' ' -f1)/postgres"
  fi
  echo "$dir"
}

postgres_start() {
  local port data sock
  port=$(port_of postgres "${POSTGRES_PORT:-}")
  running postgres && return 0
  data=$(pg_data_dir); sock="$(dirname "$data")/socket"
  mkdir -p "$data" "$sock"
  [[ $EUID -eq 0 ]] && chown postgres:postgres "$data" "$sock" "$(dirname "$data")"
  chmod 700 "$data"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    log "initialising PostgreSQL cluster in $data"
    pg_as "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >>"$LOG_DIR/postgres.log" 2>&1 || die "initdb failed (log: $LOG_DIR/postgres.log)"
  fi
  start_bg postgres "${PG_AS[@]}" "$PG_BIN/postgres" -D "$data" -p "$port" -k "$sock" \
    -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=200 -c shared_buffers=128MB
  wait_for postgres 60 pg_as "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$port"
  pg_as psql -h "$sock" -p "$port" -U postgres -v ON_ERROR_STOP=1 -q >>"$LOG_DIR/postgres.log" 2>&1 <<SQL ||
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'helios') THEN
    CREATE ROLE helios LOGIN PASSWORD 'helios' CREATEDB;
  END IF;
END \$\$;
SELECT 'CREATE DATABASE helios OWNER helios' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'helios')\gexec
SQL
    die "creating the helios role/database failed (log: $LOG_DIR/postgres.log)"
}
