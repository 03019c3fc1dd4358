# etcd built from its Go module (Debian's 3.4 is too old for Kubernetes >= 1.31).

ETCD_VERSION="${ETCD_VERSION:-3.6.5}"
ETCD_HOME="$HELIOS_CACHE/etcd-v$ETCD_VERSION"

etcd_install() {
  [[ -x "$ETCD_HOME/bin/etcd" ]] && return 0
  log "building etcd v$ETCD_VERSION"
  rm -rf "$ETCD_HOME/src"; mkdir -p "$ETCD_HOME/src" "$ETCD_HOME/bin"
  (
    set -euo pipefail
    cd "$ETCD_HOME/src"
    go mod init local/etcdbin >/dev/null 2>&1
    printf '//go:build tools\npackage tools\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null 2>&1 || go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    go mod tidy >/dev/null 2>&1 || go mod tidy
    go build -trimpath -ldflags "-s -w" -o "$ETCD_HOME/bin/etcd" go.etcd.io/etcd/server/v3
  ) || die "building etcd failed"
}

etcd_start() {
  local port peer
  port=$(port_of etcd "${ETCD_PORT:-}")
  peer=$(port_of etcd-peer "${ETCD_PEER_PORT:-}")
  running etcd && return 0
  mkdir -p "$DATA_DIR/etcd"
  start_bg etcd "$ETCD_HOME/bin/etcd" --name helios --data-dir "$DATA_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "helios=http://127.0.0.1:$peer" --unsafe-no-fsync --quota-backend-bytes 2147483648 \
    --log-level warn
  wait_for etcd 60 curl -sf "http://127.0.0.1:$port/health"
}
