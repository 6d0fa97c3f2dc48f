#!/usr/bin/env python3
# Compare two root filesystem trees: paths, types, modes, owners, sizes, contents, symlink
# targets, hardlink groups, xattrs and file mtimes. Prints one line per difference (at most
# 20) and exits 1 if there is any. lost+found (ext4's own) is ignored.
# Usage: treediff.py EXPECTED ACTUAL
import hashlib, os, stat, sys

def walk(top):
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, top)
            if rel == "lost+found":
                continue
            st = os.lstat(full)
            e = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                 "uid": st.st_uid, "gid": st.st_gid}
            try:
                e["xattrs"] = {k: os.getxattr(full, k, follow_symlinks=False)
                               for k in sorted(os.listxattr(full, follow_symlinks=False))}
            except OSError:
                e["xattrs"] = {}
            if stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                e.update(size=st.st_size, sha256=h.hexdigest(), mtime=int(st.st_mtime),
                         nlink=st.st_nlink)
            elif stat.S_ISLNK(st.st_mode):
                e.update(target=os.readlink(full), mtime=int(st.st_mtime))
                e.pop("mode")
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                e.update(rdev=st.st_rdev)
            out[rel] = e
    return out

def main(a, b):
    ea, eb = walk(a), walk(b)
    diffs = []
    for p in sorted(set(ea) | set(eb)):
        if p not in eb:
            diffs.append(f"missing: {p}")
        elif p not in ea:
            diffs.append(f"extra: {p}")
        elif ea[p] != eb[p]:
            keys = [k for k in ea[p] if ea[p].get(k) != eb[p].get(k)]
            diffs.append(f"differs: {p}: " + ", ".join(f"{k} {ea[p].get(k)!r} != {eb[p].get(k)!r}" for k in keys))
    for d in diffs[:20]:
        print(d)
    if len(diffs) > 20:
        print(f"... {len(diffs) - 20} more")
    print(f"{len(ea)} entries expected, {len(eb)} found, {len(diffs)} differences", file=sys.stderr)
    return 1 if diffs else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
