import CHalf
import MambaPrecision

/// How the optimized kernels round Float32 values to a storage format
/// (docs/MATH.md §7): a `NumberFormat` of MambaPrecision, and for TF32 whether
/// the low bits are rounded to nearest or truncated. Which format each value
/// of a precision mode is rounded to is `PrecisionMode.formats`.
///
/// Every rounding is round-to-nearest, ties-to-even, applied to a Float32
/// value. binary16 goes through the CHalf F16C path (hardware conversion,
/// bit-exact scalar fallback): subnormals are kept, values beyond the
/// largest finite binary16 (65504) become ±Inf, NaN stays NaN. bfloat16 and
/// TF32 keep the Float32 exponent range and round the significand to 8 and
/// 11 bits; values that round past the largest finite value become ±Inf,
/// NaN stays NaN, ±Inf stay ±Inf. TF32 truncation (`truncates`) is the exception to
/// round-to-nearest: the 13 low significand bits are dropped (toward zero),
/// which is what a tensor core does with Float32 registers handed to a TF32
/// MMA without an explicit `cvt.rna.tf32.f32` — Triton's default `tl.dot` on
/// fp32 data (triton-lang/triton#4574 measures its larger, biased error).
/// binary64 leaves Float32 values unchanged (each is a binary64 value); the
/// FP8 formats, which no mode uses, go through MambaPrecision's scalar
/// rounding.
@usableFromInline
struct Float32Rounding: Sendable, Equatable {
    @usableFromInline let format: NumberFormat
    /// TF32 by dropping the 13 low significand bits instead of rounding.
    @usableFromInline let truncates: Bool

    @inlinable
    init(_ format: NumberFormat, truncating: Bool = false) {
        self.format = format
        self.truncates = truncating && format == .tf32
    }

    @usableFromInline static let float32 = Float32Rounding(.binary32)
    @usableFromInline static let float16 = Float32Rounding(.binary16)
    @usableFromInline static let bfloat16 = Float32Rounding(.bfloat16)

    /// Rounds `count` Float32 values in place.
    @inlinable
    func round(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        guard count > 0 else { return }
        switch format {
        case .binary32, .binary64: return
        case .binary16: mc_round_float_through_half(p, count)
        case .bfloat16: roundToBFloat16(p, count)
        case .tf32: if truncates { truncateToTF32(p, count) } else { roundToTF32(p, count) }
        case .e4m3, .e5m2: for i in 0..<count { p[i] = format.round(p[i]) }
        }
    }

    /// One value rounded to the format.
    @inlinable
    func round(_ x: Float) -> Float {
        var y = x
        round(&y, 1)
        return y
    }
}

/// Rounds the significand of each Float32 to `24 − droppedBits` bits, to
/// nearest even, keeping the Float32 exponent range (bfloat16: 16, TF32: 13).
/// Adding `halfUlp + lsb` and truncating is round-to-nearest-even, carries
/// into the exponent (up to Inf) included, and maps ±Inf to itself; NaNs
/// (the only inputs with `|bits| > 0x7F800000`) get the quiet bit so that
/// truncating the payload keeps them NaN. Branch-free, vectorised.
@inlinable @inline(__always)
func roundSignificand(_ p: UnsafeMutablePointer<Float>, _ n: Int, droppedBits: UInt32) {
    let halfUlp: UInt32 = (1 << (droppedBits - 1)) - 1
    let mask: UInt32 = ~((1 << droppedBits) - 1)
    let u = UnsafeMutableRawPointer(p).assumingMemoryBound(to: Int32.self)
    for i in 0..<n {
        let b = UInt32(bitPattern: u[i])
        let rounded = (b &+ halfUlp &+ ((b >> droppedBits) & 1)) & mask
        let isNaN = Int32(bitPattern: b & 0x7FFF_FFFF) > 0x7F80_0000
        u[i] = Int32(bitPattern: isNaN ? (b | 0x0040_0000) & mask : rounded)
    }
}

/// bfloat16 rounding with the shift as a constant (so the loop specialises).
@inlinable
func roundToBFloat16(_ p: UnsafeMutablePointer<Float>, _ n: Int) { roundSignificand(p, n, droppedBits: 16) }

/// TF32 rounding with the shift as a constant.
@inlinable
func roundToTF32(_ p: UnsafeMutablePointer<Float>, _ n: Int) { roundSignificand(p, n, droppedBits: 13) }

/// TF32 by truncation: the 13 low significand bits cleared (toward zero).
/// ±Inf and zero are unchanged; NaNs get the quiet bit first so they stay NaN.
@inlinable
func truncateToTF32(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
    let mask: UInt32 = ~((1 << 13) - 1)
    let u = UnsafeMutableRawPointer(p).assumingMemoryBound(to: UInt32.self)
    for i in 0..<n {
        let b = u[i]
        let isNaN = b & 0x7FFF_FFFF > 0x7F80_0000
        u[i] = (isNaN ? b | 0x0040_0000 : b) & mask
    }
}

/// Allocates `n` Float32 values filled with `fill` (NaN by default, so a
/// kernel that reads memory it never wrote produces NaN loudly). The caller
/// deallocates.
@inlinable
func allocateFloats(_ n: Int, fill: Float = .nan) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(n, 1))
    p.initialize(repeating: fill, count: Swift.max(n, 1))
    return p
}

/// Decay factors `exp(ℓ_i − ℓ_j)` (and exponential-score ratios
/// `exp(λ − m) ≤ 1`) below this are flushed to zero.
///
/// Why: x86 subnormal arithmetic inside `cblas_sgemm` is 10–25× slower, and
/// a small decay factor multiplied by features and values produces
/// subnormal products even when the factor itself is normal: with a
/// 128-token chunk and `a ≈ −0.7`, `exp(ℓ_last − ℓ_j)` reaches `exp(−90)`
/// on every chunk and the chunked 2Mamba kernel ran 25× slower (measured).
/// What it costs: a dropped term is a key whose decay is below
/// `2⁻⁶⁰ ≈ 8.7·10⁻¹⁹` — for the exponential score a weight below `2⁻⁶⁰` of
/// the row maximum (relative effect `≤ N·2⁻⁶⁰`, far below Float32's `2⁻²⁴`);
/// for feature-map scores an absolute perturbation `≤ 2⁻⁶⁰·|f(s·q·k)|·|v|`
/// per dropped key, which matters only if the row's retained weight is below
/// `2⁻³⁶` of that key's score. GPU kernels make the same kind of choice
/// (`ex2.approx.ftz`). Binary16 values are never affected (the smallest
/// binary16 subnormal is 2⁻²⁴).
@usableFromInline let decayFlushThreshold: Float = 0x1p-60

/// `log(decayFlushThreshold)` = −60·ln 2: a per-step log-decay below it is a
/// reset (its factor, and every product containing it, flushes to 0).
@usableFromInline let resetLogDecay: Float = -41.588830833596716

/// `x`, or 0 when `|x| < decayFlushThreshold`; for decay factors only.
@inlinable @inline(__always)
func flushed(_ x: Float) -> Float { abs(x) < decayFlushThreshold ? 0 : x }
