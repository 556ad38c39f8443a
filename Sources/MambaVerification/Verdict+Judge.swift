import MambaKernels
import MambaOracle
import MambaPrecision

extension VerdictPolicy {
    /// Judges `candidate` against an MPFR oracle (see `Verdict` and `VerdictPolicy` for the criteria).
    ///
    /// - Parameters:
    ///   - candidate: the kernel's values, row-major, exactly as produced.
    ///   - oracle: the oracle's values.
    ///   - magnitude: the per-element error scales `s_e ≥ 0` (e.g.
    ///     `KernelComparison.errorScale`: the size of each element's terms,
    ///     weighted by the declared arithmetic).
    ///   - baselines: trusted kernels in the same arithmetic on the same inputs
    ///     (one or more; the largest error counts). May be empty.
    ///   - shape: the tensor's shape; every array must have its element count.
    ///   - format: the candidate's storage format.
    ///   - rowLength: elements per row for the row test (default: the last dimension).
    /// - Throws: `VerificationError` for an invalid policy or shape, mismatched
    ///   counts, or a NaN or negative scale at an element whose oracle value is defined.
    public func judge(candidate: [Double], oracle: [BigFloat], magnitude: [Double], baselines: [[Double]],
                      shape: [Int], format: NumberFormat, rowLength: Int? = nil) throws -> Verdict {
        try judge(candidate: candidate, oracle: .exact(oracle), magnitude: magnitude,
                  baselines: baselines, shape: shape, format: format, rowLength: rowLength)
    }

    /// Judges `candidate` against an oracle already rounded to `Double`.
    public func judge(candidate: [Double], oracle: [Double], magnitude: [Double], baselines: [[Double]],
                      shape: [Int], format: NumberFormat, rowLength: Int? = nil) throws -> Verdict {
        try judge(candidate: candidate, oracle: .rounded(oracle), magnitude: magnitude,
                  baselines: baselines, shape: shape, format: format, rowLength: rowLength)
    }

    /// Judges `candidate` against the oracle's output `o` and its storage magnitudes.
    public func judge(candidate: [Double], reference: ReferenceOutput, baselines: [[Double]],
                      shape: [Int], format: NumberFormat) throws -> Verdict {
        try judge(candidate: candidate, oracle: .exact(reference.o), magnitude: reference.magnitude,
                  baselines: baselines, shape: shape, format: format, rowLength: nil)
    }

    /// The baselines to judge by: all but those far outside every sound
    /// spread, `e_k = ‖b⁽ᵏ⁾ − y‖₂` (over the oracle's finite elements) above
    /// `baselineOutlierRatio` times *both* the best baseline's error and the
    /// a-priori bound `‖aPrioriBoundFactor·u_F·s‖₂` (T8; floored by the RMS of
    /// correct rounding). Such a baseline is not a sound implementation on
    /// these inputs and would make any candidate pass — measured: backward
    /// forms with O(1) relative gradient error on a decay reset (a = −1e9), 10⁷×
    /// the others, turned the gradient verdict's uniform floor into 510%.
    /// Sound spreads stay far inside: up to 7x on single elements (recurrent
    /// `da`), about 2x normwise (TF32 truncation, FLA's decay-gradient
    /// identity), 18-20x for a pure-binary16 kernel beside an fp16-acc32 one
    /// (`EmulatedKernelVerdictTests`), and a Float32 recurrent final state
    /// beside a chunked one under strong decay 16-64x (`SuiteCLITests`) — all
    /// within a few a-priori bounds. Kept in input order, with their errors.
    static func credibleBaselines(_ baselines: [[Double]], oracle: OracleComparison, magnitude: [Double],
                                  unitRoundoff u: Double) -> (kept: [[Double]], errors: [[Double]]) {
        let errors = baselines.map { oracle.absoluteDifferences($0) }
        guard baselines.count > 1 else { return (baselines, errors) }
        let norms = errors.map { err -> Double in
            var s = ScaledNorm()
            for e in err.indices where oracle.classes[e] == .finite { s.add(err[e].isFinite ? err[e] : .infinity) }
            return s.value
        }
        var rounding = ScaledNorm(), aPriori = ScaledNorm()
        for e in oracle.ulp.indices where oracle.classes[e] == .finite {
            rounding.add(oracle.ulp[e])
            if magnitude[e].isFinite { aPriori.add(aPrioriBoundFactor * u * magnitude[e]) }
        }
        guard let best = norms.min(), best.isFinite else { return (baselines, errors) }
        let limit = baselineOutlierRatio * Swift.max(best, aPriori.value, rounding.value / 12.0.squareRoot())
        let keep = norms.indices.filter { norms[$0] <= limit }
        return (keep.map { baselines[$0] }, keep.map { errors[$0] })
    }

    /// The number of rows on which some baseline errs on a finite element (beyond
    /// `2⁻²⁰` ulp, as `baselinesAreExact`), counted up to `limit`.
    static func rowsWithBaselineError(_ errors: [[Double]], oracle: OracleComparison, width: Int,
                                      rowCount: Int, limit: Int) -> Int {
        var count = 0
        for r in 0..<rowCount where count < limit {
            let range = (r * width)..<Swift.min(oracle.classes.count, (r + 1) * width)
            if range.contains(where: { e in
                oracle.classes[e] == .finite && errors.contains { !($0[e] <= 0x1p-20 * oracle.ulp[e]) }
            }) { count += 1 }
        }
        return count
    }

    /// True when there are baselines and every one is within `2⁻²⁰` ulp of the oracle on
    /// every finite element: exact, not merely correctly rounded (`judge`).
    static func baselinesAreExact(_ errors: [[Double]], oracle: OracleComparison) -> Bool {
        guard !errors.isEmpty else { return false }
        var any = false
        for e in oracle.ulp.indices where oracle.classes[e] == .finite {
            any = true
            for err in errors where !(err[e] <= 0x1p-20 * oracle.ulp[e]) { return false }
        }
        return any
    }

    /// How far (normwise) a baseline may be from the best one and from the
    /// a-priori bound and still count (`credibleBaselines`).
    static let baselineOutlierRatio = 64.0

    /// Judges gradients: as `judge`, but every row also keeps the per-row rule
    /// (`keepPerRowRule`): the pooled row yardstick was calibrated on forward
    /// outputs, and a correct Float32 chunked backward (2Mamba, C = 32,
    /// `mambacheck calibrate --gradients --core squared-decay-sum --length 256
    /// --dim 32`) used 1.0 of it (0.85 of the per-row rule).
    ///
    /// - Parameter suffixSums: the rows are suffix sums `x_t = Σ_{u≥t} d_u`
    ///   (the decay gradient `da`): the row and norm tests then measure errors
    ///   through their increments `e_t − e_{t+1}` (Proofs/T9, "Suffix sums").
    func judgeGradient(candidate: [Double], oracle: [BigFloat], magnitude: [Double], baselines: [[Double]],
                       shape: [Int], format: NumberFormat, suffixSums: Bool = false) throws -> Verdict {
        try judge(candidate: candidate, oracle: .exact(oracle), magnitude: magnitude, baselines: baselines,
                  shape: shape, format: format, rowLength: nil, keepPerRowRule: true, suffixSums: suffixSums)
    }

    func judge(candidate: [Double], oracle values: OracleValues, magnitude: [Double], baselines: [[Double]],
               shape: [Int], format: NumberFormat, rowLength: Int?, keepPerRowRule: Bool = false,
               suffixSums: Bool = false, fewDrawsWidened: Bool = false) throws -> Verdict {
        try validate()
        let n = try TensorShape.elementCount(of: shape)
        try TensorShape.check(candidate.count, "candidate", shape: shape, expected: n)
        try TensorShape.check(values.count, "oracle", shape: shape, expected: n)
        try TensorShape.check(magnitude.count, "magnitude", shape: shape, expected: n)
        for (k, baseline) in baselines.enumerated() {
            try TensorShape.check(baseline.count, "baseline \(k)", shape: shape, expected: n)
        }
        let oracle = OracleComparison(values, format: format)
        for e in 0..<n where oracle.classes[e] != .undefined {
            let m = magnitude[e]
            guard !m.isNaN, m >= 0 else {
                throw VerificationError.invalidMagnitude(index: TensorShape.index(ofOffset: e, in: shape), value: m)
            }
        }
        let error = oracle.absoluteDifferences(candidate)
        var (baselines, baselineErrors) = Self.credibleBaselines(baselines, oracle: oracle, magnitude: magnitude,
                                                                 unitRoundoff: format.unitRoundoff)
        // Exact baselines (Proofs/T9): where every baseline is the exact value on every finite
        // element (a one-token softmax or 2Mamba output is v itself, its dq and dk are 0), they
        // say nothing about the declared arithmetic's error, and a GPU kernel's approximate exp
        // and reciprocal still err there (PyTorch's memory-efficient fp32 SDPA at N = 1: 2 ulps
        // on o, 1e-6 on an exactly zero dq, against an allowance of 1 ulp). Judged as without
        // baselines: the a-priori bound (T8), row and norm tests not applicable.
        if Self.baselinesAreExact(baselineErrors, oracle: oracle) { (baselines, baselineErrors) = ([], []) }
        let hasBaselines = !baselines.isEmpty
        let width = Swift.max(1, Swift.min(rowLength ?? shape.last ?? 1, Swift.max(n, 1)))
        let rowCount = n == 0 ? 0 : (n + width - 1) / width
        // Few draws (Proofs/T9): fewer than 4 rows of 64 or more elements (a decode step, one
        // token of one or two heads). A row's error is largely coherent (a normalised core's
        // denominator, one q·k), so the candidate's and the baselines' errors are a few single
        // draws and their ratio has a heavy tail: correct kernels at N = 1 used up to 1.34 of
        // the allowances (`calibrate --length 1 --dim 64 --seeds 5`). Every factor doubles,
        // and the verdict reports the policy it applied. Suffix sums count their increments.
        // Rows no baseline errs on are no draws: a causal core's first token is `v_0` itself,
        // so at N = 2 only the second token's rows count (PyTorch's math fp32 SDPA, N = 2,
        // two heads: 2 of 4 rows, 1.6x the element allowance on one machine's BLAS).
        if !fewDrawsWidened, hasBaselines, !suffixSums, n >= 64,
           Self.rowsWithBaselineError(baselineErrors, oracle: oracle, width: width, rowCount: rowCount, limit: 4) < 4 {
            var widened = self
            widened.factor *= VerdictPolicy.fewDrawsWidening
            widened.rowFactor *= VerdictPolicy.fewDrawsWidening
            widened.normFactor *= VerdictPolicy.fewDrawsWidening
            return try widened.judge(candidate: candidate, oracle: values, magnitude: magnitude, baselines: baselines,
                                     shape: shape, format: format, rowLength: rowLength, keepPerRowRule: keepPerRowRule,
                                     suffixSums: suffixSums, fewDrawsWidened: true)
        }
        // Rounding error of a correctly rounded value, in the 2-norm: ulp/√12 per element.
        let roundingRMS = 1 / 12.0.squareRoot()
        // What the row and norm tests measure: the elements' errors, ulps and values, or for
        // suffix sums their increments along the row (Proofs/T9, "Suffix sums"). A suffix sum's
        // error is a random walk whose norm is a few correlated draws: correct Float32 `da`
        // ranged over 0.13-2.9x the baselines' worst normwise (2Mamba, 16 seeds, chunk sizes
        // 8-128), against 0.42-1.26x through the increments (BENCHMARKS, "Suffix sums").
        let rowError: [Double], rowBaselineErrors: [[Double]], rowUlp: [Double], rowValue: [Double]
        if suffixSums {
            func increments(_ x: [Double]) -> [Double] {
                (0..<n).map { e in
                    let next = e + 1
                    guard next % width != 0, next < n, oracle.classes[next] == .finite, x[next].isFinite else { return x[e] }
                    return x[e] - x[next]
                }
            }
            rowError = increments(oracle.signedDifferences(candidate)).map { Swift.abs($0) }
            rowBaselineErrors = baselines.map { increments(oracle.signedDifferences($0)).map { Swift.abs($0) } }
            rowValue = increments(oracle.oracle)
            rowUlp = (0..<n).map { e in
                let next = e + 1
                guard next % width != 0, next < n, oracle.classes[next] == .finite else { return oracle.ulp[e] }
                return (oracle.ulp[e] * oracle.ulp[e] + oracle.ulp[next] * oracle.ulp[next]).squareRoot()
            }
        } else {
            (rowError, rowBaselineErrors, rowUlp, rowValue) = (error, baselineErrors, oracle.ulp, oracle.oracle)
        }

        // Tiny tensors (fewer than 64 finite elements, e.g. a shrunk property
        // case): the baselines' worst error over a handful of elements says
        // little (two correct kernels differ by 10x on single elements), so β,
        // ρ and the norm are floored by one rounding stage `u_F·s`. Not above:
        // `s` is a worst-case shape (the φ₂ term m̃ can be 50x |y|), and a
        // fading floor measurably swallowed 4x bugs at n = 12,288 (CalibrationTests).
        let finiteCount = (0..<n).reduce(0) { $0 + (oracle.classes[$1] == .finite ? 1 : 0) }
        let stageFloor = hasBaselines && finiteCount > 0 && finiteCount < 64 ? format.unitRoundoff : 0
        // β (element), per-row baseline errors, baseline norms.
        var beta = 0.0
        var baselineNonFinite = 0
        var pointwise = [Double?](repeating: nil, count: n)
        var baselineNorms = [ScaledNorm](repeating: ScaledNorm(), count: baselines.count)
        var baselineRows = [[Double]](repeating: [Double](repeating: 0, count: rowCount), count: baselines.count)
        for r in 0..<rowCount {
            var rowBaseline = [ScaledNorm](repeating: ScaledNorm(), count: baselines.count)
            for e in (r * width)..<Swift.min(n, (r + 1) * width) where oracle.classes[e] == .finite {
                let m = magnitude[e]
                for k in baselineErrors.indices {
                    let b = baselineErrors[k][e]
                    guard b.isFinite else { baselineNonFinite += 1; continue }
                    pointwise[e] = Swift.max(pointwise[e] ?? 0, b)
                    let bRow = rowBaselineErrors[k][e]
                    baselineNorms[k].add(bRow.isFinite ? bRow : b)
                    rowBaseline[k].add(bRow.isFinite ? bRow : b)
                    // The baseline's own output rounding: ½ulp of *its* binade (one above y's near a power of 2).
                    let own = 0.5 * Swift.max(oracle.ulp[e], format.ulp(at: baselines[k][e]))
                    if m > 0, m.isFinite { beta = Swift.max(beta, Swift.max(0, b - own) / m) }
                }
            }
            for k in rowBaseline.indices { baselineRows[k][r] = rowBaseline[k].value }
        }
        // The row test's yardstick (Proofs/T9, "Row yardstick"): R_r = max(λ·ρ·π_r, ½·max_k ‖b⁽ᵏ⁾ − y‖_r),
        // π_r = (1 − t)·‖y‖_r/Y + t·‖s‖_r/S (Y, S the RMS over rows) the pooled predictor of a row's
        // error, t ∈ {0, 0.1, …, 1} the mix that predicts the baselines' row errors best (smallest
        // 95th/50th percentile spread of max_k ‖b⁽ᵏ⁾ − y‖_r / π_r), ρ that 95th percentile, λ below.
        // One baseline's error on one row is a single noisy draw (a correct SSD reached 3.7x it);
        // the pooled predictor is far steadier (measured on 14 real GPU kernels and every form:
        // correct rows at most 2.45x it). The halved per-row draw keeps rows the baselines find
        // genuinely worse. A local window of baseline errors was tried earlier and failed: forms
        // distribute errors differently along the sequence.
        var rowScale = [Double](repeating: 0, count: rowCount)
        var rowNorm = [Double](repeating: 0, count: rowCount)
        var rowDraw = [Double](repeating: 0, count: rowCount)
        for r in 0..<rowCount {
            var sc = ScaledNorm(), yn = ScaledNorm()
            for e in (r * width)..<Swift.min(n, (r + 1) * width) where oracle.classes[e] == .finite {
                yn.add(rowValue[e])
                if magnitude[e].isFinite { sc.add(magnitude[e]) }
            }
            rowScale[r] = sc.value
            rowNorm[r] = yn.value
            rowDraw[r] = baselineRows.map { $0[r] }.max() ?? 0
        }
        let shortRows = width < 32
        let predictor = RowPredictor(draws: rowDraw, norms: rowNorm, scales: rowScale,
                                     percent: shortRows ? 100 : 95)  // short rows: noisy norms, use the maximum
        // Rows shorter than 32, and gradients (`judgeGradient`), keep the per-row rule too:
        // max(ρ_s·‖s‖_r, d_r), ρ_s the 90th percentile of d_r/‖s‖_r (the maximum for short rows),
        // at its measured factor 4 (8/7 of the default 3.5). The pooled predictor was measured on
        // forward rows of 32 and 64; a chunked 2Mamba kernel with dv = 16 (fp16-acc32, bf16-acc32,
        // EveryCoreTests) used 1.8x the pooled allowance on a row whose value cancels.
        // Tiny tensors (a stage floor) keep it as well, with that floor, as before the pooled rule.
        let perRowRule = shortRows || keepPerRowRule || stageFloor > 0
        var rhoS = 0.0
        if perRowRule {
            var ratios = (0..<rowCount).compactMap { rowScale[$0] > 0 ? rowDraw[$0] / rowScale[$0] : nil }
            ratios.sort()
            rhoS = Swift.max(Percentile.nearestRank(of: ratios, percent: shortRows ? 100 : 90), stageFloor)
        }
        // The pooled yardstick at the candidate's own level (Proofs/T9, "The candidate's own
        // level"): `ρ` scaled by the candidate's row errors over the baselines' (`e/π` over `d/π`
        // at the 50th, 95th and 99th percentiles, the largest) where the candidate is the more
        // accurate, floored at ½. A kernel twice as accurate as the baselines is then judged by
        // its own rows, not the baselines': a row several times worse than them fails even when
        // the baselines would err as much there. A single wrong row moves none of the three
        // percentiles; wrong rows beyond 1% of them can only raise `λ` (a looser yardstick), and
        // a uniform error, which raises all three, is the norm test's to catch.
        let candidateRows = candidateRowErrors(rowError, oracle: oracle, width: width, rowCount: rowCount)
        let level = hasBaselines
            ? candidateLevel(rowErrors: candidateRows, draws: rowDraw, predictor: predictor, norms: rowNorm, scales: rowScale)
            : 1
        var rowYardstick = [Double](repeating: 0, count: rowCount)
        for r in 0..<rowCount {
            rowYardstick[r] = Swift.max(level * predictor.rho * predictor.predict(norm: rowNorm[r], scale: rowScale[r]),
                                        0.5 * rowDraw[r], stageFloor * rowScale[r])
            if perRowRule { rowYardstick[r] = Swift.max(rowYardstick[r], 8.0 / 7.0 * Swift.max(rhoS * rowScale[r], rowDraw[r])) }
        }
        // The replica row test (Proofs/T9, "A replica baseline"): where one baseline explains
        // nearly all of the candidate's error, each row's departure from it is judged too.
        let replica = hasBaselines && !suffixSums && stageFloor == 0
            ? nearestReplica(candidate: candidate, baselines: baselines, oracle: oracle, candidateRows: candidateRows,
                             width: width, rowCount: rowCount)
            : nil
        let aPriori = hasBaselines ? boundFactor : (boundFactor > 0 ? boundFactor : VerdictPolicy.aPrioriBoundFactor)
        beta = Swift.max(beta, stageFloor)

        // Elements.
        var judged = 0, failing = 0, nonFinite = 0, undefined = 0
        var undefinedIndices: [[Int]] = []
        var ratios: [Double] = []
        ratios.reserveCapacity(n)
        var baselineDominated = 0
        var allowance = [Double](repeating: .infinity, count: n)
        var elements: [VerdictElement] = []
        var candidateNorm = ScaledNorm(), ulpNorm = ScaledNorm(), oracleNorm = ScaledNorm(), unbackedScale = ScaledNorm()
        var uniformFloor = Double.infinity
        func element(_ e: Int, _ tau: Double, _ ratio: Double, _ failure: VerdictElement.Failure?) -> VerdictElement {
            VerdictElement(index: TensorShape.index(ofOffset: e, in: shape), offset: e, candidate: candidate[e],
                           oracle: oracle.oracle[e],
                           absoluteError: oracle.classes[e] == .finite ? error[e]
                               : (candidate[e] == oracle.oracle[e] ? 0 : Swift.abs(candidate[e] - oracle.oracle[e])),
                           baselineError: pointwise[e], magnitude: magnitude[e], allowance: tau, ratio: ratio,
                           failure: failure)
        }
        var worst: VerdictElement?
        var top: [(ratio: Double, offset: Int)] = []
        for e in 0..<n {
            let tau: Double, ratio: Double, failure: VerdictElement.Failure?
            switch oracle.classes[e] {
            case .undefined:
                undefined += 1
                if undefinedIndices.count < 8 { undefinedIndices.append(TensorShape.index(ofOffset: e, in: shape)) }
                continue
            case .overflow:
                tau = .infinity
                if overflowsConsistently(candidate[e], oracle: oracle.oracle[e], format: format) {
                    ratio = 0; failure = nil
                } else {
                    ratio = .infinity; failure = .missedOverflow
                }
            case .finite:
                let m = magnitude[e]
                candidateNorm.add(rowError[e])
                ulpNorm.add(rowUlp[e])
                oracleNorm.add(rowValue[e])
                let baselineTerm = (beta == 0 || m == 0) ? 0 : factor * beta * m
                // The candidate's output rounding is ½ulp of its own binade, which is one
                // above y's when y lies just below a power of 2: measure ulps there.
                let ownUlp = candidate[e].isFinite ? Swift.max(oracle.ulp[e], format.ulp(at: candidate[e])) : oracle.ulp[e]
                // No finite baseline value here (the baselines overflowed or hit a
                // hazard the candidate avoided): no same-arithmetic yardstick, so the
                // a-priori bound of T8 applies to this element.
                let unbacked = hasBaselines && pointwise[e] == nil
                let rest = slack(ulp: ownUlp, magnitude: m, format: format,
                                 boundFactor: unbacked ? Swift.max(aPriori, VerdictPolicy.aPrioriBoundFactor) : aPriori)
                if unbacked { unbackedScale.add(m.isFinite ? m : 0) }
                if baselineTerm > rest { baselineDominated += 1 }
                tau = baselineTerm + rest
                allowance[e] = tau
                let y = Swift.abs(oracle.oracle[e])
                if y > 0 { uniformFloor = Swift.min(uniformFloor, tau / y) }
                if !candidate[e].isFinite {
                    ratio = .infinity; failure = .nonFinite; nonFinite += 1
                } else {
                    ratio = tau == 0 ? (error[e] == 0 ? 0 : .infinity) : error[e] / tau
                    failure = error[e] <= tau ? nil : .exceedsAllowance
                }
                ratios.append(ratio)
            }
            judged += 1
            if failure != nil { failing += 1 }
            if worst == nil || ratio > worst!.ratio { worst = element(e, tau, ratio, failure) }
            if top.count < 5 || ratio > top[top.count - 1].ratio {
                top.append((ratio, e))
                top.sort { $0.ratio != $1.ratio ? $0.ratio > $1.ratio : $0.offset < $1.offset }
                if top.count > 5 { top.removeLast() }
            }
        }
        for t in top { elements.append(element(t.offset, allowance[t.offset], t.ratio, t.ratio > 1 || !t.ratio.isFinite
            ? (oracle.classes[t.offset] == .overflow ? .missedOverflow
               : (candidate[t.offset].isFinite ? .exceedsAllowance : .nonFinite)) : nil)) }

        // Norm.
        let candidateError = candidateNorm.value
        let baselineError = baselineNorms.map(\.value).max() ?? 0
        let normSlack = roundingRMS * ulpNorm.value
        var scaleNorm = ScaledNorm()
        for e in 0..<n where oracle.classes[e] == .finite && magnitude[e].isFinite { scaleNorm.add(magnitude[e]) }
        let normAllowance = normFactor * Swift.max(baselineError, stageFloor * scaleNorm.value) + normSlack
            + (aPriori == 0 || !hasBaselines ? 0 : aPriori * format.unitRoundoff * scaleNorm.value)
            + VerdictPolicy.aPrioriBoundFactor * format.unitRoundoff * unbackedScale.value
        let normwise = NormwiseCheck(candidateError: candidateError, baselineError: baselineError, slack: normSlack,
                                     allowance: normAllowance, applicable: hasBaselines,
                                     passed: candidateError.isFinite && (!hasBaselines || candidateError <= normAllowance))
        let oracleNormValue = oracleNorm.value
        if hasBaselines, oracleNormValue > 0 { uniformFloor = Swift.min(uniformFloor, normAllowance / oracleNormValue) }

        // Rows.
        var failingRows = 0, worstRowShare = 0.0, worstRow: Int?
        var rowFloors: [Double] = []
        var rowFloorRatios: [Double] = []
        for r in 0..<rowCount {
            var ulps = ScaledNorm(), ys = ScaledNorm(), unbacked = ScaledNorm()
            var elementFloor = Double.infinity
            var finite = false
            for e in (r * width)..<Swift.min(n, (r + 1) * width) where oracle.classes[e] == .finite {
                finite = true
                ulps.add(rowUlp[e])
                ys.add(rowValue[e])
                if pointwise[e] == nil, magnitude[e].isFinite { unbacked.add(magnitude[e]) }
                let y = Swift.abs(oracle.oracle[e])
                if y > 0 { elementFloor = Swift.min(elementFloor, allowance[e] / y) }
            }
            guard finite else { continue }
            var floor = elementFloor
            let yNorm = ys.value
            // A row whose exact value is zero (dq of a normalised core's first token:
            // p = 1, so dp − D = dO·(v − o) = 0) is a pure cancellation residual of two
            // dot products of the same values. Baselines that sum both in one order land
            // on exactly 0 and measure nothing there, while a kernel that forms D in a
            // separate pass does not (PyTorch's memory-efficient fp32 backward, dk = 128:
            // 1.4x the row allowance, 0.42 of its element allowance). Such a row is judged
            // by its elements alone, whose allowance follows the terms' magnitudes.
            if hasBaselines, yNorm > 0 {
                let rowAllowance = rowFactor * rowYardstick[r] + roundingRMS * ulps.value
                    + (aPriori == 0 ? 0 : aPriori * format.unitRoundoff * rowScale[r])
                    + VerdictPolicy.aPrioriBoundFactor * format.unitRoundoff * unbacked.value
                let err = candidateRows[r]
                var share = rowAllowance > 0 ? err / rowAllowance : (err == 0 ? 0 : .infinity)
                var rowFloor = rowAllowance
                if let replica, replica.factors[r] < rowFactor {
                    // The same allowance with the replica's factor θ_r in place of `rowFactor`.
                    let replicaAllowance = rowAllowance - (rowFactor - replica.factors[r]) * rowYardstick[r]
                    let departure = replica.rows[r]
                    share = Swift.max(share, replicaAllowance > 0 ? departure / replicaAllowance
                                                                  : (departure == 0 ? 0 : .infinity))
                    rowFloor = Swift.min(rowFloor, replicaAllowance)
                }
                if share > 1 { failingRows += 1 }
                if share > worstRowShare || worstRow == nil { worstRowShare = share; worstRow = r }
                if yNorm > 0 {
                    floor = Swift.min(floor, rowFloor / yNorm, normAllowance / yNorm)
                    uniformFloor = Swift.min(uniformFloor, rowAllowance / yNorm)
                }
            }
            if floor.isFinite { rowFloors.append(floor) }
            let own = baselineRows.map { $0[r] }.max() ?? 0
            if yNorm > 0, own > 0, floor.isFinite { rowFloorRatios.append(floor / (own / yNorm)) }
        }
        rowFloors.sort()
        rowFloorRatios.sort()
        let rows = RowCheck(rowLength: width, rowCount: rowCount, baselineScaledError: rowYardstick.max() ?? 0, failingRows: failingRows,
                            worstRow: worstRow.map { TensorShape.index(ofOffset: $0 * width, in: shape) },
                            worstShare: worstRowShare, applicable: hasBaselines, passed: failingRows == 0,
                            replica: replica.map { RowCheck.Replica(baseline: $0.baseline, unexplained: $0.unexplained,
                                                                    factor: $0.factor) })

        ratios.sort()
        let margins = Margins(p50: Percentile.nearestRank(of: ratios, percent: 50), p99: Percentile.nearestRank(of: ratios, percent: 99),
                              max: ratios.last ?? 0,
                              baselineTermShare: ratios.isEmpty ? 0 : Double(baselineDominated) / Double(ratios.count))
        let floor = DetectionFloor(
            uniform: uniformFloor,
            singleRowMedian: rowFloors.isEmpty ? .infinity : rowFloors[rowFloors.count / 2],
            singleRowMin: rowFloors.first ?? .infinity,
            singleRowMedianOverBaseline: rowFloorRatios.isEmpty ? .nan : rowFloorRatios[rowFloorRatios.count / 2],
            baselineRelativeError: hasBaselines ? normRatio(baselineError, oracleNormValue) : .nan)

        var verdict = Verdict(
            passed: failing == 0 && normwise.passed && rows.passed && undefined == 0, policy: self,
            format: format.rawValue, elementCount: n, judgedCount: judged, failingCount: failing,
            nonFiniteCount: nonFinite, undefinedCount: undefined, undefinedIndices: undefinedIndices,
            baselineCount: baselines.count, baselineBackwardError: beta, baselineNonFiniteCount: baselineNonFinite,
            normwise: normwise, rows: rows, margins: margins, detectionFloor: floor, worst: worst,
            worstElements: elements, note: nil, reason: "")
        verdict.reason = verdict.describe()
        return verdict
    }

    /// The replica of a candidate among the baselines, if any (Proofs/T9, "A replica baseline"):
    /// `k* = argmin_k ‖ŷ − b⁽ᵏ⁾‖₂` over the oracle's finite elements, and for each row `r` the
    /// share of the candidate's error it leaves unexplained *on the other rows*,
    /// `q_r = √((C² − c_r²)/(E² − e_r²))` (`C = ‖ŷ − b⁽ᵏ*⁾‖₂`, `c_r` its row norm; `E`, `e_r` the
    /// candidate's error), so a wrong row does not loosen its own test; the row's factor is
    /// `θ_r = clamp(replicaExcess·rowFactor·q_r, replicaRowFactor, rowFactor)`. `nil` (no replica
    /// test) where fewer than 16 rows, or where `θ = rowFactor` at the global `q = C/E`.
    /// A baseline not finite where the candidate is, is no replica.
    private func nearestReplica(candidate: [Double], baselines: [[Double]], oracle: OracleComparison,
                                candidateRows: [Double], width: Int, rowCount: Int)
        -> (baseline: Int, unexplained: Double, factor: Double, rows: [Double], factors: [Double])? {
        guard replicaRowFactor > 0, replicaRowFactor < rowFactor, rowCount >= 16, candidateRows.allSatisfy(\.isFinite) else { return nil }
        var best: (k: Int, norm: Double)?
        for (k, b) in baselines.enumerated() {
            var norm = ScaledNorm()
            var usable = true
            for e in candidate.indices where oracle.classes[e] == .finite && candidate[e].isFinite {
                guard b[e].isFinite else { usable = false; break }
                norm.add(candidate[e] - b[e])
            }
            if usable, best == nil || norm.value < best!.norm { best = (k, norm.value) }
        }
        guard let best else { return nil }
        let b = baselines[best.k]
        var rows = [Double](repeating: 0, count: rowCount)
        for r in 0..<rowCount {
            var d = ScaledNorm()
            for e in (r * width)..<Swift.min(candidate.count, (r + 1) * width)
            where oracle.classes[e] == .finite && candidate[e].isFinite {
                d.add(candidate[e] - b[e])
            }
            rows[r] = d.value
        }
        // Sums of squares on a common scale (errors may sit anywhere in Double's range).
        let unit = Swift.max(rows.max() ?? 0, candidateRows.max() ?? 0)
        guard unit > 0, unit.isFinite else { return nil }
        let c2 = rows.map { ($0 / unit) * ($0 / unit) }, e2 = candidateRows.map { ($0 / unit) * ($0 / unit) }
        let totalC = c2.reduce(0, +), totalE = e2.reduce(0, +)
        guard totalE > 0 else { return nil }
        func theta(_ q: Double) -> Double {
            Swift.min(rowFactor, Swift.max(replicaRowFactor, VerdictPolicy.replicaExcess * rowFactor * q))
        }
        let q = (totalC / totalE).squareRoot()
        guard theta(q) < rowFactor else { return nil }
        let factors = (0..<rowCount).map { r -> Double in
            let others = totalE - e2[r]
            return others > 0 ? theta((Swift.max(0, totalC - c2[r]) / others).squareRoot()) : rowFactor
        }
        return (best.k, q, theta(q), rows, factors)
    }

    /// The floor of the candidate-level scale `λ` of the pooled row yardstick: at most a
    /// factor 2 tighter than the baselines' own. Measured: at ¼ a correct Float32 chunk-48
    /// 2Mamba kernel (`calibrate --length 256 --dim 32 --prefix-sums`) used 0.944 of its row
    /// allowance, its chunk grid putting its worst rows where the chunk-64 baselines err
    /// little; the lowest level of a correct real kernel is 0.47 (FLA's fused_recurrent fp32,
    /// N = 512), and ½ costs the real kernels' one-row detection 0.937 → 0.935 of rows.
    static let minimumCandidateLevel = 0.5

    /// `min(1, max(½, max_{p ∈ {50, 95, 99}} P_p(e/π)/P_p(d/π)))`, percentiles over the rows
    /// with positive, finite `e_r`, `d_r` and `π_r` (`e_r` the candidate's row error, `d_r` the
    /// baselines' largest): the candidate's level at its typical row and in its tail, the
    /// largest, so that neither a heavier tail nor a heavier body than the baselines' tightens
    /// the yardstick past what its own rows show; 1 where fewer than 16 rows qualify.
    private func candidateLevel(rowErrors e: [Double], draws d: [Double], predictor: RowPredictor,
                                norms: [Double], scales: [Double]) -> Double {
        var own: [Double] = [], theirs: [Double] = []
        for r in e.indices {
            let p = predictor.predict(norm: norms[r], scale: scales[r])
            guard p > 0, p.isFinite, e[r] > 0, e[r].isFinite, d[r] > 0, d[r].isFinite else { continue }
            own.append(e[r] / p)
            theirs.append(d[r] / p)
        }
        guard own.count >= 16 else { return 1 }
        own.sort()
        theirs.sort()
        let ratios = [50, 95, 99].map {
            Percentile.nearestRank(of: own, percent: $0) / Percentile.nearestRank(of: theirs, percent: $0)
        }
        let ratio = ratios.max()!
        guard ratio.isFinite else { return 1 }
        // A candidate less accurate than the baselines at its typical row *and* at its 95th
        // percentile (so neither a few wrong rows nor a wrong chunk boundary can do it) is judged
        // at its own level, up to `normFactor`: the uniform excess the norm test allows would
        // otherwise fail its tail rows (PyTorch's memory-efficient fp32 SDPA, 3xTF32 dot
        // products, 1.6x the baselines' normwise error: one of 3600 rows at 1.01 of `3.5·ρπ`).
        let typical = Swift.min(ratios[0], ratios[1])
        if typical > 1 { return Swift.min(normFactor, typical) }
        return Swift.min(1, Swift.max(Self.minimumCandidateLevel, ratio))
    }

    /// The candidate's error norm on each row (finite elements only).
    private func candidateRowErrors(_ rowError: [Double], oracle: OracleComparison, width: Int, rowCount: Int) -> [Double] {
        (0..<rowCount).map { r in
            var err = ScaledNorm()
            for e in (r * width)..<Swift.min(rowError.count, (r + 1) * width) where oracle.classes[e] == .finite {
                err.add(rowError[e])
            }
            return err.value
        }
    }

    /// Whether `candidate` is what a correct kernel returns for an oracle value
    /// that overflows `format`: ±∞ of the oracle's sign, a saturated
    /// ±greatestFinite of that sign, or NaN in a format without infinities.
    private func overflowsConsistently(_ candidate: Double, oracle: Double, format: NumberFormat) -> Bool {
        if candidate.isNaN { return !format.hasInfinities }
        return candidate.sign == oracle.sign && Swift.abs(candidate) >= format.greatestFiniteMagnitude
    }
}
