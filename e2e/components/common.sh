# Shared helpers for e2e/stack: paths, logging, ports, pid files, waiting.
# Sourced by e2e/stack and every component script; defines no side effects.

HELIOS_CACHE="${HELIOS_CACHE:-$HOME/.cache/helios}"
STACK_DIR="${STACK_DIR:-$E2E_DIR/.stack}"
LOG_DIR="$STACK_DIR/logs"
RUN_DIR="$STACK_DIR/run"
DATA_DIR="$STACK_DIR/data"
export GOTOOLCHAIN=local
export GOPATH="$HELIOS_CACHE/go"
export GOMODCACHE="$HELIOS_CACHE/go/pkg/mod"
export GOCACHE="$HELIOS_CACHE/go/build-cache"
export GOFLAGS="-buildvcs=false"

log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# free_port: print a free TCP port on 127.0.0.1 chosen by the kernel.
free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
}

# port_of NAME DEFAULT_ENV: the port for NAME, remembered in run/NAME.port across runs.
port_of() {
  local name=$1 override=${2:-}
  local f="$RUN_DIR/$name.port"
  if [[ -n "$override" ]]; then echo "$override" >"$f"
  elif [[ ! -s "$f" ]]; then free_port >"$f"; fi
  cat "$f"
}

# running NAME: true when the pid file of NAME names a live process.
running() {
  local f="$RUN_DIR/$1.pid"
  [[ -s "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start_bg NAME CMD...: start CMD detached, logging to logs/NAME.log, pid in run/NAME.pid.
start_bg() {
  local name=$1; shift
  log "starting $name"
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

# stop_pid NAME: stop the process group recorded in run/NAME.pid (TERM, then KILL).
stop_pid() {
  local name=$1 f="$RUN_DIR/$1.pid" pid i
  [[ -s "$f" ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -"${STOP_SIGNAL:-TERM}" -- "-$pid" 2>/dev/null || kill -"${STOP_SIGNAL:-TERM}" "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_for NAME SECONDS CMD...: retry CMD until it succeeds; on timeout show the log and fail.
wait_for() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ! running "$name"; then
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      die "$name exited during start-up (log: $LOG_DIR/$name.log)"
    fi
    if ((SECONDS > deadline)); then
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      die "$name not ready after ${secs}s (log: $LOG_DIR/$name.log)"
    fi
    sleep 0.3
  done
}

# tcp_open PORT: true when something accepts on 127.0.0.1:PORT.
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# go_build_tool DIR MODULE@VERSION OUT PKG...: build Go binaries in a throwaway module under DIR.
go_module_init() {
  local dir=$1
  mkdir -p "$dir/src"
  (cd "$dir/src" && [[ -f go.mod ]] || go mod init "local/$(basename "$dir")" >/dev/null 2>&1)
}

# apt_install PKG...: install Debian packages (root only), updating the lists once per run.
apt_install() {
  [[ $EUID -eq 0 ]] || die "missing packages: $* (run: sudo apt-get install -y $*)"
  if [[ -z "${APT_UPDATED:-}" ]]; then apt-get update -qq >&2 || die "apt-get update failed"; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
    die "apt-get install $* failed"
}
