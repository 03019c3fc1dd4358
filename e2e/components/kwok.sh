# kwok (Go module sigs.k8s.io/kwok): fake Node helios-kwok-0, whose pods kwok marks Running+Ready.
# There is no kubelet and no container runtime, so no container ever runs.
# kwok manages only Nodes annotated kwok.x-k8s.io/node=fake, with the "fast" Stages that kwok's
# own module ships (copied into the cache at install time): nodes turn Ready at once, pods go
# Pending -> Running+Ready, Job pods complete, and deleted pods disappear. kwok's server
# (healthz, and the node's kubelet endpoint, so `kubectl logs` gets kwok's answer) listens on
# 127.0.0.1:KWOK_PORT only; the node's IP is 127.0.0.1 and pod IPs come from KWOK_POD_CIDR,
# which is disjoint from the service range 10.0.0.0/16.

KWOK_VERSION="${KWOK_VERSION:-0.8.0}"
KWOK_HOME="$HELIOS_CACHE/kwok-v$KWOK_VERSION"
KWOK_NODE="${KWOK_NODE:-helios-kwok-0}"
KWOK_POD_CIDR="${KWOK_POD_CIDR:-10.244.0.0/16}"
# The Stage manifests of kwok's module (kustomize/stage/...), in the order they are concatenated.
KWOK_STAGES=(node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)

kwok_installed() { [[ -x "$KWOK_HOME/bin/kwok" && -s "$KWOK_HOME/stages.yaml" ]]; }

kwok_install() {
  kwok_installed && return 0
  log "building kwok v$KWOK_VERSION"
  mkdir -p "$KWOK_HOME/bin"
  GOBIN="$KWOK_HOME/bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" ||
    die "building kwok failed"
  local dir s
  dir=$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" |
    python3 -c 'import sys,json;print(json.load(sys.stdin)["Dir"])') || die "locating kwok's module failed"
  for s in "${KWOK_STAGES[@]}"; do
    [[ -s "$dir/kustomize/stage/$s" ]] || die "kwok v$KWOK_VERSION has no stage $s"
    printf -- '---\n'; cat "$dir/kustomize/stage/$s"
  done >"$KWOK_HOME/stages.yaml.tmp"
  mv "$KWOK_HOME/stages.yaml.tmp" "$KWOK_HOME/stages.yaml"
}

# kwok_config: the configuration file kwok reads with -c: only the Stages. (A KwokConfiguration
# document there would replace kwok's defaults wholesale, e.g. its parallelism settings become 0;
# every option used here has a flag.)
kwok_config() {
  local f="$STACK_DIR/kwok/kwok.yaml"
  mkdir -p "$STACK_DIR/kwok"
  cp "$KWOK_HOME/stages.yaml" "$f"
  echo "$f"
}

kwok_kubectl() { kubectl --kubeconfig="$STACK_DIR/kubeconfig" "$@"; }

kwok_node_ready() {
  [[ $(kwok_kubectl get node "$KWOK_NODE" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# kwok_node: create (idempotently) the fake Node. The API server's TaintNodesByCondition admission
# taints every new Node node.kubernetes.io/not-ready:NoSchedule, and the controller that would lift
# it (nodelifecycle) is off in this stack, so it is removed here once kwok reports the Node Ready.
kwok_node() {
  kwok_kubectl apply -f - >/dev/null <<NODE || die "creating the kwok node $KWOK_NODE failed"
apiVersion: v1
kind: Node
metadata:
  name: $KWOK_NODE
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $KWOK_NODE
spec: {}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
NODE
  wait_for kwok 60 kwok_node_ready
  local taints
  taints=$(kwok_kubectl get node "$KWOK_NODE" -o 'jsonpath={.spec.taints[*].key}')
  if [[ " $taints " == *" node.kubernetes.io/not-ready "* ]]; then
    kwok_kubectl taint node "$KWOK_NODE" node.kubernetes.io/not-ready:NoSchedule- >/dev/null ||
      die "removing the not-ready taint from $KWOK_NODE failed"
  fi
}

kwok_start() {
  local port conf
  port=$(port_of kwok "${KWOK_PORT:-}")
  if ! running kwok; then
    conf=$(kwok_config)
    mkdir -p "$DATA_DIR/kwok"
    # HOME is private so that no ~/.kwok/kwok.yaml of the user is merged into the configuration.
    HOME="$DATA_DIR/kwok" start_bg kwok "$KWOK_HOME/bin/kwok" -c "$conf" \
      --kubeconfig="$STACK_DIR/kubeconfig" --manage-all-nodes=false \
      --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
      --server-address="127.0.0.1:$port" --node-ip=127.0.0.1 --node-port="$port" \
      --cidr="$KWOK_POD_CIDR" --node-lease-duration-seconds=40
    wait_for kwok 60 curl -sf "http://127.0.0.1:$port/healthz"
  fi
  kwok_node
}
