#!/usr/bin/python3
"""Independent cross-check of the golden vectors in Fixtures/.

Usage (from the package root):

    scripts/crosscheck-fixtures.py [--dir Fixtures] [--family NAME ...] [--plant [NAME ...]]

For every case of Fixtures/manifest.json (14 attention cores, 9 block presets)
it recomputes a fixed, deterministic sample of reference values in
arbitrary precision (mpmath, 256 bits) from the stored Float32 inputs, written
from the mathematics of docs/MATH.md §1, §2 and §4, and compares them with the
50-significant-digit decimals of NAME.reference.txt. It does not run or import
any Swift code, and it takes nothing from the generator but the stored inputs,
the manifest's score scale and the decimal strings.

Output: one line per case, `family  n-elements  max-rel-diff  ok|FAIL`, then
`N passed, M failed`. Exit status 0 iff every case passes, 1 if any fails, 2
if a file is missing or malformed (the message names it).

`--plant [NAME ...]` is the self-test of the checker's power: it multiplies one
sampled decimal reference value of each named case (all cases if none are
named) by 1 + 1e-30 in memory, and then exits 0 iff exactly the planted cases
FAIL.

Dependencies. Only the Python 3 standard library and mpmath. The .npz/.npy
files are read by the small reader below (zipfile + struct: little-endian
'<f4'/'<f8', C order, which is all the fixtures use) rather than with NumPy, so
a CI machine needs a single Debian package, python3-mpmath (scripts/ensure-deps
installs it), and no pip. The shebang is Debian's /usr/bin/python3 because the
default `python3` on a developer machine may be a pyenv/venv interpreter
without mpmath; conversely, started by an interpreter that lacks mpmath, the
script re-executes itself once under /usr/bin/python3. mpmath uses gmpy2 when
present (python3-gmpy2) but does not need it: the whole run takes ~3 s on one
core with Debian's mpmath 1.2.1 and its pure-Python backend.

What is compared (agreement "to the stated digits", README: 50 significant
digits of a 256-bit, correctly rounded oracle value):

  |mine - ref| <= REL_TOL * max(|ref|, ABS_FLOOR / REL_TOL)   i.e.
  |mine - ref| <= max(1e-45 * |ref|, 1e-60).

  REL_TOL = 1e-45: a 50-digit decimal is within 5e-50 relative of the oracle's
  value, the oracle (256 bits) and this script (256 bits) are each within
  ~1e-70 relative on these well-conditioned inputs; 1e-45 leaves ~4 orders of
  margin over the decimal rounding and still fails any discrepancy above
  1e-45 -- far below Float64 (1e-16), so it catches convention errors and
  any lower-precision step in the oracle.
  ABS_FLOOR = 1e-60: every input is O(1) (q, k, v ~ N(0, 0.25), x ~ N(0, 1),
  block parameters of magnitude <= ~7) and every output is a sum of at most a few
  thousand terms of magnitude <= ~1e2, so both computations' absolute
  rounding errors are < 1e-70; the floor only matters for references smaller
  than 1e-15 (the smallest in the current set is ~1e-6, so it never weakens
  the relative test there) and keeps an exact zero (a relu-linear row with
  no positive feature) from requiring a division by zero.
  NaN (a zero denominator of a sum-normalised row) must be NaN in both.

Also checked, for all elements (not only the sample): the .reference.txt lists
every element of every array of the .reference.npz exactly once, and each
Float64 value of the .npz is the value its decimal stands for rounded to
nearest, ties to even (see float64_matches: exact ties occur); the SHA-256 and
size of every file against the manifest; the block's components against the
preset table of docs/MATH.md §2.

The sample (deterministic, see core_sample/block_sample): cores, 12 tokens
(0, 1, 2, 6, 11, 17, 22, 28, 33, 37, 38, 39 for N = 40) in each of the 2
heads = 24 elements of `o`, channels varied; plus 8 elements of `final_state`
(all 8 features for first-order cores; features 0, 1, 2, 12, 23, 33, 34, 35
of φ₂, i.e. diagonal and √2 cross terms) and 4 of `final_state_z` where the
core has them. Blocks, 12 tokens (0, 1, 2, 3 -- inside the convolution's zero
padding -- 7, 10, 13, 16, 20, 21, 22, 23) x 2 output channels = 24 elements
of `out`.
"""

import argparse
import ast
import hashlib
import json
import math
import os
import struct
import sys
import time
import zipfile

try:
    import mpmath
except ImportError:  # re-run under Debian's interpreter, which has python3-mpmath
    _SYS_PY = "/usr/bin/python3"
    if (os.path.exists(_SYS_PY) and not os.environ.get("CROSSCHECK_FIXTURES_REEXEC")
            and os.path.realpath(sys.executable) != os.path.realpath(_SYS_PY)):
        os.environ["CROSSCHECK_FIXTURES_REEXEC"] = "1"
        os.execv(_SYS_PY, [_SYS_PY, os.path.abspath(__file__)] + sys.argv[1:])
    sys.stderr.write("crosscheck-fixtures: needs the Python module mpmath "
                     "(Debian: apt-get install python3-mpmath, or run scripts/ensure-deps)\n")
    sys.exit(2)

mp = mpmath.mp
mpf = mpmath.mpf
mp.prec = 256

REL_TOL = mpf("1e-45")
ABS_FLOOR = mpf("1e-60")
PLANT = mpf("1e-30")


class Malformed(Exception):
    """A missing or malformed file (exit status 2)."""


# --------------------------------------------------------------------------
# Files: .npy/.npz (stdlib), decimal listings, manifest.

class Array:
    """A row-major array of Python floats (exact Float32/Float64 values)."""

    def __init__(self, shape, values):
        self.shape = tuple(shape)
        self.values = values
        self.strides = []
        acc = 1
        for n in reversed(self.shape):
            self.strides.insert(0, acc)
            acc *= n

    def flat_index(self, idx):
        return sum(i * s for i, s in zip(idx, self.strides))

    def __getitem__(self, idx):
        return self.values[self.flat_index(idx)]

    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n


def read_npy(data, where):
    if data[:6] != b"\x93NUMPY":
        raise Malformed(f"{where}: not a .npy array (bad magic)")
    major = data[6]
    if major == 1:
        (hlen,), off = struct.unpack("<H", data[8:10]), 10
    elif major in (2, 3):
        (hlen,), off = struct.unpack("<I", data[8:12]), 12
    else:
        raise Malformed(f"{where}: unsupported .npy version {major}")
    try:
        header = ast.literal_eval(data[off:off + hlen].decode("latin1"))
        descr, fortran, shape = header["descr"], header["fortran_order"], tuple(header["shape"])
    except Exception as e:  # noqa: BLE001
        raise Malformed(f"{where}: unreadable .npy header ({e})")
    formats = {"<f4": ("f", 4), "<f8": ("d", 8)}
    if descr not in formats or fortran:
        raise Malformed(f"{where}: dtype {descr!r}, fortran_order={fortran}: expected '<f4'/'<f8' in C order")
    code, size = formats[descr]
    n = 1
    for d in shape:
        n *= d
    body = data[off + hlen:]
    if len(body) != n * size:
        raise Malformed(f"{where}: {len(body)} data bytes for shape {shape} of {descr} (expected {n * size})")
    return descr, Array(shape, list(struct.unpack(f"<{n}{code}", body)))


def read_npz(path):
    """{name: (descr, Array)}"""
    if not os.path.isfile(path):
        raise Malformed(f"{path}: missing")
    try:
        with zipfile.ZipFile(path) as z:
            out = {}
            for member in z.namelist():
                if not member.endswith(".npy"):
                    raise Malformed(f"{path}: member {member!r} is not a .npy array")
                out[member[:-4]] = read_npy(z.read(member), f"{path}:{member}")
            return out
    except zipfile.BadZipFile as e:
        raise Malformed(f"{path}: not a zip (.npz) file ({e})")


def read_listing(path):
    """{name: {index tuple: decimal string}} from a NAME.reference.txt."""
    if not os.path.isfile(path):
        raise Malformed(f"{path}: missing")
    values = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            try:
                key, text = line.split(" = ")
                name, index = key.split("[")
                if not index.endswith("]"):
                    raise ValueError("no closing bracket")
                idx = tuple(int(i) for i in index[:-1].split(","))
                parse_decimal(text)
            except ValueError as e:
                raise Malformed(f"{path}:{number}: malformed line {line!r} ({e})")
            table = values.setdefault(name, {})
            if idx in table:
                raise Malformed(f"{path}:{number}: {name}{list(idx)} listed twice")
            table[idx] = text.strip()
    return values


def parse_decimal(text):
    t = text.strip().lower()
    if t == "nan":
        return mpmath.mpf("nan")
    if t in ("inf", "+inf"):
        return mpmath.inf
    if t == "-inf":
        return -mpmath.inf
    float(t)  # raises ValueError on anything that is not a decimal number
    return mpf(t)


DEC_SLACK = mpf("1e-49")  # a 50-significant-digit decimal is within 5e-50 relative of the oracle value


def float64_matches(text, f64):
    """Whether the Float64 `f64` is the oracle value, known to 50 digits as
    `text`, rounded to nearest (ties to even).

    Not simply float(text) == f64: many values are exact short binary numbers
    (a no-decay first-order final state is a sum of products of Float32
    numbers) and some lie exactly halfway between two doubles; the oracle
    rounds such a tie to even, but its 50-digit decimal may fall on either side
    of the midpoint, so rounding the decimal can give the other neighbour. So:
    f64 must be within half a gap of the decimal (up to the decimal's own
    rounding), and, where the decimal is within that rounding of the midpoint,
    f64 must be the neighbour with the even significand."""
    d = parse_decimal(text)
    if mpmath.isnan(d) or math.isnan(f64):
        return mpmath.isnan(d) and math.isnan(f64)
    if mpmath.isinf(d) or math.isinf(f64):
        return d == f64
    x = mpf(f64)
    if x == d:
        return True
    toward = math.nextafter(f64, math.inf if d > x else -math.inf)
    half_gap = abs(mpf(toward) - x) / 2
    off = abs(d - x) - half_gap
    slack = DEC_SLACK * abs(d)
    if off > slack:
        return False  # farther than half a gap: not the nearest double
    if off < -slack:
        return True   # clearly nearest
    return struct.unpack("<Q", struct.pack("<d", f64))[0] & 1 == 0  # a tie: even significand


def sci(x, digits=50):
    """x with `digits` significant digits, as the listings print it (d.ddd…e±XX)."""
    if x == 0:
        return "0"
    text = mpmath.nstr(x, digits, strip_zeros=False, min_fixed=1, max_fixed=0)
    if "e" not in text:
        text += "e+0"
    mant, exp = text.split("e")
    return f"{mant}e{int(exp):+03d}"


def indices(shape):
    if not shape:
        yield ()
        return
    for i in range(shape[0]):
        for rest in indices(shape[1:]):
            yield (i,) + rest


# --------------------------------------------------------------------------
# The mathematics (docs/MATH.md §1, §2, §4), in mpmath.

def relu(x):
    return x if x > 0 else mpf(0)


def silu(x):
    return x / (1 + mpmath.exp(-x))


def softplus(x):
    return mpmath.log1p(mpmath.exp(x))


def phi(score, x):
    """Feature map: identity (ReLU already applied for relu-linear) or the packed
    second-order map φ₂(x)_(p,q) = c_pq x_p x_q, p ≤ q, row-major upper triangle,
    c_pp = 1, c_pq = √2 (docs/MATH.md §4)."""
    if score in ("linear", "relu-linear"):
        return list(x)
    r2 = mpmath.sqrt(2)
    out = []
    for p in range(len(x)):
        for q in range(p, len(x)):
            out.append(x[p] * x[q] if p == q else r2 * x[p] * x[q])
    return out


def core_row(score, decay, norm, s, q, k, v, a, i, s0=None, z0=None):
    """y_i of docs/MATH.md §1 (all dv channels) for one sequence: q, k [N][dk] (ReLU
    already applied for relu-linear), v [N][dv], a [N] or None, plus the
    initial-state term c·exp(L_i)·φ(q_i)ᵀS₀ (and ·z₀ in the denominator).

    The decay exponent of key j is the segment sum a_{j+1} + … + a_i, built by
    walking j down from i (a token never decays its own key); after the walk it
    is a_0 + … + a_i = L_i, the decay of the initial state."""
    dv = len(v[0])
    num = [mpf(0)] * dv
    den = mpf(0)
    seg = mpf(0)
    for j in range(i, -1, -1):
        x = s * mpmath.fdot(q[i], k[j])
        if score == "exponential":
            w = mpmath.exp(x + seg)
        else:
            w = x * x if score == "squared" else x
            if decay:
                w *= mpmath.exp(seg)
        for c in range(dv):
            num[c] += w * v[j][c]
        den += w
        if decay:
            seg += a[j]
    if s0 is not None:
        g = (s * s if score == "squared" else s) * (mpmath.exp(seg) if decay else 1)
        fq = phi(score, q[i])
        for c in range(dv):
            num[c] += g * mpmath.fdot(fq, [row[c] for row in s0])
        if z0 is not None:
            den += g * mpmath.fdot(fq, z0)
    if norm == "sum":
        return [mpmath.mpf("nan") if den == 0 else n / den for n in num]
    return num


def core_final_state(score, decay, k, v, a, s0, z0, f, c):
    """(S[f, c], z[f]) after the last token, FLA convention (unscaled keys):
    S = Σ_j exp(a_{j+1}+…+a_{N−1}) φ(k_j) v_jᵀ + exp(a_0+…+a_{N−1}) S₀, same for z."""
    n = len(k)
    g = mpf(0)
    s_acc = mpf(0)
    z_acc = mpf(0)
    for j in range(n - 1, -1, -1):
        e = mpmath.exp(g) if decay else 1
        fk = phi(score, k[j])[f]
        s_acc += e * fk * v[j][c]
        z_acc += e * fk
        if decay:
            g += a[j]
    e = mpmath.exp(g) if decay else 1
    s_acc += e * s0[f][c]
    if z0 is not None:
        z_acc += e * z0[f]
    return s_acc, z_acc


# The base presets of docs/MATH.md §2's table (independent of the manifest, which is
# checked against it). conv: window (1 = none); decay: none|original|softplus;
# dt_v: V ⊙ dt; dt_bias: dt = softplus(x·W_dt + dt_bias) (mamba2 only);
# D: residual V ⊙ D; Z: gate y ⊙ SiLU(x·W_z [+ b_z]); act: on Q, K (and V,
# before the split, when act_v); norm: sum (in the core) or none (RMSNorm).
PRESETS = {
    "softmax": dict(score="exponential", conv=1, decay="none", dt_v=False, dt_bias=False, D=False, Z=False,
                    z_bias=False, act="none", act_v=False, norm="sum"),
    "linear": dict(score="relu-linear", conv=1, decay="none", dt_v=False, dt_bias=False, D=False, Z=False,
                   z_bias=False, act="none", act_v=False, norm="sum"),
    "linear-outnorm": dict(score="linear", conv=1, decay="none", dt_v=False, dt_bias=False, D=False, Z=False,
                           z_bias=False, act="none", act_v=False, norm="none"),
    "mamba2": dict(score="linear", conv=4, decay="original", dt_v=True, dt_bias=True, D=True, Z=True,
                   z_bias=False, act="silu", act_v=True, norm="none"),
    "mamba2s": dict(score="linear", conv=2, decay="softplus", dt_v=True, dt_bias=False, D=False, Z=False,
                    z_bias=False, act="none", act_v=False, norm="none"),
    "2mamba": dict(score="squared", conv=2, decay="softplus", dt_v=False, dt_bias=False, D=False, Z=False,
                   z_bias=False, act="none", act_v=False, norm="sum"),
    "2mamba-dt": dict(score="squared", conv=2, decay="softplus", dt_v=True, dt_bias=False, D=False, Z=False,
                      z_bias=False, act="none", act_v=False, norm="sum"),
    "2mamba-e": dict(score="exponential", conv=2, decay="softplus", dt_v=False, dt_bias=False, D=False, Z=False,
                     z_bias=False, act="none", act_v=False, norm="sum"),
    "squared-outnorm": dict(score="squared", conv=2, decay="softplus", dt_v=True, dt_bias=False, D=False,
                            Z=False, z_bias=False, act="none", act_v=False, norm="none"),
}

RMS_EPS = mpf(2) ** -23  # docs/MATH.md §2 step 11: ε = 1.1920929e−7, the Float32 machine epsilon 2^-23


def block_arrays(p):
    """The input arrays a block with components p reads."""
    needs_dt = p["dt_v"] or p["decay"] == "original"
    names = ["x", "w_qkv", "w_o"]
    if p["conv"] > 1:
        names += ["conv_weight", "conv_bias"]
    if needs_dt:
        names += ["w_dt"] + (["dt_bias"] if p["dt_bias"] else [])
    if p["decay"] == "original":
        names += ["a_log"]
    if p["decay"] == "softplus":
        names += ["w_a"]
    if p["D"]:
        names += ["D"]
    if p["Z"]:
        names += ["w_z"] + (["b_z"] if p["z_bias"] else [])
    if p["norm"] == "none":
        names += ["gamma"]
    return names


class Block:
    """docs/MATH.md §2 for one batch element, evaluated lazily per token."""

    def __init__(self, p, arrays, b, heads, scale):
        self.p = p
        m = lambda name: [[mpf(v) for v in row] for row in matrix(arrays[name])]  # noqa: E731
        vec = lambda name: [mpf(v) for v in arrays[name].values]  # noqa: E731
        xs = arrays["x"]
        n, d = xs.shape[1], xs.shape[2]
        self.x = [[mpf(xs[(b, t, i)]) for i in range(d)] for t in range(n)]
        w_qkv = m("w_qkv")
        ch = len(w_qkv[0])
        hd = ch // 3
        self.h, self.dh, self.hd, self.n = heads, hd // heads, hd, n
        self.s = scale
        cols = lambda w: [list(col) for col in zip(*w)]  # noqa: E731
        # 1. u = x·W_qkv
        wq_cols = cols(w_qkv)
        u = [[mpmath.fdot(self.x[t], wq_cols[c]) for c in range(ch)] for t in range(n)]
        # 2. causal depthwise conv with bias, left zero padding; tap r = k−1 is the current token
        if p["conv"] > 1:
            cw, cb, kw = m("conv_weight"), vec("conv_bias"), p["conv"]
            u = [[cb[c] + mpmath.fsum(cw[c][r] * u[t - kw + 1 + r][c] for r in range(kw) if t - kw + 1 + r >= 0)
                  for c in range(ch)] for t in range(n)]
        # mamba2: SiLU on the convolved Q, K and V
        if p["act_v"]:
            act = silu if p["act"] == "silu" else relu
            u = [[act(e) for e in row] for row in u]
        # 4. dt per token and head
        dt = None
        if p["dt_v"] or p["decay"] == "original":
            wdt = cols(m("w_dt"))
            bias = vec("dt_bias") if p["dt_bias"] else [mpf(0)] * heads
            dt = [[softplus(mpmath.fdot(self.x[t], wdt[h]) + bias[h]) for h in range(heads)] for t in range(n)]
        # 5. log-decay per token and head
        self.a = None
        if p["decay"] == "original":
            alog = vec("a_log")
            self.a = [[-mpmath.exp(alog[h]) * dt[t][h] for h in range(heads)] for t in range(n)]
        elif p["decay"] == "softplus":
            wa = cols(m("w_a"))
            self.a = [[-softplus(mpmath.fdot(self.x[t], wa[h])) for h in range(heads)] for t in range(n)]
        # 3. split, 6. r = V ⊙ D (before dt), 7. V ⊙ dt, 8. activation on Q, K
        dh = self.dh
        D = m("D") if p["D"] else None
        self.q, self.k, self.v, self.r = [], [], [], []
        for h in range(heads):
            Q = [[u[t][h * dh + i] for i in range(dh)] for t in range(n)]
            K = [[u[t][hd + h * dh + i] for i in range(dh)] for t in range(n)]
            V = [[u[t][2 * hd + h * dh + i] for i in range(dh)] for t in range(n)]
            R = [[V[t][i] * D[h][i] for i in range(dh)] for t in range(n)] if D else None
            if p["dt_v"]:
                V = [[V[t][i] * dt[t][h] for i in range(dh)] for t in range(n)]
            if not p["act_v"] and p["act"] != "none":
                act = silu if p["act"] == "silu" else relu
                Q = [[act(e) for e in row] for row in Q]
                K = [[act(e) for e in row] for row in K]
            if p["score"] == "relu-linear":  # the core's own ReLU on q and k
                Q = [[relu(e) for e in row] for row in Q]
                K = [[relu(e) for e in row] for row in K]
            self.q.append(Q)
            self.k.append(K)
            self.v.append(V)
            self.r.append(R)
        self.w_z = cols(m("w_z")) if p["Z"] else None
        self.b_z = vec("b_z") if p["Z"] and p["z_bias"] else None
        self.gamma = vec("gamma") if p["norm"] == "none" else None
        self.w_o = m("w_o")
        self.out_rows = {}

    def out(self, t, e):
        if t not in self.out_rows:
            p, dh = self.p, self.dh
            y = []
            for h in range(self.h):
                a = [self.a[j][h] for j in range(self.n)] if self.a else None
                yh = core_row(p["score"], a is not None, p["norm"], self.s, self.q[h], self.k[h], self.v[h], a, t)
                for i in range(dh):
                    c = h * dh + i
                    val = yh[i]
                    if self.r[h] is not None:  # 10. + r
                        val += self.r[h][t][i]
                    if self.w_z is not None:  # 10. ⊙ SiLU(x·W_z [+ b_z])
                        z = mpmath.fdot(self.x[t], self.w_z[c]) + (self.b_z[c] if self.b_z else 0)
                        val *= silu(z)
                    y.append(val)
            if self.gamma is not None:  # 11. RMSNorm over the H·dh channels of the token
                inv = 1 / mpmath.sqrt(mpmath.fsum(v * v for v in y) / len(y) + RMS_EPS)
                y = [y[c] * inv * self.gamma[c] for c in range(len(y))]
            # 12. out = y·W_o
            self.out_rows[t] = [mpmath.fdot(y, [self.w_o[c][e2] for c in range(len(y))])
                                for e2 in range(len(self.w_o[0]))]
        return self.out_rows[t][e]


def matrix(arr):
    rows, cols = arr.shape
    return [arr.values[r * cols:(r + 1) * cols] for r in range(rows)]


# --------------------------------------------------------------------------
# The deterministic samples.

def spread(n, want):
    """`want` distinct positions in [0, n) including 0, 1, 2 and the last three,
    with the rest evenly spaced (deterministic)."""
    if n <= want:
        return list(range(n))
    picks = {0, 1, 2, n - 3, n - 2, n - 1}
    extra = want - len(picks)
    for m in range(1, extra + 1):
        picks.add(round(m * (n - 1) / (extra + 1)))
    t = 3
    while len(picks) < want:  # collisions on short ranges
        picks.add(t)
        t += 1
    return sorted(picks)[:want]


def core_sample(shape_o, f_dim, has_z):
    """24 elements of o [B,H,N,dv] (12 tokens incl. the first and the last,
    each in both heads, channels varied), 8 of final_state [B,H,F,dv]
    (features incl. 0, 1, F−2, F−1: for φ₂ the first and last diagonal and
    cross terms), 4 of final_state_z [B,H,F]."""
    B, H, N, dv = shape_o
    out = []
    for m, t in enumerate(spread(N, 24 // H if H <= 24 else 1)):
        for h in range(H):
            out.append(("o", ((m + h) % B, h, t, (3 * m + 5 * h) % dv)))
    if f_dim:
        feats = spread(f_dim, 8)
        for m, f in enumerate(feats):
            out.append(("final_state", (m % B, m % H, f, (3 * m + 1) % dv)))
        if has_z:
            for m, f in enumerate([feats[0], feats[3], feats[5], feats[-1]]):
                out.append(("final_state_z", (m % B, (m + 1) % H, f)))
    return out


def block_sample(shape_out):
    """24 elements of out [B,N,d]: 12 tokens (the first three, inside the
    convolution's zero padding, and the last three incl. the last token),
    two output channels each."""
    B, N, d = shape_out
    out = []
    for m, t in enumerate(spread(N, 12)):
        for j in range(2):
            out.append(("out", ((m + j) % B, t, (5 * m + 11 * j) % d)))
    return out


# --------------------------------------------------------------------------
# One case.

def check_case(root, case, manifest_files, plant):
    """Returns (n_elements, max_rel, ok, messages)."""
    name = case["name"]
    msgs = []
    ok = True
    try:
        inputs_file, ref_file, dec_file = case["inputs"]["file"], case["reference"]["file"], case["decimal"]
        scale = mpf(float(case["scale"]))
        kind = case["kind"]
    except (KeyError, TypeError, ValueError) as e:
        raise Malformed(f"{root}/manifest.json: case {name!r} lacks {e}")

    # integrity against the manifest
    for fname in (inputs_file, ref_file, dec_file):
        path = os.path.join(root, fname)
        if not os.path.isfile(path):
            raise Malformed(f"{path}: missing")
        rec = manifest_files.get(fname)
        if rec is None:
            raise Malformed(f"{root}/manifest.json: no files entry for {fname}")
        data = open(path, "rb").read()
        if len(data) != rec.get("bytes") or hashlib.sha256(data).hexdigest() != rec.get("sha256"):
            ok = False
            msgs.append(f"{fname}: size/SHA-256 differ from manifest.json")

    inputs = read_npz(os.path.join(root, inputs_file))
    refs = read_npz(os.path.join(root, ref_file))
    listing = read_listing(os.path.join(root, dec_file))

    def check_arrays(found, described, fname, dtype):
        if set(found) != set(described):
            raise Malformed(f"{root}/{fname}: arrays {sorted(found)}, expected {sorted(described)}")
        for arr_name, (descr, arr) in found.items():
            if descr != dtype:
                raise Malformed(f"{root}/{fname}: {arr_name} is {descr}, expected {dtype}")
            want = case[("inputs" if fname == inputs_file else "reference")]["arrays"].get(arr_name, {}).get("shape")
            if want is not None and list(arr.shape) != list(want):
                raise Malformed(f"{root}/{fname}: {arr_name} has shape {list(arr.shape)}, manifest says {want}")

    # which arrays must be there follows from the case (SPEC), not from the files
    if kind == "core":
        if not name.startswith("core-"):
            raise Malformed(f"{root}/manifest.json: core case {name!r} is not named core-<score>-<decay>-<norm>")
        score, dec, norm = name[len("core-"):].rsplit("-", 2)
        if score not in ("linear", "relu-linear", "squared", "exponential") or dec not in ("decay", "nodecay") \
                or norm not in ("none", "sum") or case.get("core") != name[len("core-"):]:
            raise Malformed(f"{root}/manifest.json: unknown core {name!r}")
        decay = dec == "decay"
        state = score != "exponential"
        want_in = ["q", "k", "v"] + (["a"] if decay else []) + (["initial_state"] if state else []) \
            + (["initial_state_z"] if state and norm == "sum" else [])
        want_ref = ["o"] + (["final_state"] if state else []) + (["final_state_z"] if state and norm == "sum" else [])
    elif kind == "block":
        preset = case.get("variant")
        if preset not in PRESETS or name != "block-" + preset:
            raise Malformed(f"{root}/manifest.json: unknown block preset {preset!r} (case {name!r})")
        p = PRESETS[preset]
        comp = case.get("components", {})
        stated = dict(score=comp.get("score"), conv=comp.get("convWindow"), decay=comp.get("decay"),
                      dt_v=comp.get("dtOnValues"), dt_bias=comp.get("dtBias"), D=comp.get("dResidual"),
                      Z=comp.get("zGate"), act=comp.get("activation"), act_v=comp.get("activationOnValues"),
                      norm=comp.get("normalization"))
        if p["Z"]:
            stated["z_bias"] = comp.get("zGateBias")
        for key, value in stated.items():
            if value != p[key]:
                ok = False
                msgs.append(f"manifest components: {key} = {value!r}, docs/MATH.md §2 table says {p[key]!r}")
        want_in = block_arrays(p)
        want_ref = ["out"]
    else:
        raise Malformed(f"{root}/manifest.json: case {name!r} has unknown kind {kind!r}")
    check_arrays(inputs, want_in, inputs_file, "<f4")
    check_arrays(refs, want_ref, ref_file, "<f8")
    inputs = {k: arr for k, (_, arr) in inputs.items()}
    refs = {k: arr for k, (_, arr) in refs.items()}

    # the listing: every element of every reference array exactly once, and the
    # Float64 value is the decimal rounded to nearest (all elements)
    if set(listing) != set(refs):
        raise Malformed(f"{root}/{dec_file}: arrays {sorted(listing)}, {ref_file} has {sorted(refs)}")
    for arr_name, arr in refs.items():
        table = listing[arr_name]
        if len(table) != arr.size():
            raise Malformed(f"{root}/{dec_file}: {len(table)} lines for {arr_name}, expected {arr.size()}")
        bad = 0
        for idx in indices(arr.shape):
            if idx not in table:
                raise Malformed(f"{root}/{dec_file}: no line for {arr_name}{list(idx)}")
            if not float64_matches(table[idx], arr[idx]):
                bad += 1
                if bad <= 3:
                    msgs.append(f"{ref_file}: {arr_name}{list(idx)} = {arr[idx]!r} is not the nearest Float64 "
                                f"to {table[idx]}")
        if bad:
            ok = False
            msgs.append(f"{ref_file}: {bad} Float64 values of {arr_name} are not their decimals rounded to nearest")

    # the sample, recomputed
    if kind == "core":
        B, H, N, dk = inputs["q"].shape
        dv = inputs["v"].shape[3]
        f_dim = inputs["initial_state"].shape[2] if state else None
        expect_f = dk * (dk + 1) // 2 if score == "squared" else dk
        if state and f_dim != expect_f:
            raise Malformed(f"{root}/{inputs_file}: initial_state has F = {f_dim}, expected {expect_f}")
        sample = core_sample(refs["o"].shape, f_dim, state and norm == "sum")
        seqs = {}

        def seq(b, h):
            if (b, h) not in seqs:
                cvt = lambda arr, w: [[mpf(arr[(b, h, t, i)]) for i in range(w)] for t in range(arr.shape[2])]  # noqa: E731
                q, k = cvt(inputs["q"], dk), cvt(inputs["k"], dk)
                if score == "relu-linear":
                    q = [[relu(e) for e in row] for row in q]
                    k = [[relu(e) for e in row] for row in k]
                a = [mpf(inputs["a"][(b, h, t)]) for t in range(N)] if decay else None
                s0 = cvt(inputs["initial_state"], dv) if state else None
                z0 = [mpf(inputs["initial_state_z"][(b, h, f)]) for f in range(f_dim)] \
                    if state and norm == "sum" else None
                seqs[(b, h)] = dict(q=q, k=k, v=cvt(inputs["v"], dv), a=a, s0=s0, z0=z0, rows={})
            return seqs[(b, h)]

        def compute(arr_name, idx):
            sq = seq(idx[0], idx[1])
            if arr_name == "o":
                t = idx[2]
                if t not in sq["rows"]:
                    sq["rows"][t] = core_row(score, decay, norm, scale, sq["q"], sq["k"], sq["v"], sq["a"], t,
                                             sq["s0"], sq["z0"])
                return sq["rows"][t][idx[3]]
            f, c = idx[2], (idx[3] if arr_name == "final_state" else 0)
            S, z = core_final_state(score, decay, sq["k"], sq["v"], sq["a"], sq["s0"], sq["z0"], f, c)
            return S if arr_name == "final_state" else z
    else:
        B, N, d = inputs["x"].shape
        heads = case.get("dimensions", {}).get("H")
        if not isinstance(heads, int) or heads < 1 or inputs["w_qkv"].shape[1] % (3 * heads):
            raise Malformed(f"{root}/manifest.json: case {name!r}: dimensions.H = {heads!r} does not divide w_qkv")
        if p["conv"] > 1 and inputs["conv_weight"].shape[1] != p["conv"]:
            raise Malformed(f"{root}/{inputs_file}: conv_weight has window {inputs['conv_weight'].shape[1]}, "
                            f"docs/MATH.md §2 says {p['conv']} for {preset}")
        sample = block_sample(refs["out"].shape)
        blocks = {}

        def compute(arr_name, idx):
            b = idx[0]
            if b not in blocks:
                blocks[b] = Block(p, inputs, b, heads, scale)
            return blocks[b].out(idx[1], idx[2])

    # compare
    max_rel = mpf(0)
    # --plant: the output element of the last token (the last o/out of the sample)
    plant_at = max(i for i, (arr_name, _) in enumerate(sample) if arr_name in ("o", "out")) if plant else -1
    for number, (arr_name, idx) in enumerate(sample):
        ref = parse_decimal(listing[arr_name][idx])
        if number == plant_at:  # self-test: one reference value off by 1e-30 relative
            ref = ref * (1 + PLANT) if ref != 0 else PLANT
        mine = compute(arr_name, idx)
        where = f"{arr_name}{list(idx)}"
        if mpmath.isnan(ref) or mpmath.isnan(mine):
            if not (mpmath.isnan(ref) and mpmath.isnan(mine)):
                ok = False
                msgs.append(f"{where}: reference {listing[arr_name][idx]}, recomputed {mpmath.nstr(mine, 20)}")
            continue
        if mpmath.isinf(ref) or mpmath.isinf(mine):
            if ref != mine:
                ok = False
                msgs.append(f"{where}: reference {listing[arr_name][idx]}, recomputed {mpmath.nstr(mine, 20)}")
            continue
        rel = abs(mine - ref) / max(abs(ref), ABS_FLOOR / REL_TOL)
        max_rel = max(max_rel, rel)
        if rel > REL_TOL:
            ok = False
            msgs.append(f"{where}: reference {sci(ref)}{' (planted)' if number == plant_at else ''}, "
                        f"recomputed {sci(mine)}, rel diff {mpmath.nstr(rel, 3)}")
    return len(sample), max_rel, ok, msgs


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Independent mpmath cross-check of the golden vectors in Fixtures/.")
    ap.add_argument("--dir", default=os.path.join(here, "..", "Fixtures"), help="fixture directory (default: Fixtures)")
    ap.add_argument("--family", action="append", default=[], metavar="NAME",
                    help="check only this case (repeatable), e.g. core-squared-decay-sum")
    ap.add_argument("--plant", nargs="*", metavar="NAME", default=None,
                    help="self-test: perturb one reference value by 1e-30 relative in these cases "
                         "(all checked cases if none named); exit 0 iff exactly those cases FAIL")
    args = ap.parse_args()
    root = os.path.normpath(args.dir)
    start = time.time()
    try:
        mpath = os.path.join(root, "manifest.json")
        if not os.path.isfile(mpath):
            raise Malformed(f"{mpath}: missing")
        try:
            manifest = json.load(open(mpath, encoding="utf-8"))
            cases = manifest["cases"]
            files = {f["name"]: f for f in manifest["files"]}
        except (ValueError, KeyError, TypeError) as e:
            raise Malformed(f"{mpath}: unreadable ({e})")
        if manifest.get("schema") != 1:
            raise Malformed(f"{mpath}: schema {manifest.get('schema')!r}, this script reads schema 1")
        # every case on disk is in the manifest (none escapes the check)
        listed = {c.get("inputs", {}).get("file") for c in cases}
        for fname in sorted(os.listdir(root)):
            if fname.endswith(".inputs.npz") and fname not in listed:
                raise Malformed(f"{os.path.join(root, fname)}: not a case of manifest.json")
        names = [c.get("name") for c in cases]
        for n in args.family + (args.plant or []):
            if n not in names:
                raise Malformed(f"{mpath}: no case named {n!r}")
        selected = [c for c in cases if not args.family or c["name"] in args.family]
        plant_set = set()
        if args.plant is not None:
            plant_set = set(args.plant) if args.plant else {c["name"] for c in selected}
        passed = failed = 0
        failed_names = set()
        width = max(len(c["name"]) for c in selected) if selected else 10
        for case in selected:
            n, max_rel, ok, msgs = check_case(root, case, files, case["name"] in plant_set)
            print(f"{case['name']:<{width}}  {n:3d}  {mpmath.nstr(max_rel, 2, min_fixed=1, max_fixed=0):>9}  "
                  f"{'ok' if ok else 'FAIL'}", flush=True)
            for m in msgs:
                print(f"    {case['name']}: {m}", file=sys.stderr, flush=True)
            if ok:
                passed += 1
            else:
                failed += 1
                failed_names.add(case["name"])
    except Malformed as e:
        print(f"crosscheck-fixtures: {e}", file=sys.stderr)
        return 2
    print(f"({time.time() - start:.1f} s, mpmath {mpmath.__version__}, backend {mpmath.libmp.BACKEND}, "
          f"{mp.prec} bits; pass: |diff| <= max(1e-45*|ref|, 1e-60))", file=sys.stderr)
    if args.plant is not None:
        detected = plant_set & failed_names
        spurious = failed_names - plant_set
        good = detected == plant_set and not spurious
        print(f"plant self-test: 1 value off by 1e-30 relative in each of {len(plant_set)} cases; "
              f"detected in {len(detected)}/{len(plant_set)}"
              + (f"; unplanted cases failing: {sorted(spurious)}" if spurious else "")
              + f": {'OK' if good else 'NOT DETECTED'}")
        print(f"{passed} passed, {failed} failed")
        return 0 if good else 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
