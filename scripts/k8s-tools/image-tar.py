#!/usr/bin/env python3
"""A one-layer image tarball (docker-archive format, what `ctr images import` reads) from a directory.

    image-tar.py OUT.tar NAME:TAG ROOTDIR [--entrypoint PATH ...] [--user UID:GID]

Used for the node's tiny images (the pod sandbox's pause program); no container engine needed.
"""
import argparse
import hashlib
import io
import json
import os
import tarfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("name")
    ap.add_argument("root")
    ap.add_argument("--entrypoint", nargs="+", default=None)
    ap.add_argument("--user", default="")
    a = ap.parse_args()

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        for dirpath, dirnames, filenames in os.walk(a.root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                path = os.path.join(dirpath, name)
                info = t.gettarinfo(path, os.path.relpath(path, a.root))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = 0
                if info.isfile():
                    with open(path, "rb") as f:
                        t.addfile(info, f)
                else:
                    t.addfile(info)
    data = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": a.entrypoint, "User": a.user, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "scripts/k8s-tools/image-tar.py"}],
    }
    cfg_bytes = json.dumps(cfg, sort_keys=True).encode()
    cfg_name = hashlib.sha256(cfg_bytes).hexdigest() + ".json"
    manifest = [{"Config": cfg_name, "RepoTags": [a.name], "Layers": ["layer.tar"]}]
    with tarfile.open(a.out, mode="w") as out:
        for name, blob in (("layer.tar", data), (cfg_name, cfg_bytes), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            out.addfile(info, io.BytesIO(blob))


if __name__ == "__main__":
    main()
