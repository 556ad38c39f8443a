import CMPFR

/// A double-double ball for the certified gradients' fast first attempt
/// (Proofs/T7, step 8): the real `x` with `|x − (h + l)| ≤ r`, `(h, l)` a
/// normalised pair (`|l| ≤ u|h|`, `DD`'s conventions: round-to-nearest Double
/// operations, no contraction into FMA).
///
/// Each operation returns a ball holding the exact result of that operation
/// on every pair of reals of its operands' balls, provided the operands'
/// centres lie in `[2^−450, 2^450]` or are 0 (`inRange`, which the caller
/// checks before using a result as an operand): products then stay in
/// `[2^−900, 2^900]`, where `DD.mul` has its `9u²` bound. The radius formulas
/// are evaluated in Double times `up = 1 + 2^−40` (covering ≤ 16 roundings of
/// their own evaluation) plus `tiny = 2^−1060` (covering products that underflow).
struct DDBall {
    var h: Double, l: Double, r: Double

    static let zero = DDBall(h: 0, l: 0, r: 0)
    static let one = DDBall(h: 1, l: 0, r: 0)
    static let up = 1 + 0x1p-40
    static let tiny = 0x1p-1060

    /// An exactly known normalised pair.
    @inline(__always)
    init(h: Double, l: Double, r: Double) { self.h = h; self.l = l; self.r = r }

    /// The point 0 (a structural zero: products with it stay exact, sums skip it).
    @inline(__always)
    var isExactZero: Bool { h == 0 && l == 0 && r == 0 }

    /// The centre is 0 or in `[2^−450, 2^450]`, and the radius is finite.
    @inline(__always)
    var inRange: Bool {
        let m = h.magnitude
        return (m == 0 || (m >= 0x1p-450 && m <= 0x1p450)) && r < .infinity
    }

    /// `2x`, exact (in range: no overflow).
    @inline(__always)
    var doubled: DDBall { DDBall(h: 2 * h, l: 2 * l, r: 2 * r) }

    /// `a·b`: the centre `DD.mul` (relative error ≤ `9u²`), the radius
    /// `|â|r_b + |b̂|r_a + r_a r_b + 9u²|âb̂|` with `|â| ≤ (1 + u)|a_h|` (normalised).
    @inline(__always)
    static func * (a: DDBall, b: DDBall) -> DDBall {
        if a.isExactZero || b.isExactZero { return .zero }
        let (h, l) = DD.mul((a.h, a.l), (b.h, b.l))
        let ah = a.h.magnitude, bh = b.h.magnitude
        // 9u²(1 + u)² < 2^−102.
        let r = ((ah * b.r + bh * a.r) * (1 + 0x1p-52) + a.r * b.r + 0x1p-102 * (ah * bh)) * up + tiny
        return DDBall(h: h, l: l, r: r)
    }

    /// `a − b`: `twoSum(a_h, −b_h) = s + e` exactly, `t = RN(a_l − b_l)` (error ≤ `u²(|a_h| + |b_h|)`),
    /// `RN(e + t)` (error ≤ `2u²(1 + u)(|a_h| + |b_h|)`) and a final `twoSum` (exact, normalised):
    /// centre error ≤ `3.01u²(|a_h| + |b_h|) < 2^−104(|a_h| + |b_h|)`.
    @inline(__always)
    static func - (a: DDBall, b: DDBall) -> DDBall {
        if b.isExactZero { return a }
        if a.isExactZero { return DDBall(h: -b.h, l: -b.l, r: b.r) }
        let (s, e) = DD.twoSum(a.h, -b.h)
        let t = a.l - b.l
        let (h, l) = DD.twoSum(s, e + t)
        let r = ((a.r + b.r) + 0x1p-104 * (a.h.magnitude + b.h.magnitude)) * up + tiny
        return DDBall(h: h, l: l, r: r)
    }

    /// A ball holding the MPFR interval `[lo, hi]`: `h = RN(lo)`, `l = RN(lo − h)`
    /// (`lo − h` is exact in `tmp`, which has at least `lo`'s precision), and
    /// `r ≥ max(hi − (h + l), (h + l) − lo)` by directed MPFR rounding; nil for
    /// an infinite or NaN end. `tmp2` has at least 53 bits.
    static func holding(_ lo: MPFRPointer, _ hi: MPFRPointer, tmp: MPFRPointer, tmp2: MPFRPointer) -> DDBall? {
        guard mc_number_p(lo) != 0, mc_number_p(hi) != 0 else { return nil }
        let h = mc_get_d(lo, MPFR_RNDN)
        guard h.isFinite else { return nil }
        mc_set_d(tmp2, h, MPFR_RNDN)
        mc_sub(tmp, lo, tmp2, MPFR_RNDN)
        let l = mc_get_d(tmp, MPFR_RNDN)
        mc_set_d(tmp2, h, MPFR_RNDN); mc_sub(tmp, hi, tmp2, MPFR_RNDU)
        mc_set_d(tmp2, l, MPFR_RNDN); mc_sub(tmp, tmp, tmp2, MPFR_RNDU)
        let a = mc_get_d(tmp, MPFR_RNDU)
        mc_set_d(tmp2, h, MPFR_RNDN); mc_sub(tmp, lo, tmp2, MPFR_RNDD)
        mc_set_d(tmp2, l, MPFR_RNDN); mc_sub(tmp, tmp, tmp2, MPFR_RNDD)
        let b = mc_get_d(tmp, MPFR_RNDD)
        guard a.isFinite, b.isFinite else { return nil }
        return DDBall(h: h, l: l, r: Swift.max(a, -b, 0))
    }

    /// Writes `[(h + l) − r, (h + l) + r]` rounded outward into `lo`, `hi`
    /// (`tmp`, `tmp2` of ≥ 53 bits hold `h`, `l` exactly).
    func enclose(_ lo: MPFRPointer, _ hi: MPFRPointer, tmp: MPFRPointer, tmp2: MPFRPointer) {
        Self.enclose(h, l, r, lo, hi, tmp: tmp, tmp2: tmp2)
    }

    /// `[(s + c) − b, (s + c) + b]` rounded outward into `lo`, `hi`. The
    /// radius is subtracted even when 0, as `encloseWeightedSums` does, so that
    /// an exact zero is `[−0, +0]` in both passes (the judged value, the lower
    /// end, is then −0 in both, and reports print the same).
    static func enclose(_ s: Double, _ c: Double, _ b: Double, _ lo: MPFRPointer, _ hi: MPFRPointer,
                        tmp: MPFRPointer, tmp2: MPFRPointer) {
        mc_set_d(tmp, s, MPFR_RNDN)
        mc_set_d(tmp2, c, MPFR_RNDN)
        mc_add(lo, tmp, tmp2, MPFR_RNDD); mc_add(hi, tmp, tmp2, MPFR_RNDU)
        mc_set_d(tmp, b, MPFR_RNDN)
        mc_sub(lo, lo, tmp, MPFR_RNDD); mc_add(hi, hi, tmp, MPFR_RNDU)
    }
}
