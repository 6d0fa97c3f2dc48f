#!/usr/bin/env python3
# Write the guest initramfs: a gzip'd newc cpio holding /init (cove-init), the mount points it
# uses and /dev/console (c 5 1; without it init starts with no stdout). No root needed.
import gzip, os, sys

def entry(name, mode, data=b"", rdev=(0, 0), nlink=1):
    entry.ino += 1
    hdr = "070701" + "".join("%08X" % v for v in (
        entry.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0))
    out = hdr.encode() + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out

entry.ino = 0

def main(init_path, out_path):
    with open(init_path, "rb") as f:
        init = f.read()
    cpio = b"".join([
        entry("dev", 0o40755, nlink=2),
        entry("dev/console", 0o20600, rdev=(5, 1)),
        entry("proc", 0o40755, nlink=2),
        entry("sys", 0o40755, nlink=2),
        entry("run", 0o40755, nlink=2),
        entry("sysroot", 0o40755, nlink=2),
        entry("init", 0o100755, init),
        entry("TRAILER!!!", 0),
    ])
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(gzip.compress(cpio, compresslevel=6, mtime=0))
    os.replace(tmp, out_path)

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
