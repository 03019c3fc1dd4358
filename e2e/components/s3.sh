# S3: MinIO built from the Go module proxy. Chosen over moto because it is a real object store:
# it verifies SigV4 signatures and credentials (so "access denied" is real), checksums uploads,
# and implements bucket policies the way AWS S3 does; moto accepts anything.

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
MINIO_HOME="$HELIOS_CACHE/minio-$MINIO_VERSION"
S3_ACCESS_KEY="${S3_ACCESS_KEY:-helios}"
S3_SECRET_KEY="${S3_SECRET_KEY:-helios-secret-key}"

s3_install() {
  [[ -x "$MINIO_HOME/bin/minio" ]] && return 0
  log "building MinIO $MINIO_VERSION (cold: several minutes)"
  mkdir -p "$MINIO_HOME/bin"
  GOBIN="$MINIO_HOME/bin" go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$MINIO_VERSION" ||
    die "building MinIO failed"
}

s3_start() {
  local port cport
  port=$(port_of s3 "${S3_PORT:-}")
  cport=$(port_of s3-console "${S3_CONSOLE_PORT:-}")
  running s3 && return 0
  mkdir -p "$DATA_DIR/s3"
  MINIO_ROOT_USER="$S3_ACCESS_KEY" MINIO_ROOT_PASSWORD="$S3_SECRET_KEY" MINIO_BROWSER=off \
    MINIO_UPDATE=off MINIO_CI_CD=1 \
    start_bg s3 "$MINIO_HOME/bin/minio" server "$DATA_DIR/s3" --quiet \
    --address "127.0.0.1:$port" --console-address "127.0.0.1:$cport"
  wait_for s3 60 curl -sf "http://127.0.0.1:$port/minio/health/ready"
}
