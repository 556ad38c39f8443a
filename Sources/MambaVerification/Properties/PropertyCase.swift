import MambaKernels
import MambaVariants

/// The shape and seed of one generated case. Everything about the case —
/// values, decays, initial state — follows from these fields, so printing a
/// `PropertyCase` is enough to replay it (`PropertySuite.replay`).
public struct PropertyCase: Sendable, Hashable, CustomStringConvertible {
    public var length: Int
    public var keyDim: Int
    public var valueDim: Int
    public var heads: Int
    public var batch: Int
    public var withInitialState: Bool
    public var decayAsPrefixSum: Bool
    public var distribution: InputDistribution
    public var seed: UInt64

    public init(length: Int, keyDim: Int, valueDim: Int, heads: Int = 1, batch: Int = 1, withInitialState: Bool = false,
                decayAsPrefixSum: Bool = false, distribution: InputDistribution = .paper, seed: UInt64) {
        self.length = length
        self.keyDim = keyDim
        self.valueDim = valueDim
        self.heads = heads
        self.batch = batch
        self.withInitialState = withInitialState
        self.decayAsPrefixSum = decayAsPrefixSum
        self.distribution = distribution
        self.seed = seed
    }

    public var description: String {
        "PropertyCase(length: \(length), keyDim: \(keyDim), valueDim: \(valueDim), heads: \(heads), batch: \(batch), "
            + "withInitialState: \(withInitialState), decayAsPrefixSum: \(decayAsPrefixSum), "
            + "distribution: .\(distribution), seed: \(seed))"
    }

    /// A random case shape from `seed` (N in 1…maxLength, many not multiples of any chunk size).
    public static func random(seed: UInt64, maxLength: Int = 300) -> PropertyCase {
        var g = SeededGenerator(seed: seed ^ 0xCA5E)
        func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(g.next() % UInt64(r.count)) }
        return PropertyCase(length: int(1...maxLength), keyDim: int(1...12), valueDim: int(1...12), heads: int(1...2),
                            batch: int(1...2), withInitialState: g.next() % 2 == 0,
                            decayAsPrefixSum: g.next() % 4 == 0, distribution: g.next() % 3 == 0 ? .fla : .paper,
                            seed: seed)
    }

    /// The problem of this case for `kernel`, inputs rounded to its storage format.
    public func problem(for kernel: any KernelUnderTest) -> CoreProblem {
        var p = CoreProblem.random(spec: kernel.core, batch: batch, heads: heads, length: length, keyDim: keyDim,
                                   valueDim: valueDim, distribution: distribution,
                                   storage: kernel.mode.formats.inputStorage,
                                   withInitialState: withInitialState && kernel.supportsState, seed: seed)
        if decayAsPrefixSum, case .perStep(let a)? = p.decay {
            // Prefix sums as a kernel would hold them in Float32.
            var l = [Double](repeating: 0, count: a.count)
            for s in 0..<p.sequences {
                var acc: Float = 0
                for t in 0..<length { acc += Float(a[s * length + t]); l[s * length + t] = Double(acc) }
            }
            p.decay = .prefixSum(l)
        }
        return p
    }

    /// Smaller cases to try when this one fails (shrinking): halve N, then
    /// the widths, then drop heads, batch and the initial state.
    public var shrinks: [PropertyCase] {
        var out: [PropertyCase] = []
        if length > 1 { var c = self; c.length = max(1, length / 2); out.append(c) }
        if length > 1 { var c = self; c.length = length - 1; out.append(c) }
        if keyDim > 1 { var c = self; c.keyDim = max(1, keyDim / 2); out.append(c) }
        if valueDim > 1 { var c = self; c.valueDim = max(1, valueDim / 2); out.append(c) }
        if heads > 1 { var c = self; c.heads = 1; out.append(c) }
        if batch > 1 { var c = self; c.batch = 1; out.append(c) }
        if withInitialState { var c = self; c.withInitialState = false; out.append(c) }
        return out
    }
}
