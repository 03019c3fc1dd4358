# Kubernetes control plane: kube-apiserver, kube-controller-manager and kube-scheduler built from
# the Go module k8s.io/kubernetes (staging modules replaced by their published v0.x versions).

KUBE_VERSION="${KUBE_VERSION:-1.34.4}"
KUBE_HOME="$HELIOS_CACHE/kubernetes-v$KUBE_VERSION"
KUBE_BINS=(kube-apiserver kube-controller-manager kube-scheduler)

kube_installed() {
  local b
  for b in "${KUBE_BINS[@]}"; do [[ -x "$KUBE_HOME/bin/$b" ]] || return 1; done
}

kube_install() {
  kube_installed && return 0
  log "building Kubernetes v$KUBE_VERSION control plane (cold: 15-25 min on 2 cores)"
  kube_build "$KUBE_HOME/src" "${KUBE_BINS[@]}" || die "building Kubernetes failed"
  kube_installed || die "Kubernetes binaries missing after build"
}

# kube_build SRC CMD...: build k8s.io/kubernetes/cmd/CMD of v$KUBE_VERSION (the staging modules
# replaced by their published v0.x versions, the version stamped in) in a wrapper module at SRC,
# then move the binaries into $KUBE_HOME/bin together (a half-built one is never there).
kube_build() {
  local src=$1; shift
  local minor staging
  rm -rf "$src"; mkdir -p "$src/bin" "$KUBE_HOME/bin"
  minor=$(cut -d. -f2 <<<"$KUBE_VERSION")
  staging="v0.${KUBE_VERSION#1.}"
  (
    set -euo pipefail
    cd "$src"
    go mod init "local/k8s-$(basename "$src")" >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@v$KUBE_VERSION"
    gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" |
      python3 -c 'import sys,json;print(json.load(sys.stdin)["GoMod"])')
    for m in $(sed -n 's|^\s*k8s.io/\(\S*\) => ./staging/.*|\1|p' "$gomod"); do
      go mod edit -replace="k8s.io/$m=k8s.io/$m@$staging"
    done
    {
      echo '//go:build tools'
      echo 'package tools'
      echo 'import ('
      for b in "$@"; do echo "  _ \"k8s.io/kubernetes/cmd/$b\""; done
      echo ')'
    } >tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
    ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $p.gitVersion=v$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
      ld+=" -X $p.gitTreeState=clean"
    done
    pkgs=()
    for b in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    go build -trimpath -ldflags "$ld" -o "$src/bin/" "${pkgs[@]}"
    for b in "$@"; do mv "$src/bin/$b" "$KUBE_HOME/bin/$b"; done
  )
}

# kube_pki: a CA, the API server's serving certificate, the service-account key and the admin
# token, generated once per stack directory.
kube_pki() {
  local pki="$STACK_DIR/pki"
  [[ -f "$pki/.complete" ]] && return 0
  mkdir -p "$pki"
  (
    set -euo pipefail
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=helios-stack-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes.default.svc\n' >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -days 3650 -extfile san.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    echo "$(openssl rand -hex 24),helios-admin,helios-admin,system:masters" >tokens.csv
    touch .complete
  ) || die "generating the Kubernetes PKI failed"
}

kube_token() { cut -d, -f1 "$STACK_DIR/pki/tokens.csv"; }

kube_write_kubeconfig() {
  local port=$1 ca
  ca=$(base64 -w0 "$STACK_DIR/pki/ca.crt")
  cat >"$STACK_DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: helios-stack
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $ca
users:
- name: helios-admin
  user:
    token: $(kube_token)
contexts:
- name: helios-stack
  context:
    cluster: helios-stack
    user: helios-admin
    namespace: default
current-context: helios-stack
KC
  chmod 600 "$STACK_DIR/kubeconfig"
}

kube_ready() {
  curl -sf --cacert "$STACK_DIR/pki/ca.crt" -H "Authorization: Bearer $(kube_token)" \
    "https://127.0.0.1:$1/readyz" | grep -q '^ok'
}

kube_start() {
  local port etcd pki="$STACK_DIR/pki" kcm_port sched_port
  port=$(port_of kube-apiserver "${KUBE_APISERVER_PORT:-}")
  etcd=$(cat "$RUN_DIR/etcd.port")
  kube_pki
  kube_write_kubeconfig "$port"
  if ! running kube-apiserver; then
    start_bg kube-apiserver "$KUBE_HOME/bin/kube-apiserver" \
      --etcd-servers="http://127.0.0.1:$etcd" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
      --secure-port="$port" --cert-dir="$pki" --tls-cert-file="$pki/apiserver.crt" \
      --tls-private-key-file="$pki/apiserver.key" --client-ca-file="$pki/ca.crt" \
      --service-cluster-ip-range=10.0.0.0/16 --allow-privileged=true --authorization-mode=Node,RBAC \
      --token-auth-file="$pki/tokens.csv" --service-account-issuer="https://127.0.0.1:$port" \
      --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
      --profiling=false --v=1
    wait_for kube-apiserver 180 kube_ready "$port"
  fi
  if ! running kube-controller-manager; then
    kcm_port=$(port_of kube-controller-manager "")
    start_bg kube-controller-manager "$KUBE_HOME/bin/kube-controller-manager" \
      --kubeconfig="$STACK_DIR/kubeconfig" --authentication-kubeconfig="$STACK_DIR/kubeconfig" \
      --authorization-kubeconfig="$STACK_DIR/kubeconfig" --leader-elect=false \
      --bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$pki/kcm" \
      --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
      --use-service-account-credentials=false --controllers='*,-nodeipam,-nodelifecycle' \
      --concurrent-gc-syncs=5 --kube-api-qps=200 --kube-api-burst=400 --profiling=false --v=1
    wait_for kube-controller-manager 60 curl -sfk "https://127.0.0.1:$kcm_port/healthz"
  fi
  if ! running kube-scheduler; then
    sched_port=$(port_of kube-scheduler "")
    start_bg kube-scheduler "$KUBE_HOME/bin/kube-scheduler" \
      --kubeconfig="$STACK_DIR/kubeconfig" --authentication-kubeconfig="$STACK_DIR/kubeconfig" \
      --authorization-kubeconfig="$STACK_DIR/kubeconfig" --leader-elect=false \
      --bind-address=127.0.0.1 --secure-port="$sched_port" --cert-dir="$pki/scheduler" --v=1
    wait_for kube-scheduler 60 curl -sfk "https://127.0.0.1:$sched_port/healthz"
  fi
}
