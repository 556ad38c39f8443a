import CMPFR
import MambaPrecision

/// A contiguous array of MPFR numbers with one allocation and one precision,
/// for the oracle's hot loops (no per-element objects, no per-operation
/// allocation). Elements start at +0.
final class MPFRBuffer: @unchecked Sendable {
    let count: Int
    let precision: Int
    let base: UnsafeMutablePointer<__mpfr_struct>

    init(count: Int, precision: Int) {
        self.count = count
        self.precision = precision
        base = .allocate(capacity: Swift.max(count, 1))
        for i in 0..<count {
            mc_init2(base + i, precision)
            mc_set_zero(base + i, 1)
        }
    }

    deinit {
        for i in 0..<count { mc_clear(base + i) }
        base.deallocate()
    }

    @inline(__always) subscript(i: Int) -> UnsafeMutablePointer<__mpfr_struct> { base + i }

    /// Copies element `i` out as a `BigFloat` of this buffer's precision.
    func value(_ i: Int) -> BigFloat {
        let r = BigFloat(precision: precision)
        r.withUnsafeMPFR { _ = mc_set($0, base + i, MPFR_RNDN) }
        return r
    }

    func values() -> [BigFloat] { (0..<count).map(value) }

    func setAll(_ xs: ArraySlice<Double>) {
        precondition(xs.count == count)
        var i = 0
        for x in xs { mc_set_d(base + i, x, MPFR_RNDN); i += 1 }
    }

    /// Float64 values held exactly (53 bits), e.g. a sequence's slice of the
    /// initial state.
    static func exactly(_ xs: ArraySlice<Double>) -> MPFRBuffer {
        let b = MPFRBuffer(count: xs.count, precision: 53)
        b.setAll(xs)
        return b
    }

    func zero() { for i in 0..<count { mc_set_zero(base + i, 1) } }
}
