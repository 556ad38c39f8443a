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

    public struct Report: Sendable, CustomStringConvertible {
        public var kernel: String
        public var casesPerProperty: Int
        public var failures: [Failure]
        public var passed: Bool { failures.isEmpty }
        public var description: String {
            passed ? "\(kernel): all \(KernelProperty.all.count) properties passed on \(casesPerProperty) cases each"
                : "\(kernel): \(failures.count) failure(s)\n" + failures.map { "  " + $0.description }.joined(separator: "\n")
        }
    }

    /// Checks `properties` on `cases` seeded cases each (`seed`, `seed+1`, …).
    public static func run(_ kernel: any KernelUnderTest, cases: Int = 10, seed: UInt64 = 1, maxLength: Int = 200,
                           properties: [KernelProperty] = KernelProperty.all) -> Report {
        var failures: [Failure] = []
        for property in properties {
            for i in 0..<cases {
                let c = PropertyCase.random(seed: seed &+ UInt64(i), maxLength: maxLength)
                if let f = check(property, kernel, c) {
                    failures.append(f)
                    break  // one shrunk counterexample per property is enough
                }
            }
        }
        return Report(kernel: kernel.name, casesPerProperty: cases, failures: failures)
    }

    /// Re-runs one property on one case (to replay a reported failure).
    public static func replay(_ property: KernelProperty, _ kernel: any KernelUnderTest, _ c: PropertyCase) -> PropertyOutcome {
        outcome(property, kernel, c)
    }

    /// nil when the property holds on `c`; otherwise the failure, shrunk.
    public static func check(_ property: KernelProperty, _ kernel: any KernelUnderTest, _ c: PropertyCase) -> Failure? {
        let first = outcome(property, kernel, c)
        if first.passed { return nil }
        var smallest = c, detail = first.detail
        var budget = 40
        var progress = true
        while progress && budget > 0 {
            progress = false
            for s in smallest.shrinks {
                budget -= 1
                let o = outcome(property, kernel, s)
                if !o.passed { smallest = s; detail = o.detail; progress = true; break }
                if budget <= 0 { break }
            }
        }
        return Failure(property: property.name, theorem: property.theorem, original: c, shrunk: smallest, detail: detail)
    }

    static func outcome(_ property: KernelProperty, _ kernel: any KernelUnderTest, _ c: PropertyCase) -> PropertyOutcome {
        do { return try property.check(kernel, c) } catch { return .fail("threw \(error)") }
    }
}
