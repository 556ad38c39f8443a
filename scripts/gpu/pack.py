#!/usr/bin/env python3
"""Pack a dump folder into tar files of at most 15 MB each (the device tool returns files of
at most 16 MB). usage: pack.py DIR OUTPREFIX"""
import os
import sys
import tarfile

src, prefix = sys.argv[1], sys.argv[2]
limit = 15 * 2**20
files = sorted(os.listdir(src))
groups, cur, size = [], [], 0
for f in files:
    n = os.path.getsize(os.path.join(src, f))
    if cur and size + n > limit:
        groups.append(cur)
        cur, size = [], 0
    cur.append(f)
    size += n
if cur:
    groups.append(cur)
for i, g in enumerate(groups):
    with tarfile.open(f"{prefix}{i}.tar", "w") as t:
        for f in g:
            t.add(os.path.join(src, f), arcname=f)
    print(f"{prefix}{i}.tar: {len(g)} files")
