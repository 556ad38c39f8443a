import CMPFR
import MambaPrecision
import MambaVariants

extension Reference {
    /// The certified oracle: the quadratic form of docs/MATH.md §1 with every
    /// output element enclosed rigorously and rounded only where the rounding
    /// is proven (Proofs/T7).
    ///
    /// Ziv's strategy: every row is enclosed at `precision` bits; rows with an
    /// element whose enclosure straddles a Float64 rounding boundary (or a
    /// `decimalDigits`-digit decimal one), or whose normaliser's enclosure
    /// contains 0, are enclosed again at twice the precision, up to
    /// `maxPrecision`. What is still undecided is reported by index.
    ///
    /// Covers forward outputs of every core, with or without decay (per-step
    /// or prefix sums, factored or pairwise). Not yet: an initial state
    /// (`ReferenceError.invalidProblem` names it) and final states.
    public static func certified(_ p: CoreProblem, precision: Int = BigFloat.defaultPrecision,
                                 maxPrecision: Int = 4096, decimalDigits: Int? = nil) throws -> CertifiedOutput {
        try certified(p, precision: precision, maxPrecision: maxPrecision, decimalDigits: decimalDigits, fault: .none)
    }

    static func certified(_ p: CoreProblem, precision: Int, maxPrecision: Int, decimalDigits: Int?,
                          fault: EnclosureFault) throws -> CertifiedOutput {
        if let m = p.validationError() { throw ReferenceError.invalidProblem(m) }
        if p.initialState != nil {
            throw ReferenceError.invalidProblem("the certified oracle does not cover an initial state yet")
        }
        precondition(precision >= 64 && maxPrecision >= precision, "precision must be >= 64 and <= maxPrecision")
        let n = p.length, dv = p.valueDim
        let total = p.sequences * n * dv
        var o = [Double](repeating: .nan, count: total)
        var dec: [String?]? = decimalDigits.map { _ in [String?](repeating: nil, count: total) }
        var lower = [BigFloat?](repeating: nil, count: total), upper = [BigFloat?](repeating: nil, count: total)
        var undecided: [CertifiedOutput.Undecided] = []
        var finalPrecision = precision, raised = 0
        for seq in 0..<p.sequences {
            var rows = Array(0..<n)
            var prec = precision
            while !rows.isEmpty {
                finalPrecision = Swift.max(finalPrecision, prec)
                if prec > precision { raised += rows.count }
                let e = EnclosedSequence(problem: p, sequence: seq, precision: prec)
                let enc = enclosedRows(e, rows: rows, fault: fault)
                var again: [Int] = []
                for i in rows {
                    let status = enc.rowStatus(i)
                    var rowDecided = status == .enclosed
                    for col in 0..<dv {
                        let idx = (seq * n + i) * dv + col
                        lower[idx] = enc.lo.value(i * dv + col); upper[idx] = enc.hi.value(i * dv + col)
                        if status != .enclosed { continue }
                        if let r = RoundingDecision.float64(enc.lo[i * dv + col], enc.hi[i * dv + col]) { o[idx] = r } else {
                            rowDecided = false
                        }
                        if let digits = decimalDigits {
                            if let s = RoundingDecision.decimal(lower[idx]!, upper[idx]!, digits: digits) { dec![idx] = s } else {
                                rowDecided = false
                            }
                        }
                    }
                    if rowDecided { continue }
                    if status == .zeroDenominator || prec * 2 > maxPrecision {
                        let reason: CertifiedOutput.Reason = status == .zeroDenominator ? .zeroDenominator
                            : .boundaryAtCap(precision: prec)
                        for col in 0..<dv {
                            let idx = (seq * n + i) * dv + col
                            let done = !o[idx].isNaN && (decimalDigits == nil || dec![idx] != nil)
                            if !done {
                                o[idx] = .nan; dec?[idx] = nil
                                undecided.append(.init(index: idx, reason: reason))
                            }
                        }
                    } else {
                        again.append(i)
                    }
                }
                rows = again
                prec *= 2
            }
        }
        undecided.sort { $0.index < $1.index }
        return CertifiedOutput(o: o, decimal: dec, decimalDigits: decimalDigits, lower: lower.map { $0! },
                               upper: upper.map { $0! }, undecided: undecided, initialPrecision: precision,
                               finalPrecision: finalPrecision, rowsRaised: raised)
    }
}
