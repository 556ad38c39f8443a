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
    /// or prefix sums, factored or pairwise) and with or without an initial
    /// state; `certifiedFinalState` covers final states, `certifiedGradients` gradients.
    public static func certified(_ p: CoreProblem, precision: Int = BigFloat.defaultPrecision,
                                 maxPrecision: Int = 4096, decimalDigits: Int? = nil) throws -> CertifiedOutput {
        try certified(p, precision: precision, maxPrecision: maxPrecision, decimalDigits: decimalDigits, fault: .none)
    }

    /// - Parameter fastPath: try the double-double pass first (tests turn it off to compare).
    static func certified(_ p: CoreProblem, precision: Int, maxPrecision: Int, decimalDigits: Int?,
                          fault: EnclosureFault, fastPath: Bool = true) throws -> CertifiedOutput {
        if let m = p.validationError() { throw ReferenceError.invalidProblem(m) }
        precondition(precision >= 64 && maxPrecision >= precision, "precision must be >= 64 and <= maxPrecision")
        let n = p.length, dv = p.valueDim
        var b = CertifiedBuilder(count: p.sequences * n * dv, decimalDigits: decimalDigits)
        var finalPrecision = precision, raised = 0
        // The fast double-double attempt (Proofs/T7, step 6) at the default precision; a planted
        // fault of the MPFR passes turns it off so that those passes see every row.
        let fast = fastPath && precision <= 128 && (decimalDigits ?? 0) <= 17 && (fault == .none || fault == .fastBoundDropped)
        for seq in 0..<p.sequences {
            var units = Array(0..<n)
            if fast, let (enc, ok) = fastEnclosedRows(EnclosedSequence(problem: p, sequence: seq, precision: precision),
                                                      fault: fault) {
                units = units.filter { i in
                    let first = (seq * n + i) * dv
                    return !ok[i] || b.recordUnit(first ..< first + dv, lo: { enc.lo[$0 - first + i * dv] },
                                                  hi: { enc.hi[$0 - first + i * dv] }, precision: precision, last: false)
                }
            }
            let r = ZivLoop.run(units: units, precision: precision, maxPrecision: maxPrecision) { rows, prec, last in
                let e = EnclosedSequence(problem: p, sequence: seq, precision: prec)
                let enc = enclosedRows(e, rows: rows, fault: fault)
                return rows.filter { i in
                    let zero = enc.rowStatus(i) == .zeroDenominator, first = (seq * n + i) * dv
                    return b.recordUnit(first ..< first + dv, lo: { enc.lo[$0 - first + i * dv] },
                                        hi: { enc.hi[$0 - first + i * dv] }, precision: prec, last: last,
                                        hopeless: { _ in zero })
                }
            }
            finalPrecision = Swift.max(finalPrecision, r.finalPrecision); raised += r.raised
        }
        return b.build(initialPrecision: precision, finalPrecision: finalPrecision, raised: raised)
    }
}
