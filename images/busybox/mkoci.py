#!/usr/bin/env python3
# Turn the busybox tar into an OCI image archive named docker.io/library/busybox:latest: the
# offline image, loaded into the store the first time `cove run busybox` needs it, after which
# it is an ordinary image. Deterministic: the same tar gives the same digests.
# Usage: mkoci.py busybox.tar busybox.oci.tar
import gzip, hashlib, io, json, sys, tarfile

def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data

def main(src, out):
    raw = open(src, "rb").read()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as g:
        g.write(raw)
    layer_digest, layer = blob(buf.getvalue())
    config_digest, config = blob(json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
        "history": [{"created_by": "cove: Debian's busybox-static"}],
    }, sort_keys=True, separators=(",", ":")).encode())
    manifest_digest, manifest = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": len(layer)}],
    }, sort_keys=True, separators=(",", ":")).encode())
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": len(manifest),
                       "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"io.containerd.image.name": "docker.io/library/busybox:latest",
                                       "org.opencontainers.image.ref.name": "latest"}}],
    }, sort_keys=True, separators=(",", ":")).encode()
    files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
    for d, data in ((config_digest, config), (manifest_digest, manifest), (layer_digest, layer)):
        files.append(("blobs/sha256/" + d.split(":")[1], data))
    with tarfile.open(out + ".tmp", "w", format=tarfile.PAX_FORMAT) as t:
        for d in ("blobs", "blobs/sha256"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            t.addfile(ti)
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            t.addfile(ti, io.BytesIO(data))
    import os
    os.replace(out + ".tmp", out)

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
