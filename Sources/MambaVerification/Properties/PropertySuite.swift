import MambaVariants

/// Runs every `KernelProperty` on seeded cases — the one call a user's test
/// makes to check their kernel:
///
///     let report = PropertySuite.run(MyKernel(), cases: 20)
///     #expect(report.passed, "\(report)")
///
/// A failing case is shrunk (shorter N, narrower heads, fewer heads, no
/// initial state) while it keeps failing, and reported with the
/// `PropertyCase` that replays it (`PropertySuite.replay`).
public enum PropertySuite {
    public struct Failure: Sendable, CustomStringConvertible {
        public var property: String
        public var theorem: String
        /// The first failing case and the smallest case found that still fails.
        public var original: PropertyCase
        public var shrunk: PropertyCase
        public var detail: String
        public var description: String {
            "[\(theorem)] \(property) failed; replay with \(shrunk) (found at seed \(original.seed)): \(detail)"
        }
    }

    /// How often one property was checked on one kernel.
    public struct Count: Sendable, CustomStringConvertible {
        public var property: String
        public var theorem: String
        /// Cases on which the property was actually checked (passed or failed).
        public var applicable: Int
        /// Drawn cases the property does not apply to (redrawn, not counted as passes).
        public var redrawn: Int
        /// Why the property cannot apply to this kernel at all; nil when it applies.
        public var notApplicable: String?
        public var description: String {
            if let notApplicable { return "[\(theorem)] \(property): not applicable (\(notApplicable))" }
            return "[\(theorem)] \(property): \(applicable) applicable case(s) (\(redrawn) redrawn)"
        }
    }

    public struct Report: Sendable, CustomStringConvertible {
        public var kernel: String
        public var casesPerProperty: Int
        public var counts: [Count]
        public var failures: [Failure]
        /// No failure and every property that applies was checked on `casesPerProperty` cases.
        public var passed: Bool {
            failures.isEmpty && counts.allSatisfy { $0.notApplicable != nil || $0.applicable >= casesPerProperty || failed($0) }
        }
        /// Properties that do not apply to the kernel (reported, never passes).
        public var notApplicable: [Count] { counts.filter { $0.notApplicable != nil } }
        func failed(_ c: Count) -> Bool { failures.contains { $0.property == c.property } }
        public var description: String {
            let checked = counts.count - notApplicable.count
            var lines = [passed
                ? "\(kernel): \(checked) of \(counts.count) properties passed on \(casesPerProperty) applicable cases each, \(notApplicable.count) not applicable"
                : "\(kernel): \(failures.count) failure(s)"]
            lines += counts.map { "  " + $0.description }
            lines += failures.map { "  " + $0.description }
            return lines.joined(separator: "\n")
        }
    }

    /// Checks `properties` on `cases` applicable seeded cases each. Seeds run
    /// `seed`, `seed+1`, …; a case the property does not apply to is redrawn
    /// with the next seed (at most `50·cases` draws), so every property that
    /// applies to the kernel is checked on `cases` cases.
    public static func run(_ kernel: any KernelUnderTest, cases: Int = 10, seed: UInt64 = 1, maxLength: Int = 200,
                           properties: [KernelProperty] = KernelProperty.all) -> Report {
        var failures: [Failure] = []
        var counts: [Count] = []
        for property in properties {
            var count = Count(property: property.name, theorem: property.theorem, applicable: 0, redrawn: 0,
                              notApplicable: property.kernelRequirement(kernel))
            defer { counts.append(count) }
            if count.notApplicable != nil { continue }
            var i: UInt64 = 0
            while count.applicable < cases && i < UInt64(50 * cases) {
                let c = PropertyCase.random(seed: seed &+ i, maxLength: maxLength)
                i += 1
                if property.caseRequirement(kernel, c) != nil { count.redrawn += 1; continue }
                count.applicable += 1
                if let f = check(property, kernel, c) {
                    failures.append(f)
                    break  // one shrunk counterexample per property is enough
                }
            }
        }
        return Report(kernel: kernel.name, casesPerProperty: cases, counts: counts, failures: failures)
    }

    /// Re-runs one property on one case (to replay a reported failure).
    public static func replay(_ property: KernelProperty, _ kernel: any KernelUnderTest, _ c: PropertyCase) -> PropertyOutcome {
        outcome(property, kernel, c)
    }

    /// nil when the property holds (or does not apply) on `c`; otherwise the
    /// failure, shrunk (shrinks the property does not apply to never replace it).
    public static func check(_ property: KernelProperty, _ kernel: any KernelUnderTest, _ c: PropertyCase) -> Failure? {
        let first = outcome(property, kernel, c)
        if !first.failed { return nil }
        var smallest = c, detail = first.detail
        var budget = 40
        var progress = true
        while progress && budget > 0 {
            progress = false
            for s in smallest.shrinks {
                budget -= 1
                let o = outcome(property, kernel, s)
                if o.failed { smallest = s; detail = o.detail; progress = true; break }
                if budget <= 0 { break }
            }
        }
        return Failure(property: property.name, theorem: property.theorem, original: c, shrunk: smallest, detail: detail)
    }

    static func outcome(_ property: KernelProperty, _ kernel: any KernelUnderTest, _ c: PropertyCase) -> PropertyOutcome {
        do { return try property.check(kernel, c) } catch { return .fail("threw \(error)") }
    }
}
