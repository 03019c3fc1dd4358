#!/usr/bin/env python3
"""Pack a directory into a single-layer OCI image archive (an OCI image layout in a tar), with no
container engine and no registry: what `ctr images import` (and skopeo/podman) read.

    oci_layout.py --rootfs DIR --ref NAME:TAG --out IMAGE.tar [--entrypoint JSON] [--cmd JSON]
                  [--user UID:GID] [--env K=V]... [--workdir DIR] [--expose PORT/tcp]...
                  [--label K=V]...

The layer is an uncompressed tar of DIR with sorted names, mtime 0 and numeric owners taken from
the files (so the same DIR gives the same digest); the archive holds oci-layout, index.json (the
ref in both the containerd and the OCI ref-name annotations), the manifest, the config and the
layer under blobs/sha256/.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile


def layer_tar(rootfs: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = []
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                entries.append(os.path.join(dirpath, name))
        for path in sorted(entries, key=lambda p: os.path.relpath(p, rootfs)):
            arc = os.path.relpath(path, rootfs)
            info = tar.gettarinfo(path, arcname=arc)
            info.mtime = 0
            info.uname = info.gname = ""
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def blob(data: bytes):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rootfs", required=True)
    p.add_argument("--ref", required=True, help="image reference, e.g. ghcr.io/helios-dev/helios:0.1.0")
    p.add_argument("--out", required=True)
    p.add_argument("--entrypoint", type=json.loads)
    p.add_argument("--cmd", type=json.loads)
    p.add_argument("--user")
    p.add_argument("--workdir")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--expose", action="append", default=[])
    p.add_argument("--label", action="append", default=[])
    a = p.parse_args()
    if not os.path.isdir(a.rootfs):
        print(f"oci_layout: {a.rootfs} is not a directory", file=sys.stderr)
        return 2

    layer_digest, layer = blob(layer_tar(a.rootfs))
    config = {"Env": a.env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    if a.entrypoint is not None:
        config["Entrypoint"] = a.entrypoint
    if a.cmd is not None:
        config["Cmd"] = a.cmd
    if a.user:
        config["User"] = a.user
    if a.workdir:
        config["WorkingDir"] = a.workdir
    if a.expose:
        config["ExposedPorts"] = {port: {} for port in a.expose}
    if a.label:
        config["Labels"] = dict(kv.split("=", 1) for kv in a.label)
    image_config = {
        "created": "1970-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "e2e/image/oci_layout.py"}],
    }
    cfg_digest, cfg = blob(json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": len(cfg)},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": len(layer)}
        ],
    }
    man_digest, man = blob(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
    tag = a.ref.rsplit(":", 1)[1] if ":" in a.ref.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": man_digest,
                "size": len(man),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": a.ref, "org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    files = [
        ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
        ("index.json", json.dumps(index, sort_keys=True).encode()),
    ] + [(f"blobs/sha256/{d.split(':', 1)[1]}", data) for d, data in ((man_digest, man), (cfg_digest, cfg), (layer_digest, layer))]
    tmp = a.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, a.out)
    print(json.dumps({"ref": a.ref, "manifest": man_digest, "config": cfg_digest, "layer": layer_digest, "layer_size": len(layer)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
