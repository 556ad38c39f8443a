#!/usr/bin/env python3
"""Runner template: connects your kernel to `mambacheck suite` and `mambacheck fuzz`.

Edit ONE function, `run_kernel`, to call your kernel. Everything else (reading
the inputs file, chaining state hand-offs, writing the outputs file atomically)
is done here and needs only numpy; your kernel brings torch, CUDA, Triton, ….

Usage:

    python3 mambacheck_runner.py INPUTS.npz OUTPUTS.npz [--entry chunked|recurrent] [--core NAME] [--scale S]
    python3 mambacheck_runner.py --campaign DIR        # every case of DIR/manifest.json, in order

The first form is what `mambacheck fuzz --exec 'python3 mambacheck_runner.py {inputs} {outputs}'` runs.

Array names (the same as `mambacheck compare`, layout bhnd = [B, H, N, d]):

  inputs   q, k [B,H,N,dk]; v [B,H,N,dv]; a [B,H,N] (per-step log-decay, <= 0; decayed cores) or
           a_cumsum [B,H,N] (inclusive prefix sums); initial_state [B,H,F,dv]; initial_state_z [B,H,F]
           (sum-normalised cores); do [B,H,N,dv] (upstream gradient, campaigns made with --grads).
  outputs  o [B,H,N,dv]; final_state [B,H,F,dv] and final_state_z [B,H,F] when the core keeps a state;
           optionally the gradients dq, dk, dv, da (or da_cumsum), dinitial_state, dinitial_state_z.

Variable-length batches (FLA's packing): when the inputs hold `cu_seqlens` [S+1] (int32, offsets
0 = cu_seqlens[0] <= … <= cu_seqlens[S] = T), q, k, v, a and do are [1, H, T, …], sequence s occupies tokens
cu_seqlens[s] ..< cu_seqlens[s+1] (it may be empty), initial_state(_z) is [S, H, F, dv] ([S, H, F]), and your
kernel must return final_state [S, H, F, dv] (and final_state_z [S, H, F]): one state per sequence, each
sequence started from its own initial state, nothing crossing a boundary. Pass cu_seqlens to your kernel
(e.g. FLA's `cu_seqlens=` argument, after transposing to [1, T, H, d]).

F = dk for first-order scores and dk(dk+1)/2 for the squared score (packed upper triangle, sqrt(2)
cross weights, docs/MATH.md §4). States hold unscaled key features (FLA convention, docs/MATH.md §0).
Store outputs in the dtype your kernel produces: the judge reads the format from the dtype.

bfloat16 campaigns (`--arith bfloat16-acc32…`) use .safetensors files, since NumPy has no bfloat16.
This file reads them with NumPy alone: bfloat16 inputs reach run_kernel as float32 arrays holding the
exact bfloat16 values, with info["dtypes"][name] == "bfloat16" (cast them back, e.g.
`torch.from_numpy(x).to(torch.bfloat16)`). Return bfloat16 outputs as torch bfloat16 tensors (or
`bfloat16(x)` of a float32 array): they are written as BF16.

Campaign cases may carry `initial_state_from`: the case then starts from the final state that YOUR
kernel returned for that earlier case (the state hand-off probe); this file injects it as
initial_state / initial_state_z before calling run_kernel.

`run_kernel` may return None for an entry it does not provide (e.g. no separate recurrent kernel):
no outputs file is written and the judge reports that property as not applicable.
"""
import json
import os
import sys
import tempfile

import numpy as np


def run_kernel(inputs, info):
    """Call your kernel here. EDIT THIS FUNCTION.

    inputs: dict of numpy arrays named as in the module docstring (bhnd layout).
    info:   dict with "core" (e.g. "squared-decay-sum"; None if not known), "scale" (the score scale
            s; None means 1/sqrt(dk)), "entry" ("chunked" or "recurrent"), "dtypes" ({name:
            "bfloat16"} for the inputs stored in bfloat16).
    Returns a dict of numpy arrays (o, final_state, final_state_z, gradients), or None when `entry`
    is not provided by your kernel.

    Example with PyTorch (transpose if your kernel wants [B, N, H, d]):

        import torch
        t = {n: torch.from_numpy(x).cuda() for n, x in inputs.items()}
        o, s = my_kernel(t["q"], t["k"], t["v"], t["a"], initial_state=t.get("initial_state"))
        return {"o": o.cpu().numpy(), "final_state": s.float().cpu().numpy()}
    """
    raise NotImplementedError("edit run_kernel() in mambacheck_runner.py to call your kernel")


# ---------------------------------------------------------------------------------------------
# Driver: no need to edit below.

class BFloat16:
    """A bfloat16 array as its bit patterns (NumPy has no bfloat16): `bits` is a uint16 array.

    `run_kernel` may return one (or a torch bfloat16 tensor, converted here) for an output stored in
    bfloat16; it can be written to a .safetensors outputs file only."""

    def __init__(self, bits):
        self.bits = np.ascontiguousarray(bits, dtype=np.uint16)

    @property
    def shape(self):
        return self.bits.shape

    def float32(self):
        """The exact values as float32 (every bfloat16 is a float32)."""
        return (self.bits.astype(np.uint32) << 16).view(np.float32)


def bfloat16(x):
    """Rounds a float32 array to bfloat16 (to nearest, ties to even), as a `BFloat16`."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    nan = (b & 0x7FFFFFFF) > 0x7F800000
    r = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return BFloat16(np.where(nan, (b >> 16) | 0x40, r).astype(np.uint16))


SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
                      "I32": np.int32}


def load_safetensors(path):
    """Reads a .safetensors file with NumPy alone; BF16 arrays come back as exact float32 arrays."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    arrays, dtypes = {}, {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        b, e = meta["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        if meta["dtype"] == "BF16":
            arrays[name] = BFloat16(np.frombuffer(raw, "<u2").reshape(meta["shape"])).float32()
            dtypes[name] = "bfloat16"
        else:
            dt = np.dtype(SAFETENSORS_DTYPES[meta["dtype"]]).newbyteorder("<")
            arrays[name] = np.frombuffer(raw, dt).reshape(meta["shape"]).astype(dt.newbyteorder("="))
    return arrays, dtypes


def write_safetensors(f, arrays):
    names = {np.dtype(v): k for k, v in SAFETENSORS_DTYPES.items()}
    header, blobs, offset = {}, [], 0
    for name, x in arrays.items():
        if isinstance(x, BFloat16):
            raw, dtype = x.bits.astype("<u2").tobytes(), "BF16"
        else:
            x = np.ascontiguousarray(x)
            if x.dtype not in names:
                raise SystemExit(f"error: output {name}: dtype {x.dtype} cannot be stored")
            raw, dtype = x.astype(x.dtype.newbyteorder("<")).tobytes(), names[x.dtype]
        header[name] = {"dtype": dtype, "shape": list(x.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def load(path):
    """The arrays of an inputs (or outputs) file, and {name: "bfloat16"} for arrays stored in bfloat16."""
    if path.endswith(".safetensors"):
        return load_safetensors(path)
    with np.load(path, allow_pickle=False) as z:
        return {name: z[name] for name in z.files}, {}


def save_atomic(arrays, path, refuse=()):
    """Writes an .npz next to `path`, then renames it over `path`; never over an input file."""
    real = os.path.realpath(path)
    for r in refuse:
        if os.path.exists(r) and os.path.realpath(r) == real:
            raise SystemExit(f"error: refusing to overwrite the inputs file {r}")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".mambacheck-", suffix=os.path.splitext(path)[1], dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if path.endswith(".safetensors"):
                write_safetensors(f, arrays)
            else:
                bf16 = [n for n, x in arrays.items() if isinstance(x, BFloat16)]
                if bf16:
                    raise SystemExit(f"error: {', '.join(bf16)} in bfloat16 need a .safetensors outputs path")
                np.savez(f, **{n: np.ascontiguousarray(x) for n, x in arrays.items()})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_one(inputs_path, outputs_path, info, kernel, extra_inputs=None):
    inputs, dtypes = load(inputs_path)
    if extra_inputs:
        inputs.update(extra_inputs)
    out = kernel(inputs, dict(info, dtypes=dtypes))
    if out is None:
        return False
    arrays = {}
    for name, x in out.items():
        if hasattr(x, "detach"):  # a torch tensor returned as is
            x = x.detach().cpu()
            if str(x.dtype) == "torch.bfloat16":
                import torch
                arrays[name] = BFloat16(x.contiguous().view(torch.int16).numpy().view(np.uint16))
                continue
            x = x.numpy()
        arrays[name] = x if isinstance(x, BFloat16) else np.asarray(x)
    if "o" not in arrays and not any(n.startswith("d") for n in arrays):
        raise SystemExit(f"error: run_kernel returned no 'o' for {inputs_path}")
    save_atomic(arrays, outputs_path, refuse=[inputs_path])
    return True


def handed_off_state(directory, manifest, case_id):
    """initial_state(_z) for a case: the final state the kernel returned for case `case_id`."""
    source = next(c for c in manifest["cases"] if c["id"] == case_id)
    out, _ = load(os.path.join(directory, source["outputs"]))
    if "final_state" not in out:
        return None
    extra = {"initial_state": out["final_state"]}
    if "final_state_z" in out:
        extra["initial_state_z"] = out["final_state_z"]
    return extra


def run_campaign(directory, kernel):
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    os.makedirs(os.path.join(directory, "outputs"), exist_ok=True)
    for case in manifest["cases"]:
        info = {"core": manifest["core"], "scale": manifest.get("scale"), "entry": case.get("entry", "chunked")}
        extra = None
        if case.get("initial_state_from"):
            extra = handed_off_state(directory, manifest, case["initial_state_from"])
            if extra is None:
                print(f"{case['id']}: case {case['initial_state_from']} returned no final_state; skipped",
                      file=sys.stderr)
                continue
        wrote = run_one(os.path.join(directory, case["inputs"]), os.path.join(directory, case["outputs"]),
                        info, kernel, extra)
        print(f"{case['id']}: {'ok' if wrote else 'entry ' + info['entry'] + ' not provided'}", file=sys.stderr)


def main(argv=None, kernel=None):
    import argparse
    kernel = kernel or run_kernel
    p = argparse.ArgumentParser(description="MambaCheck runner: inputs file in, outputs file out.")
    p.add_argument("paths", nargs="*", help="INPUTS OUTPUTS")
    p.add_argument("--campaign", help="run every case of DIR/manifest.json")
    p.add_argument("--entry", default="chunked", choices=["chunked", "recurrent"])
    p.add_argument("--core", default=None, help="core name (campaigns take it from the manifest)")
    p.add_argument("--scale", type=float, default=None)
    args = p.parse_args(argv)
    if args.campaign:
        run_campaign(args.campaign, kernel)
        return 0
    if len(args.paths) != 2:
        p.error("give INPUTS OUTPUTS, or --campaign DIR")
    run_one(args.paths[0], args.paths[1], {"core": args.core, "scale": args.scale, "entry": args.entry}, kernel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
