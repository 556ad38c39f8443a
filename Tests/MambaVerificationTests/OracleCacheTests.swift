import Foundation
import MambaOracle
import MambaVariants
import MambaVerification
import Testing

/// `OracleCache`: one oracle evaluation per problem, the same values as a
/// fresh evaluation, and problems told apart by every input bit.
@Suite("Oracle cache")
struct OracleCacheTests {
    static let core = CoreSpec(name: "squared-decay-sum")!
    static func problem(seed: UInt64 = 3) -> CoreProblem {
        CaseConfig(batch: 1, heads: 2, length: 9, keyDim: 4, valueDim: 3, initialState: true, seed: seed)
            .problem(spec: core, storage: .float32)
    }
    static func bits(_ r: ReferenceOutput) -> [UInt64] {
        r.oDouble.map(\.bitPattern) + (r.finalStateS ?? []).map(\.doubleValue.bitPattern)
    }

    @Test func sharesEvaluationsAndReturnsWhatAFreshEvaluationGives() throws {
        let cache = OracleCache()
        let p = Self.problem()
        let first = try cache.output(p, precision: 96, finalState: true)
        let again = try cache.output(p, precision: 96, finalState: true)
        // Served without the state by the evaluation with it; a new precision is a new problem.
        let withoutState = try cache.output(p, precision: 96, finalState: false)
        _ = try cache.output(p, precision: 128, finalState: false)
        #expect(cache.statistics.evaluations == 2 && cache.statistics.reuses == 2, "\(cache.statistics)")
        let fresh = try Reference.quadratic(p, precision: 96, finalState: true)
        #expect(Self.bits(first) == Self.bits(fresh) && Self.bits(again) == Self.bits(fresh))
        #expect(withoutState.oDouble.map(\.bitPattern) == fresh.oDouble.map(\.bitPattern))
    }

    @Test func tellsProblemsApartByEveryBit() throws {
        let cache = OracleCache()
        var p = Self.problem()
        p.v[0] = 0
        _ = try cache.output(p, precision: 96, finalState: false)
        p.v[0] = -0.0                    // equal as a number, another input bit pattern
        _ = try cache.output(p, precision: 96, finalState: false)
        p.initialState!.s[5] += 1        // only the initial state differs
        _ = try cache.output(p, precision: 96, finalState: false)
        #expect(cache.statistics.evaluations == 3 && cache.statistics.reuses == 0, "\(cache.statistics)")
        // A state-only request after an output-only one needs the state: evaluated.
        _ = try cache.output(p, precision: 96, finalState: true)
        #expect(cache.statistics.evaluations == 4)
    }

    /// Workers asking for the same problem at once: one evaluates, the others wait for it.
    @Test func concurrentRequestsEvaluateOnce() throws {
        let cache = OracleCache()
        let p = Self.problem(seed: 9)
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            results.set(i, (try? cache.output(p, precision: 96, finalState: true)).map(Self.bits))
        }
        #expect(cache.statistics.evaluations == 1 && cache.statistics.reuses == 3, "\(cache.statistics)")
        #expect(Set(results.all.compactMap { $0 }).count == 1 && results.all.allSatisfy { $0 != nil })
    }
}

private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: [UInt64]] = [:]
    func set(_ i: Int, _ v: [UInt64]?) { lock.lock(); values[i] = v; lock.unlock() }
    var all: [[UInt64]?] { lock.lock(); defer { lock.unlock() }; return (0..<4).map { values[$0] } }
}
