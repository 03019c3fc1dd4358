# Python tools used by benchmarks, evaluation and tests, each in a virtualenv under the cache:
# scikit-learn (the side-by-side forest comparison) and the OpenTelemetry Python SDK with its
# OTLP/HTTP exporters (protobuf and JSON; a real SDK client for the ingest worker's OTLP tests).

SKLEARN_VERSION="${SKLEARN_VERSION:-1.9.1}"
PYTOOLS_HOME="$HELIOS_CACHE/pytools-sklearn-$SKLEARN_VERSION"

# The SDK and the JSON exporter are released together (1.45.1 with 0.66b1; the JSON exporter
# has no 0.66b2 to match 1.45.2), pinned as a pair.
OTEL_PY_VERSION="${OTEL_PY_VERSION:-1.45.1}"
OTEL_PY_JSON_VERSION="${OTEL_PY_JSON_VERSION:-0.66b1}"
OTEL_PY_HOME="$HELIOS_CACHE/pytools-otel-$OTEL_PY_VERSION"

pytools_install() {
  pytools_sklearn_install
  pytools_otel_install
}

pytools_sklearn_install() {
  [[ -x "$PYTOOLS_HOME/bin/python" ]] && "$PYTOOLS_HOME/bin/python" -c 'import sklearn' 2>/dev/null && return 0
  log "installing scikit-learn $SKLEARN_VERSION into $PYTOOLS_HOME"
  python3 -m venv "$PYTOOLS_HOME" || die "python3 -m venv failed"
  "$PYTOOLS_HOME/bin/pip" install -q "scikit-learn==$SKLEARN_VERSION" || die "pip install scikit-learn failed"
}

pytools_otel_install() {
  local check='import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http.trace_exporter, opentelemetry.exporter.otlp.json.http.trace_exporter'
  [[ -x "$OTEL_PY_HOME/bin/python" ]] && "$OTEL_PY_HOME/bin/python" -c "$check" 2>/dev/null && return 0
  log "installing the OpenTelemetry Python SDK $OTEL_PY_VERSION into $OTEL_PY_HOME"
  python3 -m venv "$OTEL_PY_HOME" || die "python3 -m venv failed"
  "$OTEL_PY_HOME/bin/pip" install -q \
    "opentelemetry-api==$OTEL_PY_VERSION" "opentelemetry-sdk==$OTEL_PY_VERSION" \
    "opentelemetry-proto==$OTEL_PY_VERSION" \
    "opentelemetry-exporter-otlp-proto-http==$OTEL_PY_VERSION" \
    "opentelemetry-exporter-otlp-json-http==$OTEL_PY_JSON_VERSION" \
    || die "pip install of the OpenTelemetry SDK failed"
  "$OTEL_PY_HOME/bin/python" -c "$check" || die "the OpenTelemetry SDK does not import"
}
