#!/usr/bin/env python3
"""Judge every dumped case of a real-kernel dump folder with `mambacheck compare`.

usage: judge_real.py DIR [--mambacheck PATH] [--filter SUBSTRING] [--jobs J] [--declare-forms]
Reads DIR/cases.json (written by dump_real_kernels.py), runs compare in each case's declared
arithmetic (with --declare-forms, also its kernel's form, `+form=`, from the case's "form"), and prints one line per case: expected (correct/bug), the verdict, and the largest
share of each allowance used. Exit 1 when a correct case fails or a bug case passes.
"""
import argparse
import concurrent.futures as cf
import json
import os
import subprocess
import sys
import tempfile


def judge(case, d, exe, forms=False):
    with tempfile.TemporaryDirectory() as t:
        rep = os.path.join(t, "r.json")
        cmd = [exe, "compare", "--variant", case["core"], "--inputs", os.path.join(d, case["inputs"]),
               "--candidate", os.path.join(d, case["candidate"]), "--layout", case["layout"],
               "--arith", case["arith"] + ("+form=" + case["form"] if forms and case.get("form") else ""),
               "--json", rep] + (["--scale", case["scale"]] if "scale" in case else [])
        p = subprocess.run(cmd, capture_output=True, text=True)
        r = json.load(open(rep)) if os.path.exists(rep) else None
    return case, p.returncode, r, p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--mambacheck", default=".build/release/mambacheck")
    ap.add_argument("--filter", default="")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--declare-forms", action="store_true")
    a = ap.parse_args()
    cases = [c for c in json.load(open(os.path.join(a.dir, "cases.json")))["cases"] if a.filter in c["name"]]
    wrong = 0
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        for case, rc, r, out in ex.map(lambda c: judge(c, a.dir, a.mambacheck, a.declare_forms), cases):
            shares = []
            if r:
                for c in r.get("cases", []):
                    v = c.get("verdict") or {}
                    nw = v.get("normwise") or {}
                    err, allowed = nw.get("candidateError"), nw.get("allowance")
                    # null in the JSON is a NaN/Inf error: report it as infinite
                    norm = (float("inf") if err is None else err / allowed) if allowed else None
                    shares.append("%s:%s/%s/%s" % (c.get("tensor"), fmt((v.get("margins") or {}).get("max")),
                                                   fmt((v.get("rows") or {}).get("worstShare")), fmt(norm)))
            ok = (rc == 0) == bool(case["correct"])
            wrong += not ok
            print("%-4s %-5s rc=%d %-70s %s" % ("ok" if ok else "XX", "good" if case["correct"] else "bug", rc,
                                             case["name"], " ".join(shares)), flush=True)
            if a.verbose and not ok:
                print(out[-3000:])
    print("%d of %d cases judged as expected" % (len(cases) - wrong, len(cases)))
    sys.exit(1 if wrong else 0)


def fmt(x):
    return "-" if x is None else "%.2g" % x


if __name__ == "__main__":
    main()
