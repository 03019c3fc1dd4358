# The Helm CLI built from the Go module proxy, with the Kubernetes version stamped in.

HELM_VERSION="${HELM_VERSION:-3.19.0}"
HELM_HOME="$HELIOS_CACHE/helm-v$HELM_VERSION"

helm_install() {
  [[ -x "$HELM_HOME/bin/helm" ]] && return 0
  log "building helm v$HELM_VERSION"
  mkdir -p "$HELM_HOME/bin"
  local minor ld
  minor=$(cut -d. -f2 <<<"$KUBE_VERSION")
  ld="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  GOBIN="$HELM_HOME/bin" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" ||
    die "building helm failed"
}
