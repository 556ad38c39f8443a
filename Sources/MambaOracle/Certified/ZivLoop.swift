import CMPFR
import MambaPrecision

/// Collects the certified elements of one tensor from enclosures (Proofs/T7,
/// step 5): an element is decided once both ends of an enclosure round to the
/// same Float64 (and `decimalDigits`-digit decimal); a decided element keeps
/// its value and enclosure (any later enclosure also contains the exact value,
/// so the rounding cannot change); an element given up is listed with its reason.
struct CertifiedBuilder {
    let decimalDigits: Int?
    private(set) var o: [Double]
    private var dec: [String?]?
    private var lower: [BigFloat?], upper: [BigFloat?]
    private var undecided: [CertifiedOutput.Undecided] = []
    /// 0 pending, 1 decided, 2 given up.
    private var state: [UInt8]

    init(count: Int, decimalDigits: Int?) {
        self.decimalDigits = decimalDigits
        o = [Double](repeating: .nan, count: count)
        dec = decimalDigits.map { _ in [String?](repeating: nil, count: count) }
        lower = [BigFloat?](repeating: nil, count: count); upper = lower
        state = [UInt8](repeating: 0, count: count)
    }

    /// Stores `[lo, hi]` as element `idx`'s enclosure and decides it if possible.
    /// - Returns: true when the element is settled (decided now or before, or given up).
    mutating func record(_ idx: Int, _ lo: MPFRPointer, _ hi: MPFRPointer) -> Bool {
        if state[idx] != 0 { return true }
        let l = BigFloat(precision: Int(mc_get_prec(lo))), h = BigFloat(precision: Int(mc_get_prec(hi)))
        l.withUnsafeMPFR { _ = mc_set($0, lo, MPFR_RNDN) }  // exact: same precision
        h.withUnsafeMPFR { _ = mc_set($0, hi, MPFR_RNDN) }
        lower[idx] = l; upper[idx] = h
        guard let r = RoundingDecision.float64(lo, hi) else { return false }
        if let digits = decimalDigits {
            guard let s = RoundingDecision.decimal(l, h, digits: digits) else { return false }
            dec![idx] = s
        }
        o[idx] = r
        state[idx] = 1
        return true
    }

    /// Lists a pending element as undecided (NaN, no decimal).
    mutating func giveUp(_ idx: Int, _ reason: CertifiedOutput.Reason) {
        guard state[idx] == 0 else { return }
        state[idx] = 2
        o[idx] = .nan
        undecided.append(.init(index: idx, reason: reason))
    }

    /// Records the elements `indices` of one unit of Ziv's loop (a row, a
    /// feature, a sequence) enclosed at `precision`; gives up on those that
    /// `hopeless` names (e.g. a zero denominator: no precision helps) and, on
    /// the `last` pass, on every other undecided one.
    /// - Returns: true when the unit must be enclosed again at a higher precision.
    mutating func recordUnit<S: Sequence<Int>>(_ indices: S, lo: (Int) -> MPFRPointer, hi: (Int) -> MPFRPointer,
                                               precision: Int, last: Bool,
                                               hopeless: (Int) -> Bool = { _ in false }) -> Bool {
        var again = false
        for idx in indices where !record(idx, lo(idx), hi(idx)) {
            if hopeless(idx) { giveUp(idx, .zeroDenominator) } else if last {
                giveUp(idx, .boundaryAtCap(precision: precision))
            } else { again = true }
        }
        return again
    }

    func build(initialPrecision: Int, finalPrecision: Int, raised: Int) -> CertifiedOutput {
        CertifiedOutput(o: o, decimal: dec, decimalDigits: decimalDigits,
                        lower: lower.map { $0 ?? BigFloat.nan(precision: 64) }, upper: upper.map { $0 ?? BigFloat.nan(precision: 64) },
                        undecided: undecided.sorted { $0.index < $1.index }, initialPrecision: initialPrecision,
                        finalPrecision: finalPrecision, rowsRaised: raised)
    }
}

/// Ziv's strategy (Proofs/T7): enclose every unit at `precision`, then the
/// units `pass` returns (those with an undecided element) at twice the
/// precision, and so on up to `maxPrecision`; `pass(units, p, last)` is told
/// when `p` is the last precision (`2p > maxPrecision`), where it gives up on
/// what is still undecided. Every pass is a complete, independent enclosure.
enum ZivLoop {
    /// - Returns: the highest precision used and the number of units enclosed again.
    static func run(units: [Int], precision: Int, maxPrecision: Int,
                    pass: (_ units: [Int], _ precision: Int, _ last: Bool) throws -> [Int]) rethrows -> (finalPrecision: Int, raised: Int) {
        var todo = units, p = precision, finalPrecision = precision, raised = 0
        while !todo.isEmpty {
            finalPrecision = Swift.max(finalPrecision, p)
            if p > precision { raised += todo.count }
            todo = try pass(todo, p, p * 2 > maxPrecision)
            p *= 2
        }
        return (finalPrecision, raised)
    }
}
