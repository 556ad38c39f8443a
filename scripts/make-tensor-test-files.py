#!/usr/bin/env python3
"""Generate the tensor files that Tests/MambaTensorsTests read.

Usage (from the package root):

    python3 scripts/make-tensor-test-files.py [output-dir]

Default output: Tests/MambaTensorsTests/Data. Made with Python 3 and NumPy
2.4 (numpy.save, numpy.lib.format.write_array, numpy.savez,
numpy.savez_compressed). Safetensors files are written by hand below with
struct + json, following the format description at
https://huggingface.co/docs/safetensors (the `safetensors` package is not
used). Re-running produces identical files except for the zip timestamps in
the .npz files, which the tests do not depend on.

Besides the tensor files it writes `expected.json`, a sidecar recording for
every array in every file: its dtype, its C-order shape and the bit pattern
of every element in C (row-major) order, as hexadecimal strings taken from
NumPy's own in-memory arrays (`arr.view(uintN)`). The Swift tests compare
what MambaTensors reads against these bits, so expected values are exact,
including NaN payloads, signed zeros and subnormals.

Formula arrays (`arange*0.1` and the rounding-tie cases) are also recomputed
in the Swift tests with MambaTensors' own rounding, checking its
float64 -> float32/float16/bfloat16 conversions against NumPy (and, for
bfloat16, against the exact rational rounding in `bf16_bits` below).
"""

import json
import math
import os
import struct
import sys
from fractions import Fraction

import numpy as np

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join("Tests", "MambaTensorsTests", "Data")
expected = {}

DTYPE_NAMES = {
    np.dtype(np.float16): "float16",
    np.dtype(np.float32): "float32",
    np.dtype(np.float64): "float64",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
}
UINT_FOR_SIZE = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def bits_of(arr):
    """C-order bit patterns of a NumPy array as hex strings."""
    native = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("="))
    width = native.dtype.itemsize
    return ["0x%0*X" % (2 * width, int(b)) for b in native.view(UINT_FOR_SIZE[width]).ravel()]


def record(file, name, arr):
    dtype = DTYPE_NAMES[arr.dtype.newbyteorder("=")]
    expected.setdefault(file, {})[name] = {"dtype": dtype, "shape": list(arr.shape), "bits": bits_of(arr)}


def record_bits(file, name, dtype, shape, bits, width):
    expected.setdefault(file, {})[name] = {
        "dtype": dtype, "shape": list(shape), "bits": ["0x%0*X" % (2 * width, b) for b in bits]}


def path(name):
    return os.path.join(OUT, name)


def from_bits(bits, dtype):
    width = np.dtype(dtype).itemsize
    return np.array(bits, dtype=UINT_FOR_SIZE[width]).view(dtype)


# --- formula arrays -------------------------------------------------------

arange = (np.arange(12, dtype=np.float64) * 0.1).reshape(3, 4)   # Swift: Double(i) * 0.1
for dtype, stem in [(np.float64, "arange_f8"), (np.float32, "arange_f4"), (np.float16, "arange_f2")]:
    arr = arange.astype(dtype)
    np.save(path(stem + ".npy"), arr)
    record(stem + ".npy", stem, arr)

# float64 values next to float16 rounding ties: rounding through float32 first
# would give the wrong answer for the first one (double rounding).
TIES_F2 = [1 + 2.0**-11 + 2.0**-40, 1 + 2.0**-11, 1 + 3 * 2.0**-11, -(1 + 2.0**-11 + 2.0**-40),
           65519.99, 65520.0, 2.0**-25, 2.0**-25 + 2.0**-60, -1.5 * 2.0**-24, 1e-10, 0.1, -0.0]
with np.errstate(over="ignore"):   # 65520 rounds to +inf, as intended
    arr = np.array(TIES_F2, dtype=np.float64).astype(np.float16)
np.save(path("ties_f2.npy"), arr)
record("ties_f2.npy", "ties_f2", arr)

# --- special values, by bit pattern ---------------------------------------

SPECIAL_F2 = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF]
SPECIAL_F4 = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001,
              0x00000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF]
SPECIAL_F8 = [0x0000000000000000, 0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000,
              0x7FF8000000000000, 0xFFF8000000000001, 0x7FF0000000000001, 0x0000000000000001,
              0x000FFFFFFFFFFFFF, 0x0010000000000000, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF]
for bits, dtype, stem in [(SPECIAL_F2, np.float16, "specials_f2"), (SPECIAL_F4, np.float32, "specials_f4"),
                          (SPECIAL_F8, np.float64, "specials_f8")]:
    arr = from_bits(bits, dtype).reshape(3, 4)
    np.save(path(stem + ".npy"), arr)
    record(stem + ".npy", stem, arr)

# --- layouts and header versions ------------------------------------------

fortran = np.asfortranarray((np.arange(24, dtype=np.float64) * 1.5).reshape(2, 3, 4))
assert fortran.flags.f_contiguous and not fortran.flags.c_contiguous
np.save(path("fortran_f8.npy"), fortran)          # header says fortran_order: True
record("fortran_f8.npy", "fortran_f8", fortran)

fortran2 = np.asfortranarray((np.arange(6, dtype=np.float32) - 2.5).reshape(2, 3))
np.save(path("fortran_f4.npy"), fortran2)
record("fortran_f4.npy", "fortran_f4", fortran2)

small = (np.arange(6, dtype=np.float64) * 0.25 - 0.5).astype(np.float32).reshape(2, 3)
for version, stem in [((2, 0), "v2_f4"), ((3, 0), "v3_f4")]:
    with open(path(stem + ".npy"), "wb") as f:
        np.lib.format.write_array(f, small, version=version)
    record(stem + ".npy", stem, small)

for dtype, stem in [(">f4", "bigendian_f4"), (">f8", "bigendian_f8")]:
    arr = small.astype(dtype)
    np.save(path(stem + ".npy"), arr)
    record(stem + ".npy", stem, arr)

cu32 = np.array([0, 5, 12, 20, -7], dtype=np.int32)
cu64 = np.array([0, 5, 12, 2**40 + 3, -(2**62)], dtype=np.int64)
np.save(path("cu_seqlens_i4.npy"), cu32)
record("cu_seqlens_i4.npy", "cu_seqlens_i4", cu32)
np.save(path("cu_seqlens_i8.npy"), cu64)
record("cu_seqlens_i8.npy", "cu_seqlens_i8", cu64)

scalar = np.array(3.25, dtype=np.float64)
np.save(path("scalar_f8.npy"), scalar)
record("scalar_f8.npy", "scalar_f8", scalar)

empty = np.zeros((0, 3), dtype=np.float32)
np.save(path("empty_f4.npy"), empty)
record("empty_f4.npy", "empty_f4", empty)

# --- npz --------------------------------------------------------------------

members = {
    "q": (np.arange(6, dtype=np.float64) * 0.1).astype(np.float32).reshape(2, 3),
    "k": (np.arange(4, dtype=np.float64) * -0.3).astype(np.float16).reshape(2, 2),
    "cu_seqlens": np.array([0, 3, 6], dtype=np.int32),
}
np.savez(path("stored.npz"), **members)
for name, arr in members.items():
    record("stored.npz", name, arr)

members["state"] = (np.arange(1000, dtype=np.float64) % 7).reshape(10, 100)  # compresses well
np.savez_compressed(path("deflated.npz"), **members)
for name, arr in members.items():
    record("deflated.npz", name, arr)

# --- safetensors, by hand ----------------------------------------------------


def bf16_bits(x):
    """float64 -> bfloat16 bit pattern, rounded once to nearest even, exactly (no double rounding)."""
    sign = 0x8000 if math.copysign(1.0, x) < 0 else 0
    if math.isinf(x):
        return sign | 0x7F80
    a = Fraction(abs(x))
    if a == 0:
        return sign
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    quantum = Fraction(2) ** (max(e, -126) - 7)   # 8 significant bits; subnormals below 2^-126
    value = round(a / quantum) * quantum          # Fraction rounding: half to even
    if value >= Fraction(2) ** 128:
        return sign | 0x7F80
    bits32 = struct.unpack("<I", struct.pack("<f", float(value)))[0]
    assert bits32 & 0xFFFF == 0
    return sign | (bits32 >> 16)


BF16_FORMULA = [(i - 3) * 0.3 for i in range(8)] + [
    1 + 2.0**-8 + 2.0**-40,   # just above a tie: rounding via float32 first would give 1.0
    1 + 2.0**-8, 1 + 3 * 2.0**-8, 3.0e38, 3.4e38, 2.0**-134, 2.0**-133 * 1.5, -1e-45]
BF16_KNOWN = [0x3F80, 0xC000, 0x3F00, 0x0001, 0x7F7F, 0x3DCD, 0x8000, 0x7F80, 0xFF80, 0x7FC1]

tensors = []   # (name, safetensors dtype, shape, little-endian bytes)
bf = [bf16_bits(x) for x in BF16_FORMULA]
tensors.append(("bf16_formula", "BF16", [len(bf)], struct.pack("<%dH" % len(bf), *bf)))
record_bits("mixed.safetensors", "bf16_formula", "bfloat16", [len(bf)], bf, 2)
tensors.append(("bf16_known", "BF16", [2, 5], struct.pack("<10H", *BF16_KNOWN)))
record_bits("mixed.safetensors", "bf16_known", "bfloat16", [2, 5], BF16_KNOWN, 2)
for name, arr in [("f16", arange.astype(np.float16)), ("f32", arange.astype(np.float32)),
                  ("f64", arange), ("i64", cu64)]:
    tensors.append((name, {np.float16: "F16", np.float32: "F32", np.float64: "F64", np.int64: "I64"}[arr.dtype.type],
                    list(arr.shape), arr.astype(arr.dtype.newbyteorder("<")).tobytes()))
    record("mixed.safetensors", name, arr)

header = {"__metadata__": {"format": "pt", "made_by": "scripts/make-tensor-test-files.py"}}
offset = 0
for name, dtype, shape, data in tensors:
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
    offset += len(data)
header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
header_bytes += b" " * ((8 - len(header_bytes) % 8) % 8)
with open(path("mixed.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(header_bytes)))
    f.write(header_bytes)
    for _, _, _, data in tensors:
        f.write(data)

with open(path("expected.json"), "w") as f:
    json.dump(expected, f, indent=0, sort_keys=True)
    f.write("\n")
print("wrote %d files to %s" % (len(expected) + 1, OUT))
