/// Parameters of one block (docs/MATH.md §2), row-major, stored as Double holding
/// Float32-representable values. Linear maps are `[in, out]` so `u = x·W`.
public struct BlockParameters: Sendable {
    public var modelDim: Int
    public var heads: Int
    public var headDim: Int
    /// `[d, 3·H·dh]`, channels `[Q | K | V]`, head `h` owns `[h·dh, (h+1)·dh)` of each third.
    public var wQKV: [Double]
    /// `[3·H·dh, k]`; `convWeight[c, k−1]` multiplies the current token.
    public var convWeight: [Double]
    /// `[3·H·dh]`
    public var convBias: [Double]
    /// `[d, H]` (dt projection).
    public var wDt: [Double]
    /// `[H]` (Mamba-2 only).
    public var dtBias: [Double]
    /// `[H]`, `A_log = log U[1,16]`.
    public var aLog: [Double]
    /// `[d, H]` (softplus decay projection).
    public var wA: [Double]
    /// `[H·dh]` (D residual, `[H, dh]`).
    public var d: [Double]
    /// `[d, H·dh]` and `[H·dh]` (Z gate).
    public var wZ: [Double]
    public var bZ: [Double]
    /// `[H·dh]` RMSNorm weight γ.
    public var gamma: [Double]
    /// `[H·dh, d]`
    public var wO: [Double]

    /// Seeded initialisation following the paper's defaults: uniform
    /// ±1/√fan_in for linear maps, ±1/√k for the convolution (weights and
    /// bias), `A_log = log U[1,16]`, `dt_bias = softplus⁻¹(exp(U[log 0.001,
    /// log 0.1]))`, `D = 1`, `γ = 1`. All values are rounded to Float32.
    public static func initialised(variant: VariantSpec, modelDim dm: Int, heads h: Int, headDim dh: Int,
                                   seed: UInt64) -> BlockParameters {
        var g = SeededGenerator(seed: seed)
        func uniform(_ n: Int, bound: Double) -> [Double] {
            (0..<n).map { _ in Double(Float(g.uniform(-bound, bound))) }
        }
        let c = 3 * h * dh
        let k = variant.convWindow
        let wQKV = uniform(dm * c, bound: 1 / Double(dm).squareRoot())
        let convW = uniform(c * k, bound: 1 / Double(k).squareRoot())
        let convB = uniform(c, bound: 1 / Double(k).squareRoot())
        let wDt = uniform(dm * h, bound: 1 / Double(dm).squareRoot())
        let dtBias: [Double] = (0..<h).map { _ in
            let dt = exp(g.uniform(log(0.001), log(0.1)))
            return Double(Float(log(expm1(dt))))  // softplus⁻¹(dt)
        }
        let aLog: [Double] = (0..<h).map { _ in Double(Float(log(g.uniform(1, 16)))) }
        let wA = uniform(dm * h, bound: 1 / Double(dm).squareRoot())
        let wZ = uniform(dm * h * dh, bound: 1 / Double(dm).squareRoot())
        let bZ = uniform(h * dh, bound: 1 / Double(dm).squareRoot())
        let wO = uniform(h * dh * dm, bound: 1 / Double(h * dh).squareRoot())
        return BlockParameters(modelDim: dm, heads: h, headDim: dh, wQKV: wQKV, convWeight: convW, convBias: convB,
                               wDt: wDt, dtBias: dtBias, aLog: aLog, wA: wA,
                               d: [Double](repeating: 1, count: h * dh), wZ: wZ, bZ: bZ,
                               gamma: [Double](repeating: 1, count: h * dh), wO: wO)
    }
}

/// One block-level problem: layer input `x` (`[B, N, d]`) and parameters.
public struct BlockProblem: Sendable {
    public var variant: VariantSpec
    public var batch: Int
    public var length: Int
    public var x: [Double]
    public var parameters: BlockParameters

    public init(variant: VariantSpec, batch: Int, length: Int, x: [Double], parameters: BlockParameters) {
        self.variant = variant
        self.batch = batch
        self.length = length
        self.x = x
        self.parameters = parameters
    }

    /// Seeded block problem: `x ~ N(0, 1)` rounded to Float32 and seeded parameters.
    public static func random(variant: VariantSpec, batch: Int = 1, length: Int, modelDim: Int, heads: Int,
                              headDim: Int, seed: UInt64) -> BlockProblem {
        var g = SeededGenerator(seed: seed ^ 0x5EED_B10C)
        let x = (0..<(batch * length * modelDim)).map { _ in Double(Float(g.normal())) }
        let p = BlockParameters.initialised(variant: variant, modelDim: modelDim, heads: heads, headDim: headDim,
                                            seed: seed)
        return BlockProblem(variant: variant, batch: batch, length: length, x: x, parameters: p)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
