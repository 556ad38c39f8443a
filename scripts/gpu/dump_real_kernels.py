#!/usr/bin/env python3
"""Dump real GPU kernels' inputs, outputs, final states and gradients for MambaCheck.

Runs on a CUDA machine with PyTorch and Triton. Third-party kernels: FLA (fla-core)
`simple_gla` (chunk, fused_recurrent, parallel), `retention` (chunk, fused_recurrent) and
`linear_attn` (chunk, fused_recurrent; normalize=False), plus MambaCheck's own Triton 2Mamba
kernel (scripts/gpu/twomamba_triton.py), correct and with planted one-line bugs.

Every case is a pair of safetensors files `<case>.inputs.safetensors` and
`<case>.candidate.safetensors` plus one line in `cases.json` giving the core, the layout and
the arithmetic its source code uses (`--arith` of `mambacheck compare`), so each case replays
with the command written next to it.

PyTorch's causal `scaled_dot_product_attention` (flash, memory-efficient, cuDNN and math
backends) covers softmax attention (`--only sdpa`: no Triton compilation, about a minute).

usage: python3 dump_real_kernels.py OUTDIR [--fp32-dots tf32|ieee]
"""
import argparse
import json
import math
import os
import struct
import sys

from kernel_forms import kernel_form  # noqa: E402  (beside this script)
import torch
import torch.nn.functional as F

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
ST_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def save_safetensors(path, tensors):
    """Minimal safetensors writer (no dependency beyond torch): header JSON, then raw bytes."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class Dumper:
    def __init__(self, out, environment=None):
        self.out = out
        self.cases = []
        self.environment = environment or {}

    def add(self, name, inputs, candidate, inputs_of=None, **meta):
        """inputs_of: the name of an earlier case whose inputs file this case shares."""
        if inputs_of is None:
            save_safetensors(os.path.join(self.out, name + ".inputs.safetensors"), inputs)
        save_safetensors(os.path.join(self.out, name + ".candidate.safetensors"), candidate)
        meta = dict(meta, name=name, inputs=(inputs_of or name) + ".inputs.safetensors",
                    candidate=name + ".candidate.safetensors")
        if "form" not in meta and kernel_form(name):
            meta["form"] = kernel_form(name)  # `+form=` of compare (judge_real.py --declare-forms)
        self.cases.append(meta)
        # cases.json is rewritten after every case, so a run cut short keeps what it dumped.
        with open(os.path.join(self.out, "cases.json"), "w") as f:
            json.dump({"environment": self.environment, "cases": self.cases}, f, indent=1, sort_keys=True)
        print("dumped", name, flush=True)


def grads_of(fn, leaves, do):
    """Run fn (returns o, ht), backprop L = sum(o * do): the oracle's loss (docs/MATH.md §5)."""
    for t in leaves.values():
        if t is not None:
            t.grad = None
    o, ht = fn()
    o.backward(do)
    g = {}
    for name, t in leaves.items():
        if t is not None and t.grad is not None:
            g[name] = t.grad.detach().clone()
    return o.detach(), (ht.detach() if ht is not None else None), g


QUICK = False  # --quick: N = 1000 only, chunk and fused_recurrent simple_gla (a short lease)
ALT = False    # --shapes alt: other lengths, head counts and head dims (correct kernels only)
BATCH = 1      # --shapes batch: two sequences per call, lengths off the chunk grid (correct kernels only)
TINY = False   # --shapes tiny: decode-sized problems, N = 1 to 65 (correct kernels only)
SWEEP = False  # --shapes sweep: SDPA at N = 1 to 129, dk = 32, 64, 128 (correct kernels only)
BACKENDS = []  # --backends: SDPA backends to run (all when empty)
SWEEP_LENGTHS = (1, 2, 3, 5, 9, 17, 33, 64, 129)  # --sweep-lengths


def fla_cases(d, dtname, fp32_dots, seed, ieee_subset=False):
    from fla.ops.simple_gla import chunk_simple_gla, fused_recurrent_simple_gla, parallel_simple_gla
    from fla.ops.linear_attn import chunk_linear_attn, fused_recurrent_linear_attn
    dtype = DTYPES[dtname]
    dev = "cuda"
    # Declared arithmetic, read from FLA's source (fla-core 0.6.0):
    # - chunk_* : tl.dot on the input dtype (fp32 -> TF32 unless TRITON_F32_DEFAULT=ieee); the
    #   per-chunk states h are stored in k.dtype (chunk_h.py: new_empty(dtype=k.dtype)), so
    #   16-bit inputs mean a 16-bit stored state; exp2 of chunk-local prefix sums scaled by 1/ln2.
    # - fused_recurrent_* : elementwise fp32 state in registers, no tl.dot (declared float32).
    # - parallel_simple_gla : tl.dot in blocks, no state.
    acc = {"float32": "tf32" if fp32_dots == "tf32" else "float32",
           "float16": "float16-acc32", "bfloat16": "bfloat16-acc32"}[dtname]
    st16 = {"float32": "", "float16": "+state=float16", "bfloat16": "+state=bfloat16"}[dtname]
    # fused_recurrent loads 16-bit inputs into Float32 registers and never rounds an intermediate
    # (no tl.dot): Float32 arithmetic whatever the input dtype (storage still from the dtypes).
    rec = "float32"
    tag = dtname if dtname != "float32" else ("float32-" + fp32_dots)

    shapes = [(1000, 1, 64, 64, "weak", True), (100, 2, 64, 64, "strong", True),
              (2048, 1, 128, 128, "weak", False)]
    if ALT:
        shapes = [(512, 4, 128, 128, "strong", True), (4096, 1, 64, 64, "weak", True)]
    if BATCH > 1:
        shapes = [(777, 3, 64, 64, "strong", True), (1500, 2, 128, 64, "weak", True)]
    if TINY:
        shapes = [(1, 2, 64, 64, "weak", True), (1, 1, 64, 64, "strong", False), (5, 2, 64, 64, "strong", True),
                  (63, 1, 64, 32, "weak", False)]
    for (N, H, K, V, decay, with_h0) in shapes[:1] if QUICK else shapes:
        if N == 2048 and (dtname == "float16" or ieee_subset):
            continue  # size budget: the long case in fp32 and bf16 only
        gen = torch.Generator(device=dev).manual_seed(seed + N + 7 * K)
        q = torch.randn(BATCH, N, H, K, device=dev, generator=gen).to(dtype)
        k = torch.randn(BATCH, N, H, K, device=dev, generator=gen).to(dtype)
        v = torch.randn(BATCH, N, H, V, device=dev, generator=gen).to(dtype)
        do = torch.randn(BATCH, N, H, V, device=dev, generator=gen).to(dtype)
        if decay == "weak":   # long memory: mean log-decay about -0.007
            g = F.logsigmoid(torch.randn(BATCH, N, H, device=dev, generator=gen) + 5.0)
        else:                 # FLA's test distribution: short memory
            g = F.logsigmoid(torch.randn(BATCH, N, H, device=dev, generator=gen))
        g = g.to(torch.float32)
        h0 = torch.randn(BATCH, H, K, V, device=dev, generator=gen) if with_h0 else None
        base = {"q": q, "k": k, "v": v, "g": g, "do": do}
        if h0 is not None:
            base["initial_state"] = h0
        shape_tag = f"n{N}-h{H}-d{K}" + (f"-b{BATCH}" if BATCH > 1 else "")

        def leaves():
            lv = {n: t.clone().requires_grad_(True) for n, t in base.items() if n != "do"}
            return lv

        def run(fn_name, fn, call, decayed, arith, extra_inputs=None, drop=()):
            lv = leaves()
            try:
                o, ht, gr = grads_of(lambda: call(lv), lv, do)
            except RuntimeError as e:
                # fla-core refuses some backward kernels on Triton versions known to
                # miscompute them on Hopper (its issue #640): dump the forward only.
                print(f"{fn_name}: backward refused ({str(e)[:120]}); forward only", flush=True)
                with torch.no_grad():
                    o, ht = call(leaves())
                o, ht, gr = o.detach(), (ht.detach() if ht is not None else None), {}
            cand = {"o": o}
            if ht is not None:
                cand["final_state"] = ht
            names = {"q": "dq", "k": "dk", "v": "dv", "g": "dg", "initial_state": "dinitial_state"}
            for n, t in gr.items():
                if n == "g" and not decayed:
                    continue
                cand[names[n]] = t
            inp = {n: t for n, t in base.items() if (decayed or n != "g") and n not in drop}
            if extra_inputs:
                inp.update(extra_inputs)
            core = "linear-decay-none" if decayed else "linear-nodecay-none"
            d.add(f"fla-{fn_name}-{tag}-{shape_tag}", inp, cand, kernel=f"fla.ops {fn_name}",
                  core=core, layout="bnhd", arith=arith, dtype=dtname, N=N, H=H, dk=K, dv=V,
                  decay=decay if decayed else "none", seed=seed, correct=True)

        h0f = (lambda lv: lv.get("initial_state"))
        run("chunk_simple_gla", chunk_simple_gla,
            lambda lv: chunk_simple_gla(lv["q"], lv["k"], lv["v"], g=lv["g"], initial_state=h0f(lv),
                                        output_final_state=True), True, acc + st16)
        if N <= 1000 and not ieee_subset:
            run("fused_recurrent_simple_gla", fused_recurrent_simple_gla,
                lambda lv: fused_recurrent_simple_gla(lv["q"], lv["k"], lv["v"], g=lv["g"],
                                                      initial_state=h0f(lv), output_final_state=True),
                True, rec)
        if N <= 1000 and not ieee_subset and not QUICK:
            # parallel_simple_gla keeps no state: no initial state, no final state.
            run("parallel_simple_gla", parallel_simple_gla,
                lambda lv: (parallel_simple_gla(lv["q"], lv["k"], lv["v"], g=lv["g"])[0], None),
                True, acc, drop=("initial_state",))
        if N <= 1000 and not QUICK:
            run("chunk_linear_attn", chunk_linear_attn,
                lambda lv: chunk_linear_attn(lv["q"], lv["k"], lv["v"], initial_state=h0f(lv),
                                             output_final_state=True, normalize=False), False, acc + st16)
        if N <= 1000 and not ieee_subset and not QUICK:
            run("fused_recurrent_linear_attn", fused_recurrent_linear_attn,
                lambda lv: fused_recurrent_linear_attn(lv["q"], lv["k"], lv["v"], initial_state=h0f(lv),
                                                       output_final_state=True, normalize=False),
                False, rec)

        # Planted bugs at the call site of the chunk kernel (forward only): the kernel is right,
        # the call is not, just as a one-line bug in a model would be.
        if N == 1000 and not ALT:
            scale = K ** -0.5
            u = {"float32": 2.0 ** -11 if fp32_dots == "tf32" else 2.0 ** -24,
                 "float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}[dtname]
            gq = g.clone()
            g_shift = torch.zeros_like(g)
            g_shift[:, 1:] = g[:, :-1]          # off-by-one decay
            g_one = g.clone()
            g_one[:, N // 2] -= 0.05            # one decay value off
            bugs = {
                "offbyone-decay": dict(g=g_shift),
                "one-decay-off": dict(g=g_one),
                "scale-8u": dict(scale=scale * (1 + 8 * u)),
                "scale-64u": dict(scale=scale * (1 + 64 * u)),
                "no-initial-state": dict(initial_state=None),
                "g-bf16": dict(g=gq.to(torch.bfloat16).to(torch.float32)),
            }
            for bname, kw in bugs.items():
                with torch.no_grad():
                    o, ht = chunk_simple_gla(q, k, v, g=kw.get("g", g), scale=kw.get("scale", scale),
                                             initial_state=kw.get("initial_state", h0),
                                             output_final_state=True)
                d.add(f"fla-chunk_simple_gla-{tag}-{shape_tag}-bug-{bname}",
                      None, {"o": o, "final_state": ht},
                      inputs_of=f"fla-chunk_simple_gla-{tag}-{shape_tag}",
                      kernel="fla.ops chunk_simple_gla (call-site bug)", core="linear-decay-none",
                      layout="bnhd", arith=acc + st16, dtype=dtname, N=N, H=H, dk=K, dv=V,
                      decay=decay, seed=seed, correct=False, bug=bname)


def twomamba_cases(d, dtname, fp32_dots, seed):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from twomamba_triton import twomamba_forward
    dtype = DTYPES[dtname]
    dev = "cuda"
    acc = {"float32": "tf32" if fp32_dots == "tf32" else "float32",
           "float16": "float16-acc32", "bfloat16": "bfloat16-acc32"}[dtname]
    tag = dtname if dtname != "float32" else ("float32-" + fp32_dots)
    shapes = [(1000, 2, 64, 64)] + ([] if QUICK else [(300, 1, 32, 32)])
    if ALT:
        shapes = [(700, 3, 64, 64), (2000, 1, 32, 32)]
    if BATCH > 1:
        shapes = [(333, 2, 64, 64)]
    if TINY:
        shapes = [(1, 2, 32, 32), (9, 1, 64, 64)]
    for (N, H, K, V) in shapes:
        gen = torch.Generator(device=dev).manual_seed(seed + 3 * N + K)
        q = torch.randn(BATCH, H, N, K, device=dev, generator=gen).to(dtype)
        k = torch.randn(BATCH, H, N, K, device=dev, generator=gen).to(dtype)
        v = torch.randn(BATCH, H, N, V, device=dev, generator=gen).to(dtype)
        a = -F.softplus(torch.randn(BATCH, H, N, device=dev, generator=gen) - 3.0)  # Mamba-2 style dt·A
        a_cumsum = torch.cumsum(a, dim=-1)  # the kernel receives prefix sums (paper's habit)
        inputs = {"q": q, "k": k, "v": v, "a_cumsum": a_cumsum}
        bugs = {"": 0, "-bug-strict-mask": 1, "-bug-key-decay-offbyone": 2, "-bug-eps-1e-5": 3,
                "-bug-natural-exp2": 4} if N == 1000 and not ALT else {"": 0}
        # float64 self-check of the correct kernel (printed, not a verdict: MambaCheck judges).
        qd, kd, vd, ld = q.double(), k.double(), v.double(), a_cumsum.double()
        s = (qd @ kd.transpose(-1, -2)) * K ** -0.5
        diff = ld[..., :, None] - ld[..., None, :]
        mask = torch.ones(N, N, dtype=torch.bool, device=dev).tril()
        w = s * s * torch.exp(torch.where(mask, diff, torch.full_like(diff, -float("inf"))))
        ref = (w @ vd) / w.sum(-1, keepdim=True)
        bt = f"-b{BATCH}" if BATCH > 1 else ""
        for suffix, bug in bugs.items():
            o = twomamba_forward(q, k, v, a_cumsum, fp32_dots=fp32_dots, bug=bug)
            rel = ((o.double() - ref).norm() / ref.norm()).item()
            print(f"twomamba {tag} N={N} bug={bug}: normwise rel err vs float64 {rel:.3e}", flush=True)
            d.add(f"twomamba-triton-{tag}-n{N}-h{H}-d{K}{bt}{suffix}", inputs, {"o": o},
                  inputs_of=(f"twomamba-triton-{tag}-n{N}-h{H}-d{K}{bt}" if bug else None),
                  kernel="MambaCheck Triton 2Mamba (scripts/gpu/twomamba_triton.py)",
                  core="squared-decay-sum", layout="bhnd", arith=acc, dtype=dtname, N=N, H=H, dk=K,
                  dv=V, decay="mamba2", seed=seed, correct=bug == 0,
                  **({"bug": suffix[5:]} if bug else {}))


def ssd_cases(d, dtname, fp32_dots, seed):
    """The official Mamba-2 SSD kernel (mamba_ssm.ops.triton.ssd_combined, Triton only).

    SSD computes y_t = sum_{s<=t} (C_t . B_s) exp(sum_{s<r<=t} dt_r A) dt_s x_s, which is the
    linear-decay-none core with q = C, k = B, v = dt * x, a = dt * A and scale 1. dt is drawn as
    powers of two so that v = dt * x and a = dt * A are exact in the input format: the inputs we
    hand the oracle are then exactly the problem the kernel solved. SSD's states are (b, h, p, n)
    (value-major); MambaCheck's are [B, H, F, dv], so they are transposed here.
    """
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    dtype = DTYPES[dtname]
    dev = "cuda"
    # mamba_ssm's chunk scan: tl.dot on the input dtype (fp32 -> TF32 by Triton's default), fp32
    # accumulators, fp32 chunk states (states are allocated in float32), exp of fp32 prefix sums.
    acc = {"float32": "tf32" if fp32_dots == "tf32" else "float32",
           "float16": "float16-acc32", "bfloat16": "bfloat16-acc32"}[dtname]
    tag = dtname if dtname != "float32" else ("float32-" + fp32_dots)
    shapes = [(1000, 2, 64, 64, True), (777, 1, 128, 64, False)]
    if ALT:
        shapes = [(2048, 2, 64, 64, True), (300, 4, 128, 128, False)]
    if BATCH > 1:
        shapes = [(513, 3, 64, 64, True), (1100, 2, 128, 64, False)]
    if TINY:
        shapes = [(1, 2, 64, 64, True), (1, 1, 64, 64, False), (7, 2, 64, 64, False), (65, 1, 64, 64, True)]
    for (N, H, K, V, with_h0) in shapes[:1] if QUICK else shapes:
        gen = torch.Generator(device=dev).manual_seed(seed + 11 * N + K)
        C = torch.randn(BATCH, N, H, K, device=dev, generator=gen).to(dtype)
        Bm = torch.randn(BATCH, N, H, K, device=dev, generator=gen).to(dtype)
        x = torch.randn(BATCH, N, H, V, device=dev, generator=gen).to(dtype)
        do = torch.randn(BATCH, N, H, V, device=dev, generator=gen).to(dtype)
        # dt: Mamba-2's softplus(dt) range, rounded to a power of two (2^-7 .. 2^0)
        dt = F.softplus(torch.randn(BATCH, N, H, device=dev, generator=gen) - 2.0)
        dt = torch.exp2(torch.clamp(torch.round(torch.log2(dt)), -7, 0)).float()
        A = -torch.exp(torch.rand(H, device=dev, generator=gen) * 2.0).float()  # A in [-e^2, -1]
        h0 = torch.randn(BATCH, H, V, K, device=dev, generator=gen) if with_h0 else None
        v = (x.float() * dt[..., None]).to(dtype)       # exact: dt is a power of two
        a = (dt * A[None, None, :]).float()              # exact: dt is a power of two
        inputs = {"q": C, "k": Bm, "v": v, "a": a, "do": do}
        if h0 is not None:
            inputs["initial_state"] = h0.transpose(-1, -2).contiguous()
        shape_tag = f"n{N}-h{H}-d{K}" + (f"-b{BATCH}" if BATCH > 1 else "")
        name = f"mamba2-ssd-{tag}-{shape_tag}"
        meta = dict(kernel="mamba_ssm.ops.triton.ssd_combined mamba_chunk_scan_combined",
                    core="linear-decay-none", layout="bnhd", arith=acc, dtype=dtname, N=N, H=H,
                    dk=K, dv=V, decay="mamba2", seed=seed, scale="1")

        def call(dt_used, A_used, h0_used, chunk=64, grad=False):
            xs, Bs, Cs = x, Bm, C
            if grad:
                xs, Bs, Cs = (t.clone().requires_grad_(True) for t in (x, Bm, C))
            y, ht = mamba_chunk_scan_combined(xs, dt_used, A_used, Bs, Cs, chunk, D=None,
                                              initial_states=h0_used, return_final_states=True)
            return y, ht, (xs, Bs, Cs)

        y, ht, (xs, Bs, Cs) = call(dt, A, h0, grad=True)
        y.backward(do)
        cand = {"o": y.detach(), "final_state": ht.detach().transpose(-1, -2).contiguous(),
                "dq": Cs.grad.detach(), "dk": Bs.grad.detach(),
                # dL/dv = dL/dx / dt, exact for a power-of-two dt
                "dv": (xs.grad.detach().float() / dt[..., None]).to(dtype)}
        d.add(name, inputs, cand, correct=True, **meta)
        if N != 1000 or ALT:
            continue
        with torch.no_grad():
            bugs = {"no-initial-state": dict(h0=None),
                    "A-8u": dict(A=A * (1 + 8 * 2.0 ** -11)),
                    "o-via-bfloat16": None}
            for bname, kw in bugs.items():
                if kw is None:
                    # an output stored through bfloat16 (a plausible dtype slip in a wrapper)
                    y2 = y.detach().to(torch.bfloat16).to(dtype) if dtype != torch.bfloat16 else None
                    if y2 is None:
                        continue
                    out = {"o": y2}
                else:
                    yb, hb, _ = call(dt, kw.get("A", A), kw.get("h0", h0))
                    out = {"o": yb, "final_state": hb.transpose(-1, -2).contiguous()}
                d.add(f"{name}-bug-{bname}", None, out, inputs_of=name, correct=False, bug=bname, **meta)


def sdpa_cases(d, dtname, seed):
    """PyTorch's causal scaled_dot_product_attention (softmax attention, the core
    exponential-nodecay-sum) through each backend the GPU offers: FlashAttention-2 (fp16/bf16),
    the memory-efficient CUTLASS kernel, cuDNN, and the math reference (matmul + softmax)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    dtype = DTYPES[dtname]
    dev = "cuda"
    # Declared arithmetic, from the kernels' sources: flash, efficient and cuDNN run q·k and p·v
    # on tensor cores with the input dtype as operands and Float32 accumulation, softmax in
    # Float32 (P rounded to the input dtype before p·v); the efficient kernel's fp32 path uses
    # 3xTF32 (OpMultiplyAddFastF32), about Float32-accurate. The math backend is matmul + softmax;
    # its fp32 matmuls are IEEE (allow_tf32 is off by default).
    acc = {"float32": "float32", "float16": "float16-acc32", "bfloat16": "bfloat16-acc32"}[dtname]
    # The memory-efficient kernel on fp32 declares 3xTF32, the arithmetic its source uses.
    eff_arith = "float32-3xtf32" if dtname == "float32" else acc
    # Since PyTorch 2.5 the math backend upcasts fp16/bf16 to Float32 unless
    # allow_fp16_bf16_reduction_math_sdp(True) was called: Float32 arithmetic then.
    allowed = getattr(torch.backends.cuda, "fp16_bf16_reduction_math_sdp_allowed", None)
    math_arith = "float32" if allowed is not None and not allowed() else acc
    backends = [("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                ("cudnn", SDPBackend.CUDNN_ATTENTION), ("math", SDPBackend.MATH)]
    shapes = [(1000, 2, 64), (512, 4, 128)]
    if ALT:
        shapes = [(2048, 1, 64), (300, 2, 128)]
    if BATCH > 1:
        shapes = [(600, 3, 64)]
    if TINY:
        shapes = [(1, 2, 64), (9, 2, 64)]
    if SWEEP:
        # Short sequences at three head sizes: where few rows leave the verdict least
        # room, and the memory-efficient fp32 kernel's 3xTF32 products came closest.
        shapes = [(n, 2, kd) for n in SWEEP_LENGTHS for kd in (32, 64, 128)]
    for (N, H, K) in shapes:
        gen = torch.Generator(device=dev).manual_seed(seed + 3 * N + K)
        q = torch.randn(BATCH, H, N, K, device=dev, generator=gen).to(dtype)
        k = torch.randn(BATCH, H, N, K, device=dev, generator=gen).to(dtype)
        v = torch.randn(BATCH, H, N, K, device=dev, generator=gen).to(dtype)
        do = torch.randn(BATCH, H, N, K, device=dev, generator=gen).to(dtype)
        # The kernels take the scale as a C float: pass that value, and record it exactly.
        scale = torch.tensor(1 / math.sqrt(K), dtype=torch.float32).item()
        inputs = {"q": q, "k": k, "v": v, "do": do}
        shape_tag = f"n{N}-h{H}-d{K}" + (f"-b{BATCH}" if BATCH > 1 else "")
        first = None
        for bname, backend in backends:
            if BACKENDS and bname not in BACKENDS:
                continue
            if bname == "flash" and dtname == "float32":
                continue
            lv = {n: t.clone().requires_grad_(True) for n, t in (("q", q), ("k", k), ("v", v))}
            try:
                with sdpa_kernel([backend]):
                    o = F.scaled_dot_product_attention(lv["q"], lv["k"], lv["v"], is_causal=True, scale=scale)
                    o.backward(do)
            except RuntimeError as e:
                print(f"sdpa {bname} {dtname} {shape_tag}: unavailable ({str(e)[:100]})", flush=True)
                continue
            cand = {"o": o.detach(), "dq": lv["q"].grad, "dk": lv["k"].grad, "dv": lv["v"].grad}
            name = f"torch-sdpa_{bname}-{dtname}-{shape_tag}"
            meta = dict(kernel=f"torch.nn.functional.scaled_dot_product_attention ({bname})",
                        core="exponential-nodecay-sum", layout="bhnd",
                        arith=math_arith if bname == "math" else (eff_arith if bname == "efficient" else acc),
                        dtype=dtname, N=N, H=H,
                        dk=K, dv=K, decay="none", seed=seed, scale=repr(scale))
            # The first backend that runs writes the inputs; the others share them.
            d.add(name, inputs, cand, inputs_of=first, correct=True, **meta)
            first = first or name
            if bname != "flash" or ALT:
                continue
            # Call-site bugs on the flash kernel (forward only): a scale off by 8 units of the
            # input format, and the output stored through bfloat16 (fp16 only).
            with torch.no_grad(), sdpa_kernel([backend]):
                u = 2.0 ** -11 if dtname == "float16" else 2.0 ** -8
                ob = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale * (1 + 8 * u))
                d.add(f"{name}-bug-scale-8u", None, {"o": ob}, inputs_of=name, correct=False,
                      bug="scale-8u", **meta)
                if dtname == "float16":
                    d.add(f"{name}-bug-o-via-bfloat16", None, {"o": o.detach().to(torch.bfloat16).to(dtype)},
                          inputs_of=name, correct=False, bug="o-via-bfloat16", **meta)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--fp32-dots", choices=["tf32", "ieee"], default="tf32")
    p.add_argument("--seed", type=int, default=20261205)
    p.add_argument("--only", default="fla,twomamba,ssd")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--shapes", choices=["default", "alt", "batch", "tiny", "sweep"], default="default",
                   help="alt: other lengths (512-4096), 1-4 heads, head dims 32-128; batch: two "
                        "sequences, lengths off the chunk grid, dk != dv; tiny: decode-sized problems, N = 1 "
                        "to 65; correct kernels only")
    p.add_argument("--sweep-lengths", default="", help="--shapes sweep: comma-separated sequence lengths")
    p.add_argument("--backends", default="", help="SDPA: comma-separated subset of flash,efficient,cudnn,math")
    p.add_argument("--dtypes", default="", help="comma-separated subset of float32,float16,bfloat16")
    args = p.parse_args()
    global QUICK, ALT, BATCH, TINY, SWEEP, BACKENDS, SWEEP_LENGTHS
    QUICK = args.quick
    ALT = args.shapes in ("alt", "batch", "tiny", "sweep")
    TINY = args.shapes == "tiny"
    SWEEP = args.shapes == "sweep"
    BACKENDS = [b for b in args.backends.split(",") if b]
    if args.sweep_lengths:
        SWEEP_LENGTHS = tuple(int(n) for n in args.sweep_lengths.split(","))
    BATCH = 2 if args.shapes == "batch" else 1
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    if args.fp32_dots == "ieee":
        # Triton reads this when it compiles a tl.dot; without it fp32 dots run at TF32 and the
        # dump would be labelled float32 while it is TF32 (a 2026-12-07 dump was: MambaCheck
        # failed it and named TF32 as the arithmetic its error fits).
        os.environ["TRITON_F32_DEFAULT"] = "ieee"
    import triton
    env = {"torch": torch.__version__, "triton": triton.__version__,
           "gpu": torch.cuda.get_device_name(), "fp32_dots": args.fp32_dots,
           "TRITON_F32_DEFAULT": os.environ.get("TRITON_F32_DEFAULT", "")}
    try:
        import fla
        env["fla"] = fla.__version__
    except Exception as e:  # noqa: BLE001
        env["fla"] = "unavailable: %s" % e
    try:
        import mamba_ssm
        env["mamba_ssm"] = mamba_ssm.__version__
    except Exception as e:  # noqa: BLE001
        env["mamba_ssm"] = "unavailable: %s" % e
    d = Dumper(args.out, env)
    dtypes = ["float32"] if args.fp32_dots == "ieee" else ["float32", "float16", "bfloat16"]
    if args.dtypes:
        dtypes = [t for t in dtypes if t in args.dtypes.split(",")]
    for dt in dtypes:
        families = [("fla", lambda: fla_cases(d, dt, args.fp32_dots, args.seed,
                                              ieee_subset=args.fp32_dots == "ieee")),
                    ("twomamba", lambda: twomamba_cases(d, dt, args.fp32_dots, args.seed)),
                    ("ssd", lambda: ssd_cases(d, dt, args.fp32_dots, args.seed)),
                    ("sdpa", lambda: sdpa_cases(d, dt, args.seed))]
        for fam, run_family in families:
            if fam not in args.only:
                continue
            try:
                run_family()
            except Exception:  # noqa: BLE001 -- one family failing must not lose the others' dumps
                import traceback
                print(f"family {fam} ({dt}) failed:", flush=True)
                traceback.print_exc()
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"environment": env, "cases": d.cases}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
