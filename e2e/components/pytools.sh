# Python tools used by benchmarks and evaluation (scikit-learn for the side-by-side forest
# comparison), in a virtualenv under the cache.

SKLEARN_VERSION="${SKLEARN_VERSION:-1.9.1}"
PYTOOLS_HOME="$HELIOS_CACHE/pytools-sklearn-$SKLEARN_VERSION"

pytools_install() {
  [[ -x "$PYTOOLS_HOME/bin/python" ]] && "$PYTOOLS_HOME/bin/python" -c 'import sklearn' 2>/dev/null && return 0
  log "installing scikit-learn $SKLEARN_VERSION into $PYTOOLS_HOME"
  python3 -m venv "$PYTOOLS_HOME" || die "python3 -m venv failed"
  "$PYTOOLS_HOME/bin/pip" install -q "scikit-learn==$SKLEARN_VERSION" || die "pip install scikit-learn failed"
}
