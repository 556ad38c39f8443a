/// A binary floating-point storage format that kernels round to (docs/MATH.md §7).
///
/// Every format is described by three integers, in IEEE 754 terms:
///
/// - `significandBits` p: the precision *including* the hidden bit;
/// - `emin`, `emax`: the exponents of the smallest and largest binade of normal
///   numbers, so that normal magnitudes lie in `[2^emin, 2^(emax+1))`.
///
/// The finite values are ±0, the subnormals `k · 2^(emin−p+1)` for
/// `0 < k < 2^(p−1)` and the normals `m · 2^(e−p+1)` for `2^(p−1) ≤ m < 2^p`,
/// `emin ≤ e ≤ emax`, with one exception: OCP FP8 E4M3 ("fn" variant) uses the
/// all-ones bit pattern of its top binade for NaN, so its largest finite value
/// is 448 = 1.75 · 2^8 rather than 480.
///
/// | format     | p  | emin  | emax | largest finite        | ±∞  |
/// |------------|----|-------|------|-----------------------|-----|
/// | binary64   | 53 | −1022 | 1023 | ≈ 1.798e308           | yes |
/// | binary32   | 24 | −126  | 127  | ≈ 3.403e38            | yes |
/// | binary16   | 11 | −14   | 15   | 65504                 | yes |
/// | bfloat16   | 8  | −126  | 127  | ≈ 3.390e38            | yes |
/// | tf32       | 11 | −126  | 127  | ≈ 3.401e38            | yes |
/// | fp8-e4m3   | 4  | −6    | 8    | 448                   | no  |
/// | fp8-e5m2   | 3  | −14   | 15   | 57344                 | yes |
///
/// All of these are subsets of binary64, so every value of every format is
/// exactly a `Double`; the `Double`-valued properties below are exact.
///
/// TF32 is the format NVIDIA tensor cores round Float32 *inputs* of a dot
/// product to (19 significant bits of storage: sign, 8 exponent bits, 10
/// fraction bits). Note that the hardware conversion instruction
/// `cvt.rna.tf32.f32` rounds ties *away* from zero; `round(_:)` here rounds ties
/// to even like every other format (the two differ only on exact midpoints).
public enum NumberFormat: String, CaseIterable, Sendable {
    case binary64
    case binary32
    case binary16
    case bfloat16
    case tf32
    /// OCP FP8 E4M3 ("fn": finite and NaN only, no infinities; max 448).
    case e4m3 = "fp8-e4m3"
    /// OCP FP8 E5M2 (IEEE-like: infinities, max 57344).
    case e5m2 = "fp8-e5m2"

    /// What happens to values too large for the format.
    public enum OverflowBehavior: Sendable, Equatable {
        /// IEEE 754 round to nearest: |x| ≥ (2 − 2^−p) · 2^emax, i.e. at least
        /// the largest finite value plus half of its ulp, becomes ±∞; anything
        /// smaller rounds to a finite value.
        case infinity
        /// Values that round (with an unbounded exponent) to a magnitude above
        /// the largest finite value become NaN; ±∞ becomes NaN as well
        /// (OCP FP8 E4M3 with saturation disabled).
        case nan
    }
}

// MARK: - Parameters

extension NumberFormat {
    /// Significand precision p, including the hidden bit: 53, 24, 11, 8, 11, 4, 3.
    public var significandBits: Int {
        switch self {
        case .binary64: 53
        case .binary32: 24
        case .binary16: 11
        case .bfloat16: 8
        case .tf32: 11
        case .e4m3: 4
        case .e5m2: 3
        }
    }

    /// Width of the biased exponent field: 11, 8, 5, 8, 8, 4, 5.
    public var exponentBits: Int {
        switch self {
        case .binary64: 11
        case .binary32, .bfloat16, .tf32: 8
        case .binary16, .e5m2: 5
        case .e4m3: 4
        }
    }

    /// Bits of a packed encoding: sign + exponent + fraction (TF32: 19, usually stored in 32).
    public var encodedBits: Int { 1 + exponentBits + significandBits - 1 }

    /// The exponent bias: 2^(exponentBits−1) − 1.
    public var exponentBias: Int { (1 << (exponentBits - 1)) - 1 }

    /// IEEE exponent of the largest binade: `bias` for IEEE-like formats, 8 for E4M3
    /// (whose all-ones exponent field still encodes normal numbers).
    public var emax: Int { self == .e4m3 ? exponentBias + 1 : exponentBias }

    /// IEEE exponent of the smallest normal binade: 1 − bias.
    public var emin: Int { 1 - exponentBias }

    /// Whether ±∞ are values of the format (all but E4M3).
    public var hasInfinities: Bool { self != .e4m3 }

    /// Every format here has a NaN.
    public var hasNaN: Bool { true }

    /// What `round(_:)` does with values too large for the format.
    public var overflowBehavior: OverflowBehavior { hasInfinities ? .infinity : .nan }

    /// The largest finite value: (2 − 2^(1−p)) · 2^emax, except E4M3: 448.
    public var greatestFiniteMagnitude: Double {
        let p = significandBits
        let spare = self == .e4m3 ? 2 : 1      // E4M3 loses its top significand to NaN
        return Double(sign: .plus, exponent: emax - p + 1, significand: Double((1 << p) - spare))
    }

    /// The smallest positive normal value, 2^emin.
    public var leastNormalMagnitude: Double { Double(sign: .plus, exponent: emin, significand: 1) }

    /// The smallest positive subnormal value, 2^(emin − p + 1).
    public var leastNonzeroMagnitude: Double {
        Double(sign: .plus, exponent: emin - significandBits + 1, significand: 1)
    }

    /// The spacing of the values in [1, 2): 2^(1−p).
    public var epsilon: Double { Double(sign: .plus, exponent: 1 - significandBits, significand: 1) }

    /// The unit roundoff 2^−p: the largest relative error of rounding to nearest
    /// in the normal range.
    public var unitRoundoff: Double { Double(sign: .plus, exponent: -significandBits, significand: 1) }

    // MPFR writes x = f · 2^e with ½ ≤ |f| < 1, one more than the IEEE exponent.
    // Subnormals are emulated by mpfr_subnormalize, which needs emin set to the
    // exponent of the smallest subnormal: 2^(emin−p+1) = ½ · 2^(emin−p+2).

    /// MPFR exponent range (`mpfr_set_emin`) that, with `mpfr_subnormalize`, emulates this format.
    var mpfrEmin: Int { emin - significandBits + 2 }
    /// MPFR exponent range (`mpfr_set_emax`) that emulates this format (E4M3: before the NaN rule).
    var mpfrEmax: Int { emax + 1 }
}

extension NumberFormat: CustomStringConvertible {
    public var description: String { rawValue }
}
