#!/usr/bin/env python3
# Write the hand-made layer tars of the test images (uncompressed; umoci compresses them):
#   layers-1.tar  a base to be modified: files, dirs, a symlink, a hardlink, a fifo,
#                 setuid, a non-root owner, a security.capability xattr, long and UTF-8 names
#   layers-2.tar  the changes: a whiteout, an opaque dir, a file replaced by a dir and a dir
#                 by a file, a hardlink to a file of layer 1, a new file in a new dir
# Usage: mklayers.py OUTDIR
import io, os, sys, tarfile

def add(t, name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, link="", pax=None):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.linkname, ti.mtime = kind, mode, uid, gid, link, 1700000000
    if kind == tarfile.REGTYPE:
        ti.size = len(data)
    if pax:
        ti.pax_headers = pax
    t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

def main(out):
    with tarfile.open(os.path.join(out, "layers-1.tar"), "w", format=tarfile.PAX_FORMAT) as t:
        for d in ("etc", "opt", "opt/gone-dir", "opt/opaque", "opt/opaque/sub", "opt/was-dir", "srv"):
            add(t, d, tarfile.DIRTYPE, mode=0o755)
        add(t, "etc/motd", data=b"layer one\n")
        add(t, "opt/gone", data=b"to be whited out\n")
        add(t, "opt/gone-dir/file", data=b"x\n")
        add(t, "opt/opaque/old", data=b"old\n")
        add(t, "opt/opaque/sub/older", data=b"older\n")
        add(t, "opt/was-dir/inner", data=b"inner\n")
        add(t, "opt/was-file", data=b"was a file\n")
        add(t, "opt/link-me", data=b"hardlinked across layers\n", mode=0o600, uid=1000, gid=1000)
        add(t, "srv/setuid", data=b"#!/bin/sh\n", mode=0o4755)
        add(t, "srv/owned", data=b"owned\n", uid=1234, gid=5678, mode=0o640)
        add(t, "srv/cap", data=b"cap\n", mode=0o755,
            pax={"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"})
        add(t, "srv/symlink", tarfile.SYMTYPE, link="../etc/motd", mode=0o777)
        add(t, "srv/hard", tarfile.LNKTYPE, link="srv/owned")
        add(t, "srv/fifo", tarfile.FIFOTYPE, mode=0o644)
        add(t, "srv/" + "long-name-" * 20 + "end", data=b"long\n")
        add(t, "srv/ünïcødé-名前", data=b"utf-8\n")
        add(t, "srv/sticky", tarfile.DIRTYPE, mode=0o1777)
    with tarfile.open(os.path.join(out, "layers-2.tar"), "w", format=tarfile.PAX_FORMAT) as t:
        add(t, "opt/.wh.gone", data=b"")
        add(t, "opt/.wh.gone-dir", data=b"")
        add(t, "opt/opaque", tarfile.DIRTYPE, mode=0o755)
        add(t, "opt/opaque/.wh..wh..opq", data=b"")
        add(t, "opt/opaque/new", data=b"new\n")
        add(t, "opt/was-dir", data=b"now a file\n")
        add(t, "opt/was-file", tarfile.DIRTYPE, mode=0o755)
        add(t, "opt/was-file/inside", data=b"now a dir\n")
        add(t, "opt/link-too", tarfile.LNKTYPE, link="opt/link-me")
        add(t, "etc/motd", data=b"layer two\n")
        add(t, "new", tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000)
        add(t, "new/file", data=b"new file\n", uid=1000, gid=1000)

if __name__ == "__main__":
    main(sys.argv[1])
