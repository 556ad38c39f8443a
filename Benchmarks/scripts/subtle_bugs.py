#!/usr/bin/env python3
"""Subtle planted bugs on real kernels' correct outputs: how many does the verdict catch?

For every correct case of a real-kernel dump folder (Fixtures/real, or a dump_real_kernels.py
output), computes the certified oracle (`mambacheck reference`), measures the kernel's own
error, and plants bugs sized at FACTOR times that error on top of the kernel's real output:

  uniform      o * (1 + F*eps)                    eps = ||c - y|| / ||y|| over the whole o
  row          one row (seeded) + F*eps*||y_r|| in a random direction
  row-scale    one row (seeded) * (1 + F*eps)
  boundary     the rows at chunk starts (t % 64 == 0, t > 0) * (1 + F*eps)
  state        final_state * (1 + F*eps_S)          eps_S: the final state's own error
  last-row-0   the last row zeroed (gross)
  decay        one decay value (seeded b, h, t) off: the exact first-order change of the oracle
               when that log-decay moves (for prefix-sum inputs, every prefix sum from t on),
               scaled to F*eps*||y|| over the whole o
  with --grads, for cases dumped with gradients (eps_g: the gradient's own error):
  grad-uniform every gradient g * (1 + F*eps_g), one at a time
  grad-row     one row (seeded) of dq, dk, dv + F*eps_g*||g_r|| in a random direction

Each bug is rounded back to the kernel's storage format and judged by `mambacheck compare` in the
case's declared arithmetic. A correct verdict fails every bug; the summary prints caught/total per
bug type, and each miss with the kernel's error.

With --declare-forms each case also declares its kernel's form (`+form=`, from the kernel's name: FLA's
fused_recurrent -> recurrent, chunk kernels and the SSD -> chunked, parallel -> quadratic, the tiled Triton
2Mamba -> tiled).

usage: subtle_bugs.py DIR [--factor 8] [--rows 3] [--mambacheck PATH] [--keep WORK] [--declare-forms] [--grads]
                      [--kinds uniform,row,...]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "python"))
import mambacheck_runner as mr  # noqa: E402  (NumPy-only safetensors reader and writer)
sys.path.insert(0, os.path.join(ROOT, "scripts", "gpu"))
from kernel_forms import kernel_form  # noqa: E402


def load(path):
    if path.endswith(".safetensors"):
        with open(path, "rb") as f:
            data = f.read()
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n])
        arrays, dtypes = mr.load_safetensors(path)
        for name, meta in header.items():
            if name != "__metadata__" and name not in dtypes:
                dtypes[name] = {"F16": "float16", "F32": "float32", "F64": "float64"}.get(meta["dtype"], "other")
        return arrays, dtypes
    with np.load(path) as z:
        return {k: z[k] for k in z.files}, {k: str(z[k].dtype) for k in z.files}


def stored(x, dtype):
    if dtype == "bfloat16":
        return mr.bfloat16(x.astype(np.float32))
    return x.astype(dtype)


def rows_view(x, layout):
    """o as [B, H, N, d] (a view for bhnd, a transposed copy for bnhd) and its inverse."""
    if layout == "bnhd":
        return x.transpose(0, 2, 1, 3).copy(), (lambda r: r.transpose(0, 2, 1, 3))
    return x.copy(), (lambda r: r)


def decay_bug(c, inputs, name, ref_cmd, work, rng, size, y):
    """The oracle's change when one log-decay value moves, scaled to norm `size`.

    The change is measured with a small exact move (1e-3 in the float32 input) and scaled
    linearly: at 8x a kernel's error the planted move is far smaller, where the output is linear in it.
    A kernel handed prefix sums sees one step's decay off as every prefix sum from t on moved."""
    arrays, _ = mr.load_safetensors(inputs)
    a = arrays[name].astype(np.float32).copy()
    # decays are [B, N, H] in bnhd and [B, H, N] in bhnd
    b, h = rng.integers(a.shape[0]), rng.integers(a.shape[2] if c["layout"] == "bnhd" else a.shape[1])
    n = a.shape[1] if c["layout"] == "bnhd" else a.shape[2]
    t = rng.integers(n)
    sl = slice(t, None) if name == "a_cumsum" else slice(t, t + 1)
    if c["layout"] == "bnhd":
        a[b, sl, h] = (a[b, sl, h].astype(np.float64) - 1e-3).astype(np.float32)
    else:
        a[b, h, sl] = (a[b, h, sl].astype(np.float64) - 1e-3).astype(np.float32)
    moved = dict(arrays)
    moved[name] = a
    path = os.path.join(work, f"{c['name']}.decay-inputs.safetensors")
    with open(path, "wb") as f:
        mr.write_safetensors(f, moved)
    out = os.path.join(work, f"{c['name']}.decay-ref.npz")
    cmd = list(ref_cmd)
    cmd[cmd.index("--inputs") + 1] = path
    cmd[cmd.index("--output") + 1] = out
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    delta = np.load(out)["o"] - y
    return delta * (size / np.linalg.norm(delta))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--factor", type=float, default=8.0)
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--mambacheck", default=os.path.join(ROOT, ".build/release/mambacheck"))
    ap.add_argument("--keep", default=None)
    ap.add_argument("--filter", default="")
    ap.add_argument("--declare-forms", action="store_true")
    ap.add_argument("--grads", action="store_true",
                    help="also plant gradient bugs: each gradient scaled by 1 + F*eps_g (its own error), "
                         "and one row of dq/dk/dv moved by F*eps_g*||g_r|| (cases dumped with do)")
    ap.add_argument("--kinds", default="", help="comma-separated bug kinds to plant (default: all)")
    args = ap.parse_args()
    kinds = set(args.kinds.split(",")) if args.kinds else None
    cases = [c for c in json.load(open(os.path.join(args.dir, "cases.json")))["cases"]
             if c["correct"] and args.filter in c["name"]]
    work = args.keep or tempfile.mkdtemp(prefix="subtle-")
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(20261206)
    grng = np.random.default_rng(20261207)  # gradient bugs: their own stream, so o's rows stay as before
    drng = np.random.default_rng(20261208)  # decay bugs: their own stream too
    tally, misses = {}, []
    for c in cases:
        inputs = os.path.join(args.dir, c["inputs"])
        cand_path = os.path.join(args.dir, c["candidate"])
        cand, dtypes = load(cand_path)
        ref = os.path.join(work, c["name"] + ".ref.npz")
        cmd = [args.mambacheck, "reference", "--variant", c["core"], "--inputs", inputs, "--output", ref,
               "--layout", c["layout"]]
        if c.get("scale"):
            cmd += ["--scale", c["scale"]]
        if "final_state" in cand:
            cmd += ["--final-state"]
        if not os.path.exists(ref):
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        y = dict(np.load(ref))
        o = cand["o"].astype(np.float64)
        eps = np.linalg.norm(o - y["o"]) / np.linalg.norm(y["o"])
        ob, back = rows_view(o, c["layout"])
        yb, _ = rows_view(y["o"], c["layout"])
        B, H, N, D = ob.shape
        bugs, own, eps_of = {}, {}, {}
        bugs["uniform"] = {"o": o * (1 + args.factor * eps)}
        for k in range(args.rows):
            b, h, t = rng.integers(B), rng.integers(H), rng.integers(N)
            d = rng.standard_normal(D)
            r = ob.copy()
            r[b, h, t] += args.factor * eps * np.linalg.norm(yb[b, h, t]) * d / np.linalg.norm(d)
            bugs[f"row#{k}"] = {"o": back(r)}
            # The bug's size over the correct kernel's own error on that row: below ~2 no
            # sound verdict can tell the bug from the row's legitimate error.
            row_err = np.linalg.norm(ob[b, h, t] - yb[b, h, t])
            own[f"row#{k}"] = own[f"row-scale#{k}"] = (
                args.factor * eps * np.linalg.norm(yb[b, h, t]) / row_err if row_err > 0 else float("inf"))
            r = ob.copy()
            r[b, h, t] *= 1 + args.factor * eps
            bugs[f"row-scale#{k}"] = {"o": back(r)}
        if N > 64:
            r = ob.copy()
            r[:, :, 64::64] *= 1 + args.factor * eps
            bugs["boundary"] = {"o": back(r)}
        if "final_state" in cand and "final_state" in y:
            s = cand["final_state"].astype(np.float64)
            eps_s = np.linalg.norm(s - y["final_state"]) / np.linalg.norm(y["final_state"])
            bugs["state"] = {"final_state": s * (1 + args.factor * eps_s)}
        r = ob.copy()
        r[:, :, N - 1] = 0
        bugs["last-row-0"] = {"o": back(r)}
        decay_name = next((n for n in ("g", "a", "a_cumsum") if n in mr.load_safetensors(inputs)[0]), None)
        if decay_name and (kinds is None or "decay" in kinds):
            bugs["decay"] = {"o": o + decay_bug(c, inputs, decay_name, cmd, work, drng, args.factor * eps
                                                * np.linalg.norm(y["o"]), y["o"])}
        grads = [n for n in ("dq", "dk", "dv", "dg", "da", "dinitial_state") if n in cand]
        if args.grads and grads:
            gref = os.path.join(work, c["name"] + ".gref.npz")
            if not os.path.exists(gref):
                subprocess.run(cmd[:cmd.index("--output") + 1] + [gref] + cmd[cmd.index("--output") + 2:]
                               + ["--grad"], check=True, stdout=subprocess.DEVNULL)
            gy = dict(np.load(gref))
            for n in grads:
                g = cand[n].astype(np.float64)
                yg = gy["da" if n == "dg" else n]
                eps_g = np.linalg.norm(g - yg) / np.linalg.norm(yg)
                bugs[f"grad-uniform#{n}"] = {n: g * (1 + args.factor * eps_g)}
                eps_of[f"grad-uniform#{n}"] = eps_of[f"grad-row#{n}"] = eps_g
                if n in ("dq", "dk", "dv"):
                    gb, gback = rows_view(g, c["layout"])
                    ygb, _ = rows_view(yg, c["layout"])
                    b, h, t = grng.integers(gb.shape[0]), grng.integers(gb.shape[1]), grng.integers(gb.shape[2])
                    d = grng.standard_normal(gb.shape[3])
                    row_err = np.linalg.norm(gb[b, h, t] - ygb[b, h, t])
                    own[f"grad-row#{n}"] = (args.factor * eps_g * np.linalg.norm(ygb[b, h, t]) / row_err
                                            if row_err > 0 else float("inf"))
                    gb[b, h, t] += args.factor * eps_g * np.linalg.norm(ygb[b, h, t]) * d / np.linalg.norm(d)
                    bugs[f"grad-row#{n}"] = {n: gback(gb)}
        for bug, change in bugs.items():
            if kinds is not None and bug.split("#")[0] not in kinds:
                continue
            out = {}
            for n, x in cand.items():
                if n in change:
                    out[n] = stored(np.asarray(change[n], dtype=np.float64), dtypes.get(n, "float32"))
                elif dtypes.get(n) == "bfloat16":
                    out[n] = mr.bfloat16(x)  # exact: x holds bfloat16 values
                else:
                    out[n] = x
            path = os.path.join(work, f"{c['name']}.{bug.replace('#', '-')}.safetensors")
            with open(path, "wb") as f:
                mr.write_safetensors(f, out)
            arith = c["arith"]
            form = c.get("form") or kernel_form(c["name"])
            if args.declare_forms and form:
                arith += "+form=" + form
            cmd = [args.mambacheck, "compare", "--variant", c["core"], "--inputs", inputs, "--candidate", path,
                   "--layout", c["layout"], "--arith", arith]
            if c.get("scale"):
                cmd += ["--scale", c["scale"]]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
            kind = bug.split("#")[0]
            caught = r.returncode == 1
            t = tally.setdefault(kind, [0, 0])
            t[0] += caught
            t[1] += 1
            if not caught:
                extra = f", bug / own row error {own[bug]:.3g}" if bug in own else ""
                misses.append(f"{c['name']} {bug}: exit {r.returncode}, kernel eps {eps_of.get(bug, eps):.3g} ({c['arith']}){extra}")
            print(f"{'caught' if caught else 'MISSED'}  {c['name']} {bug}", flush=True)
    print(f"\nfactor {args.factor} x the kernel's own error, {len(cases)} correct kernels")
    for kind, (k, n) in tally.items():
        print(f"  {kind:12s} {k} of {n}")
    for m in misses:
        print("  miss: " + m)
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
