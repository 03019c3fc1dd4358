#!/usr/bin/env bash
# e2e/image/build.sh — build the `helios` container image with no container engine and no registry,
# and import it into the local node's containerd (`e2e/stack up-node`) when that runs.
#
#   e2e/image/build.sh            (`make image`) build from the release binary, pack, import
#   e2e/image/build.sh --no-import   only write the image archive
#
# The image is what the Dockerfile describes, assembled file by file instead of FROM
# gcr.io/distroless/cc-debian12:nonroot (which cannot be pulled here): /usr/local/bin/helios, the
# shared libraries `ldd` lists at the paths it lists them (libz under /usr/lib/ as the Dockerfile
# copies it), the dynamic loader, Debian's CA bundle, /etc/passwd and /etc/group with distroless's
# users (root 0, nobody 65534, nonroot 65532) and /home/nonroot; ENTRYPOINT ["helios"],
# CMD ["--help"], USER 65532:65532, EXPOSE 8080, WorkingDir /home/nonroot, and distroless's env
# (PATH, SSL_CERT_FILE). It is packed by e2e/image/oci_layout.py under the chart's image,
# <image.repository from charts/helios/values.yaml>:<appVersion from charts/helios/Chart.yaml>.
#
# Environment: HELIOS_BIN (default: `cargo build --release --locked -p helios`, then
# ${CARGO_TARGET_DIR:-target}/release/helios), HELIOS_CACHE (the archive goes to
# $HELIOS_CACHE/images/helios-<tag>.tar), HELIOS_IMAGE (override the reference).
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(dirname "$E2E_DIR")"
# shellcheck source=../components/common.sh
for f in common kube node; do source "$E2E_DIR/components/$f.sh"; done

import=1
case "${1:-}" in
  "") ;;
  --no-import) import=0 ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 2 ;;
esac

# chart_image: repository:appVersion, as the chart's helios.image helper renders it by default.
chart_image() {
  local repo tag
  repo=$(awk '/^image:/ {in_image = 1; next} in_image && /^[^ #]/ {in_image = 0}
    in_image && $1 == "repository:" {print $2; exit}' "$ROOT/charts/helios/values.yaml")
  tag=$(awk '$1 == "appVersion:" {gsub(/"/, "", $2); print $2; exit}' "$ROOT/charts/helios/Chart.yaml")
  [[ -n $repo && -n $tag ]] || die "cannot read image.repository / appVersion from charts/helios"
  echo "$repo:$tag"
}

helios_bin() {
  if [[ -n "${HELIOS_BIN:-}" ]]; then
    [[ -x $HELIOS_BIN ]] || die "HELIOS_BIN=$HELIOS_BIN is not an executable"
    echo "$HELIOS_BIN"; return
  fi
  log "building the release binary (cargo build --release --locked -p helios)"
  (cd "$ROOT" && cargo build --release --locked -p helios >&2) || die "cargo build --release failed"
  local target="${CARGO_TARGET_DIR:-$ROOT/target}"
  [[ $target == /* ]] || target="$ROOT/$target"
  echo "$target/release/helios"
}

# rootfs BIN DIR: lay out the image's files under DIR.
rootfs() {
  local bin=$1 dir=$2 lib path
  rm -rf "$dir"; mkdir -p "$dir"/{usr/local/bin,usr/lib,etc/ssl/certs,home/nonroot,tmp}
  install -m 0755 "$bin" "$dir/usr/local/bin/helios"
  # A debug build (what `make test` has) carries ~150 MB of debug info the image does not need.
  objcopy --strip-debug "$dir/usr/local/bin/helios"
  # `ldd` lines: "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" and the loader
  # "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
  while read -r lib path; do
    [[ -n $path ]] || continue
    if [[ $lib == libz.so* ]]; then
      install -m 0644 -D "$(readlink -f "$path")" "$dir/usr/lib/$lib"   # as the Dockerfile copies it
    else
      install -m 0755 -D "$(readlink -f "$path")" "$dir$path"
    fi
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3} $1 ~ /^\// {print $1, $1}')
  [[ -n $(ls "$dir"/lib64/ld-linux-* 2>/dev/null) ]] || die "ldd $bin listed no dynamic loader"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$dir/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >"$dir/etc/group"
  printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
  chmod 0644 "$dir/etc/passwd" "$dir/etc/group" "$dir/etc/nsswitch.conf"
  chown 65532:65532 "$dir/home/nonroot"; chmod 0700 "$dir/home/nonroot"
  chmod 1777 "$dir/tmp"
}

main() {
  [[ $EUID -eq 0 ]] || die "run as root (the image's files carry uid 65532)"
  [[ -s /etc/ssl/certs/ca-certificates.crt ]] || apt_install ca-certificates
  local ref="${HELIOS_IMAGE:-$(chart_image)}" bin out work t0=$SECONDS
  bin=$(helios_bin)
  out="$HELIOS_CACHE/images/helios-${ref##*:}.tar"
  work="$HELIOS_CACHE/images/helios-rootfs"
  mkdir -p "$HELIOS_CACHE/images"
  rootfs "$bin" "$work"
  python3 "$E2E_DIR/image/oci_layout.py" --rootfs "$work" --ref "$ref" --out "$out" \
    --entrypoint '["helios"]' --cmd '["--help"]' --user 65532:65532 --workdir /home/nonroot \
    --expose 8080/tcp --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --label "org.opencontainers.image.version=$("$bin" --version | awk '{print $2}')" >/dev/null ||
    die "packing the image failed"
  rm -rf "$work"
  log "built $ref -> $out ($(du -h "$out" | cut -f1), $((SECONDS - t0))s)"
  if ((import)); then
    if running containerd; then
      node_import "$out" "$ref"
      log "$ref is in the node's containerd ($NODE_CTR_SOCK)"
    else
      log "the node's containerd is not running: not imported (start it with \`e2e/stack up-node\`)"
    fi
  fi
  echo "$out"
}

main
