#!/usr/bin/python3
"""Independent cross-check of certified oracle values (Proofs/T7, issue 14).

Usage (from the package root):

    scripts/crosscheck-certified.py --core NAME --inputs IN.npz --reference REF.npz [--scale DECIMAL]

IN.npz holds q, k, v [B,H,N,d] (bhnd), optionally a [B,H,N], initial_state
[B,H,F,dv], initial_state_z [B,H,F] and do [B,H,N,dv]; REF.npz is what
`mambacheck reference --variant NAME --final-state --grad --inputs IN.npz` wrote.
The scale is exactly 1/sqrt(dk) unless --scale gives a decimal.

For every element of o, final_state, final_state_z and every gradient (dq, dk,
dv, da, da_cumsum, dinitial_state, dinitial_state_z) it recomputes the exact
value in mpmath at 700 bits and requires the stored Float64 to be that value
rounded to nearest — bit for bit. Outputs and final states come
from the formulas of docs/MATH.md §1 and §0 (`core_row`, `core_final_state` of
scripts/crosscheck-fixtures.py, reused); gradients from central differences of
ℓ = Σ o·do with step h = 2^-200 (truncation ~h² = 2^-400, rounding ~2^-700/h =
2^-500 relative to the gradients' scale), which shares no formula with the
analytic gradients. An element whose recomputed value is within 2^-380 (relative
to the tensor's scale) of a Float64 rounding boundary — an exact tie, which
sums of a few binary32 products often are, or an exact zero gradient known only
to that accuracy — is counted as "near a boundary" and may be undecided (NaN);
any other NaN in REF.npz must be a zero normaliser here.

Output: one line per tensor, `name  n-elements  mismatches  ok|FAIL`, then
`N passed, M failed`. Exit 0 iff every element matches, 1 otherwise, 2 on a
missing or malformed file. `--plant` perturbs one value of o by one ulp in
memory first and exits 0 iff exactly that element is reported (the checker's
power).
"""
import argparse
import importlib.util
import math
import os
import struct
import sys

try:
    import mpmath
except ImportError:  # re-run under Debian's interpreter, which has python3-mpmath
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("crosscheck_fixtures", os.path.join(HERE, "crosscheck-fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

mpmath.mp.prec = 700
mpf = mpmath.mpf
H = mpf(2) ** -200
BOUNDARY = mpf(2) ** -380

CORES = {}
for score in ("linear", "relu-linear", "squared", "exponential"):
    for decay in (True, False):
        for norm in ("none", "sum"):
            if score == "linear" and norm == "sum":
                continue
            CORES[f"{score}-{'decay' if decay else 'nodecay'}-{norm}"] = (score, decay, norm)


def nested(arr, lead):
    """Array → list of `lead`-indexed sub-lists of mpf."""
    vals = [mpf(x) for x in arr.values]
    shape = list(arr.shape)
    def build(off, dims):
        if not dims:
            return vals[off]
        step = 1
        for d in dims[1:]:
            step *= d
        return [build(off + i * step, dims[1:]) for i in range(dims[0])]
    return build(0, shape)


def forward(core, s, inp):
    """o [B][H][N][dv] and (S [B][H][F][dv], z [B][H][F]) of the problem `inp` (mpf lists)."""
    score, decay, norm = core
    q, k, v, a = inp["q"], inp["k"], inp["v"], inp.get("a")
    s0, z0 = inp.get("initial_state"), inp.get("initial_state_z")
    B, Hh, N = len(q), len(q[0]), len(q[0][0])
    relu = (lambda x: max(x, mpf(0))) if score == "relu-linear" else (lambda x: x)
    o, S, Z = [], [], []
    for b in range(B):
        ob, Sb, Zb = [], [], []
        for h in range(Hh):
            qq = [[relu(x) for x in row] for row in q[b][h]]
            kk = [[relu(x) for x in row] for row in k[b][h]]
            aa = a[b][h] if (decay and a is not None) else None
            st = s0[b][h] if s0 is not None else None
            zt = z0[b][h] if z0 is not None else None
            ob.append([fx.core_row(score, decay, norm, s, qq, kk, v[b][h], aa, i, st, zt) for i in range(N)])
            if score != "exponential":
                f_dim = len(fx.phi(score, kk[0]))
                dv = len(v[b][h][0])
                zero_s = st if st is not None else [[mpf(0)] * dv for _ in range(f_dim)]
                Sh, Zh = [], []
                for f in range(f_dim):
                    row = []
                    for c in range(dv):
                        sv, zv = fx.core_final_state(score, decay, kk, v[b][h], aa, zero_s, zt, f, c)
                        row.append(sv)
                    Sh.append(row)
                    Zh.append(zv)
                Sb.append(Sh)
                Zb.append(Zh)
        o.append(ob)
        S.append(Sb)
        Z.append(Zb)
    return o, S, Z


def flat(x):
    return [y for e in x for y in flat(e)] if isinstance(x, list) else [x]


def loss(core, s, inp, do):
    o, _, _ = forward(core, s, inp)
    return mpmath.fsum(a * b for a, b in zip(flat(o), flat(do)))


def set_flat(x, idx, value):
    """Writes element `idx` (row-major) of nested list x; returns the old value."""
    counter = [0]
    def walk(e):
        for i in range(len(e)):
            if isinstance(e[i], list):
                r = walk(e[i])
                if r is not None:
                    return r
            else:
                if counter[0] == idx:
                    old = e[i]
                    e[i] = value
                    return (old,)
                counter[0] += 1
        return None
    return walk(x)[0]


def gradient(core, s, inp, do, name, idx, cumsum=False):
    """∂ℓ/∂(element idx of input `name`) by a central difference; with `cumsum`,
    with respect to the prefix sum L_t (a_t += h, a_{t+1} −= h)."""
    def at(delta):
        old = set_flat(inp[name], idx, None)
        set_flat(inp[name], idx, old + delta)
        nxt = None
        if cumsum:
            n = len(inp["a"][0][0])
            if (idx + 1) % n != 0:
                nxt = set_flat(inp[name], idx + 1, None)
                set_flat(inp[name], idx + 1, nxt - delta)
        value = loss(core, s, inp, do)
        set_flat(inp[name], idx, old)
        if nxt is not None:
            set_flat(inp[name], idx + 1, nxt)
        return value
    return (at(H) - at(-H)) / (2 * H)


def compare(name, stored, exact):
    """(mismatches, near) of Float64 values `stored` against exact mpf values.

    An exact value y known to ±t, t = 2^-380·max(|y|, max|exact|) (the central
    differences' error is absolute, relative to the tensor's scale), is "near" a
    rounding boundary when y − t and y + t round differently (an exact tie, an
    exact zero known only to ±t): the oracle may then leave it undecided (NaN)
    or give either neighbour, or any value within [y − t, y + t]. Otherwise the
    stored value must be y rounded to nearest, bit for bit."""
    bad, near = [], 0
    scale = max([abs(y) for y in exact if isinstance(y, mpf) and not mpmath.isnan(y)] + [mpf(0)])
    for e, (f64, y) in enumerate(zip(stored, exact)):
        if not isinstance(y, mpf) or mpmath.isnan(y):
            if not math.isnan(f64):
                bad.append(e)
            continue
        t = BOUNDARY * max(abs(y), scale, mpf(2) ** -1000)
        lo, hi = y - t, y + t
        if float(lo) != float(hi):
            near += 1
            if not (math.isnan(f64) or f64 in (float(lo), float(hi)) or lo <= mpf(f64) <= hi):
                bad.append(e)
            continue
        if math.isnan(f64) or float(y) != f64:
            bad.append(e)
    return bad, near


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--core", required=True, choices=sorted(CORES))
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--scale")
    ap.add_argument("--plant", action="store_true")
    args = ap.parse_args()
    core = CORES[args.core]
    try:
        raw = fx.read_npz(args.inputs)
        ref = fx.read_npz(args.reference)
    except fx.Malformed as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    inp = {name: nested(arr, 0) for name, (_, arr) in raw.items() if name != "do"}
    if "do" not in raw:
        print(f"error: {args.inputs}: no array 'do'", file=sys.stderr)
        return 2
    do = nested(raw["do"][1], 0)
    dk = raw["q"][1].shape[-1]
    s = mpf(args.scale) if args.scale else 1 / mpmath.sqrt(dk)
    o, S, Z = forward(core, s, inp)
    checks = [("o", flat(o))]
    if core[0] != "exponential" and "final_state" in ref:
        checks.append(("final_state", flat(S)))
        if core[2] == "sum":
            checks.append(("final_state_z", flat(Z)))
    names = [("dq", "q", False), ("dk", "k", False), ("dv", "v", False)]
    if core[1]:
        names += [("da", "a", False), ("da_cumsum", "a", True)]
    if "initial_state" in inp:
        names.append(("dinitial_state", "initial_state", False))
        if "initial_state_z" in inp:
            names.append(("dinitial_state_z", "initial_state_z", False))
    for gname, iname, cumsum in names:
        count = len(flat(inp[iname]))
        checks.append((gname, [gradient(core, s, inp, do, iname, e, cumsum) for e in range(count)]))
    failed = passed = 0
    planted = None
    for name, exact in checks:
        if name not in ref:
            print(f"{name:18s} missing from {args.reference}  FAIL")
            failed += 1
            continue
        stored = list(ref[name][1].values)
        if args.plant and name == "o":
            stored[0] = math.nextafter(stored[0], math.inf)
            planted = (name, 0)
        if len(stored) != len(exact):
            print(f"{name:18s} {len(stored)} elements, expected {len(exact)}  FAIL")
            failed += 1
            continue
        bad, near = compare(name, stored, exact)
        ok = not bad
        print(f"{name:18s} {len(stored):5d} elements  {len(bad)} mismatches  {near} near a boundary  {'ok' if ok else 'FAIL'}"
              + (f"  (first: {bad[:5]})" if bad else ""))
        if args.plant and name == "o":
            ok = bad == [0]
        passed += ok
        failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
