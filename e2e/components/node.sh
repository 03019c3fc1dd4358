# A real node (`e2e/stack up` starts it unless HELIOS_NODE=0; `e2e/stack up-node` on a running stack): containerd and runc
# from Debian, and a kubelet built from the same k8s.io/kubernetes module as the control plane,
# registered as Node $NODE_NAME with the taint $NODE_TAINT, so that only pods that tolerate it
# (the real-node tests) land there; everything else keeps going to kwok's fake node.
#
# Nothing is pulled: the pause image is built here from the Kubernetes module's
# build/pause/linux/pause.c (gcc -static) and packed by e2e/image/oci_layout.py, then imported
# under the tag containerd's CRI plugin is configured with (sandbox_image = $NODE_PAUSE_IMAGE).
#
# Networking: pods on this node run with hostNetwork (the node's IP is 127.0.0.1, the kubelet and
# containerd's streaming server listen on 127.0.0.1 only). No CNI network is configured, so the
# runtime reports NetworkReady=false and the Node stays NotReady (reason NetworkPluginNotReady):
# the kubelet still runs hostNetwork pods, and refuses any other pod. Test pods therefore tolerate
# $NODE_TAINT and node.kubernetes.io/not-ready. No traffic leaves loopback.
# Beware: there is no kube-proxy, so Service IPs (10.0.0.0/16, e.g. the `kubernetes` Service's
# 10.0.0.1 that the kubelet puts in every pod's KUBERNETES_SERVICE_HOST) are not served here and
# a connection to one would follow the machine's default route off the machine. A pod that talks
# to the API server must set KUBERNETES_SERVICE_HOST=127.0.0.1 and KUBERNETES_SERVICE_PORT to the
# API server's port itself (container env overrides the kubelet's service env).
#
# Everything lives under the stack: containerd's config in $STACK_DIR/node, its root (images,
# snapshots) in $DATA_DIR/containerd, its state and socket in $RUN_DIR/containerd (never the
# system's /run/containerd/containerd.sock); the kubelet's root in $DATA_DIR/kubelet.
# The kubelet sets some kernel sysctls at start (vm.overcommit_memory, kernel.panic,
# kernel.panic_on_oops); node_start records them first and node_stop puts them back.

# The node's name is its address, 127.0.0.1: the kubelet refuses a loopback --node-ip ("nodeIP
# can't be loopback address") but takes an IP given as --hostname-override as the node's
# InternalIP and Hostname without that check. Any other name would be resolved by DNS (by the
# kubelet, and by the API server, which dials a node's Hostname address first for logs/exec).
NODE_NAME="${NODE_NAME:-127.0.0.1}"
NODE_TAINT_KEY="helios.dev/real-node"
NODE_TAINT="$NODE_TAINT_KEY=true:NoSchedule"
NODE_PAUSE_VERSION="${NODE_PAUSE_VERSION:-3.10.1}"
NODE_PAUSE_IMAGE="registry.k8s.io/pause:$NODE_PAUSE_VERSION"
NODE_IMAGES="$HELIOS_CACHE/images"
NODE_CTR_SOCK="$RUN_DIR/containerd/containerd.sock"
# Paths outside the stack that containerd 1.6 and the kubelet create whatever their flags say (shim
# sockets and fifos, the device-plugin directory, the container-log symlinks, the cgroupfs
# hierarchy): the ones that did not exist before node_start are removed again by node_stop.
NODE_HOST_PATHS=(/run/containerd /var/lib/kubelet /var/log/containers)
NODE_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

node_ctr() { ctr --address "$NODE_CTR_SOCK" --namespace k8s.io "$@"; }
node_kubectl() { kubectl --kubeconfig="$STACK_DIR/kubeconfig" "$@"; }

# ---- install -------------------------------------------------------------------------------

node_kubelet_installed() { [[ -x "$KUBE_HOME/bin/kubelet" ]]; }

# node_kubelet_install: build cmd/kubelet from k8s.io/kubernetes@v$KUBE_VERSION into
# $KUBE_HOME/bin/kubelet, in a module of its own next to the control plane's (same pins, same
# module and build caches: with the control plane built, only kubelet-only packages compile).
node_kubelet_install() {
  node_kubelet_installed && return 0
  log "building kubelet v$KUBE_VERSION (warm Go cache: ~1 min; cold: 10-15 min on 2 cores)"
  kube_build "$KUBE_HOME/kubelet-src" kubelet || die "building kubelet failed"
  node_kubelet_installed || die "kubelet missing after build"
}

node_pause_tar() { echo "$NODE_IMAGES/pause-$NODE_PAUSE_VERSION-k8s-v$KUBE_VERSION.tar"; }

# node_pause_install: the pause image, from the pause.c of k8s.io/kubernetes@v$KUBE_VERSION.
node_pause_install() {
  local tar dir src
  tar=$(node_pause_tar)
  [[ -s $tar ]] && return 0
  command -v gcc >/dev/null || apt_install gcc libc6-dev
  dir=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" |
    python3 -c 'import sys,json;print(json.load(sys.stdin)["Dir"])') || die "locating k8s.io/kubernetes failed"
  src="$dir/build/pause/linux/pause.c"
  [[ -s $src ]] || die "$src is missing"
  log "building the pause image $NODE_PAUSE_IMAGE from $src"
  local work="$NODE_IMAGES/pause-build"
  rm -rf "$work"; mkdir -p "$work/rootfs"
  gcc -Os -Wall -Werror -static -DVERSION="v$NODE_PAUSE_VERSION-helios" -o "$work/rootfs/pause" "$src" ||
    die "compiling pause.c failed"
  strip "$work/rootfs/pause"
  python3 "$E2E_DIR/image/oci_layout.py" --rootfs "$work/rootfs" --ref "$NODE_PAUSE_IMAGE" \
    --out "$tar" --entrypoint '["/pause"]' --user 65535:65535 --env PATH=/ >/dev/null ||
    die "packing the pause image failed"
  rm -rf "$work"
}

node_install() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  command -v gcc >/dev/null || missing+=(gcc libc6-dev)
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
  node_kubelet_install
  node_pause_install
}

# ---- containerd ----------------------------------------------------------------------------

node_containerd_config() {
  local f="$STACK_DIR/node/containerd.toml"
  mkdir -p "$STACK_DIR/node" "$DATA_DIR/containerd" "$RUN_DIR/containerd"
  cat >"$f" <<TOML
version = 2
root = "$DATA_DIR/containerd"
state = "$RUN_DIR/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$NODE_CTR_SOCK"
[ttrpc]
  address = "$NODE_CTR_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$DATA_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$NODE_PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_tcp_service = true
  enable_selinux = false
  netns_mounts_under_state_dir = true
  # The sandbox has no CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj (the kubelet asks -998
  # for the pause container): "nsexec: failed to update /proc/self/oom_score_adj: Permission
  # denied". Restricted, a container's score is never set below containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN_DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$STACK_DIR/node/cni/bin"
    conf_dir = "$STACK_DIR/node/cni/net.d"
TOML
  echo "$f"
}

node_containerd_ready() { node_ctr version >/dev/null 2>&1; }

node_containerd_start() {
  local conf
  if ! running containerd; then
    node_host_paths_record
    conf=$(node_containerd_config)
    start_bg containerd containerd --config "$conf"
    wait_for containerd 60 node_containerd_ready
  fi
  node_import "$(node_pause_tar)" "$NODE_PAUSE_IMAGE"
}

# node_import TAR REF: import an OCI archive into the k8s.io namespace (where the CRI looks),
# unless REF already points at the same manifest.
node_import() {
  local tar=$1 ref=$2 want have
  want=$(tar -xOf "$tar" index.json | python3 -c 'import sys,json;print(json.load(sys.stdin)["manifests"][0]["digest"])')
  have=$(node_ctr images ls "name==$ref" 2>/dev/null | awk 'NR > 1 {print $3}')
  [[ $have == "$want" ]] && return 0
  log "importing $ref into the node's containerd"
  node_ctr images import --all-platforms "$tar" >/dev/null || die "ctr images import $tar failed"
  have=$(node_ctr images ls "name==$ref" | awk 'NR > 1 {print $3}')
  [[ $have == "$want" ]] || die "$ref is not $want after the import (got '${have:-nothing}')"
}

# ---- kubelet -------------------------------------------------------------------------------

node_kubelet_config() {
  local port=$1 healthz=$2 f="$STACK_DIR/node/kubelet.yaml"
  cat >"$f" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
containerRuntimeEndpoint: unix://$NODE_CTR_SOCK
cgroupDriver: cgroupfs
failSwapOn: false
# The API server calls the kubelet (logs, exec) without a client certificate; the kubelet listens
# on 127.0.0.1 only.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
registerNode: true
registerWithTaints:
  - {key: $NODE_TAINT_KEY, value: "true", effect: NoSchedule}
podLogsDir: $DATA_DIR/kubelet-pods-logs
resolvConf: ""
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
maxPods: 20
nodeStatusReportFrequency: 10s
YAML
  echo "$f"
}

node_registered() { node_kubectl get node "$NODE_NAME" -o name >/dev/null 2>&1; }

node_sysctls_save() {
  local f="$RUN_DIR/node-sysctls.orig" s
  [[ -s $f ]] && return 0
  for s in "${NODE_SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$f"
}

node_sysctls_restore() {
  local f="$RUN_DIR/node-sysctls.orig"
  [[ -s $f ]] || return 0
  sysctl -q -p "$f" >/dev/null || log "restoring sysctls from $f failed"
  rm -f "$f"
}

# node_host_paths_record: remember which NODE_HOST_PATHS and kubepods cgroups this node creates.
node_host_paths_record() {
  local f="$RUN_DIR/node-created-paths" p
  [[ -e $f ]] && return 0
  for p in "${NODE_HOST_PATHS[@]}" /sys/fs/cgroup/*/; do
    [[ $p == /sys/fs/cgroup/* ]] && p="${p}kubepods"
    [[ -e $p ]] || echo "$p"
  done >"$f"
}

# node_host_paths_clean: remove them (cgroups only when empty, i.e. no container is left).
node_host_paths_clean() {
  local f="$RUN_DIR/node-created-paths" p
  [[ -s $f ]] || { rm -f "$f"; return 0; }
  while read -r p; do
    [[ -e $p ]] || continue
    case "$p" in
      /sys/fs/cgroup/*) find "$p" -depth -type d -exec rmdir {} + 2>/dev/null || log "cgroup $p is not empty: left" ;;
      *) rm -rf "$p" ;;
    esac
  done <"$f"
  rm -f "$f"
}

node_kubelet_start() {
  local port healthz conf
  if ! running kubelet; then
    port=$(port_of kubelet "${KUBELET_PORT:-}")
    healthz=$(port_of kubelet-healthz "")
    conf=$(node_kubelet_config "$port" "$healthz")
    mkdir -p "$DATA_DIR/kubelet" "$DATA_DIR/kubelet-pods-logs"
    node_sysctls_save
    start_bg kubelet "$KUBE_HOME/bin/kubelet" --config="$conf" \
      --kubeconfig="$STACK_DIR/kubeconfig" --hostname-override="$NODE_NAME" \
      --root-dir="$DATA_DIR/kubelet" --cert-dir="$STACK_DIR/node/kubelet-pki" \
      --node-labels="helios.dev/real-node=true" --v=1
    wait_for kubelet 120 curl -sf "http://127.0.0.1:$healthz/healthz"
  fi
  wait_for kubelet 120 node_registered
}

node_start() {
  node_containerd_start
  node_kubelet_start
  log "node $NODE_NAME registered (taint $NODE_TAINT; hostNetwork pods only)"
}

# node_stop: the kubelet, every container of the node, containerd; then the mounts they leave,
# the Node object, and the sysctls the kubelet changed.
node_stop() {
  stop_pid kubelet
  if running containerd; then
    local c
    for c in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks kill -s KILL "$c" >/dev/null 2>&1 || true; done
    local deadline=$((SECONDS + 30))
    while [[ -n $(node_ctr tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"') ]] && ((SECONDS < deadline)); do sleep 0.3; done
    for c in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks delete "$c" >/dev/null 2>&1 || true; done
    for c in $(node_ctr containers ls -q 2>/dev/null); do node_ctr containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  stop_pid containerd
  local m
  for m in $(awk -v a="$DATA_DIR/kubelet" -v b="$DATA_DIR/containerd" -v c="$RUN_DIR/containerd" \
    'index($2, a) == 1 || index($2, b) == 1 || index($2, c) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
  if node_kubectl get node "$NODE_NAME" -o name >/dev/null 2>&1; then
    node_kubectl delete node "$NODE_NAME" --wait=false >/dev/null || log "deleting node $NODE_NAME failed"
  fi
  node_sysctls_restore
  node_host_paths_clean
}

node_status() {
  local name state port
  for name in containerd kubelet; do
    if running "$name"; then state=running; else state=stopped; fi
    port=$(cat "$RUN_DIR/$name.port" 2>/dev/null || echo -)
    [[ $name == containerd ]] && port=$NODE_CTR_SOCK
    printf '%-26s %-8s %s\n' "$name" "$state" "$port"
  done
}
