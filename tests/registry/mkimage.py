#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write a small OCI image layout for the registry tests (Python 3 stdlib only).

    mkimage.py LAYOUT [TAG]      (TAG defaults to "busybox")

Two gzip layers, both reproducible (fixed mtimes, owners and gzip headers):
  1. bin/busybox (the host's busybox-static, /bin/busybox) and bin/sh -> busybox
  2. etc/cove-test, a small text file
an OCI config (amd64/linux, Cmd /bin/sh) and an OCI manifest without a top-level mediaType
(as umoci and skopeo write them), referenced from index.json with the ref.name annotation TAG.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

MTIME = 1700000000


def tar_bytes(entries):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6, filename="") as f:
        f.write(data)
    return out.getvalue()


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return "sha256:" + digest


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: mkimage.py LAYOUT [TAG]")
    layout = sys.argv[1]
    tag = sys.argv[2] if len(sys.argv) == 3 else "busybox"
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open("/bin/busybox", "rb") as f:
        busybox = f.read()
    layers = [
        tar_bytes([("bin", "dir", None, 0o755), ("bin/busybox", "file", busybox, 0o755),
                   ("bin/sh", "sym", "busybox", 0o777)]),
        tar_bytes([("etc", "dir", None, 0o755),
                   ("etc/cove-test", "file", b"cove registry test image\n", 0o644)]),
    ]
    descs, diff_ids = [], []
    for layer in layers:
        z = gz(layer)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": put_blob(layout, z), "size": len(z)})
        diff_ids.append("sha256:" + hashlib.sha256(layer).hexdigest())
    config = json.dumps({
        "created": "2023-11-14T22:13:20Z", "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "mkimage.py"}] * 2,
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put_blob(layout, config), "size": len(config)},
        "layers": descs,
    }, sort_keys=True).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": put_blob(layout, manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


if __name__ == "__main__":
    main()
