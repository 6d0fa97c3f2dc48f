#!/usr/bin/env python3
# Write the offline `busybox` image as a tar stream (the same input an OCI layer is), from
# Debian's busybox-static: /bin/busybox, one hardlink per applet (as the docker image has),
# a minimal /etc and the usual empty directories. Owners and modes are set here, so no root
# is needed; cove-mkfs turns the tar into the ext4 image.
import io, os, subprocess, sys, tarfile

BUSYBOX = "/bin/busybox"

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
"""

def main(out):
    # a fixed time (the binary's own) keeps the image reproducible from build to build
    now = int(os.stat(BUSYBOX).st_mtime)
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    with open(BUSYBOX, "rb") as f:
        data = f.read()

    def info(name, kind, mode, size=0, link=""):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.linkname, ti.mtime = kind, mode, size, link, now
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        for d, mode in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755),
                        ("proc", 0o555), ("root", 0o700), ("sbin", 0o755), ("sys", 0o555),
                        ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755),
                        ("usr/sbin", 0o755), ("var", 0o755), ("var/spool", 0o755),
                        ("var/spool/mail", 0o755), ("var/www", 0o755)):
            t.addfile(info(d, tarfile.DIRTYPE, mode))
        t.addfile(info("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), io.BytesIO(data))
        for a in applets:
            if a != "bin/busybox":
                t.addfile(info(a, tarfile.LNKTYPE, 0o755, link="bin/busybox"))
        for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP),
                           ("etc/hostname", "busybox\n"),
                           ("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n")):
            b = text.encode()
            t.addfile(info(name, tarfile.REGTYPE, 0o644, len(b)), io.BytesIO(b))

if __name__ == "__main__":
    main(sys.argv[1])
