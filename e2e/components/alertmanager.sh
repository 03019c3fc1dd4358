# Prometheus Alertmanager built from its Go module. Not run by `e2e/stack up`: every test starts
# its own instance with its own routes and receivers (`ALERTMANAGER` in e2e/.stack/env), since a
# receiver is what a test observes.
# The module's web UI is an Elm build that is not in the module zip (`ui/app/dist` is embedded
# but generated); the build copies the module and puts a one-page placeholder there, which
# changes nothing the API or the notification pipeline does.

ALERTMANAGER_VERSION="${ALERTMANAGER_VERSION:-v0.35.0}"
ALERTMANAGER_HOME="$HELIOS_CACHE/alertmanager-$ALERTMANAGER_VERSION"

alertmanager_install() {
  [[ -x "$ALERTMANAGER_HOME/bin/alertmanager" ]] && return 0
  log "building Alertmanager $ALERTMANAGER_VERSION (cold: several minutes)"
  local module="github.com/prometheus/alertmanager@$ALERTMANAGER_VERSION" src
  src=$(go mod download -json "$module" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])') ||
    die "downloading $module failed"
  rm -rf "$ALERTMANAGER_HOME/src"
  mkdir -p "$ALERTMANAGER_HOME/bin"
  cp -r "$src" "$ALERTMANAGER_HOME/src" && chmod -R u+w "$ALERTMANAGER_HOME/src"
  mkdir -p "$ALERTMANAGER_HOME/src/ui/app/dist"
  echo '<!doctype html><title>Alertmanager</title><p>API only (UI not built).' \
    >"$ALERTMANAGER_HOME/src/ui/app/dist/index.html"
  (cd "$ALERTMANAGER_HOME/src" &&
    go build -trimpath -ldflags "-s -w" -o "$ALERTMANAGER_HOME/bin/alertmanager" ./cmd/alertmanager) ||
    die "building Alertmanager failed"
  rm -rf "$ALERTMANAGER_HOME/src"
}
