import MambaVariants

extension CoreKernels {
    /// Elements of the recurrent (streaming) state of one head (docs/MATH.md §3–4).
    ///
    /// - Feature-map cores: `F·dv` for `S`, plus `F` for `z` when sum
    ///   normalised, with `F = dk` (first order), `dk(dk+1)/2` (squared,
    ///   packed) or `dk²` (`fullSecondOrder`).
    /// - Exponential score: the KV cache after `length` tokens, `length·(dk +
    ///   dv)`, plus `length` running log-decays when the core has a decay
    ///   (`length` must be given).
    /// - A convolution of window `k` adds the last `k − 1` pre-convolution
    ///   rows of this head's q, k and v channels, `(k − 1)·(2·dk + dv)`.
    ///
    /// 2Mamba (`squared`, decay, sum, `dk = dv = 64`, window 2):
    /// `64·2080 + 2080 + 192 = 135,392`.
    public static func stateElements(spec: CoreSpec, keyDim dk: Int, valueDim dv: Int, convWindow: Int = 1,
                                     length: Int? = nil, fullSecondOrder: Bool = false) -> Int {
        let conv = Swift.max(convWindow - 1, 0) * (2 * dk + dv)
        guard let f = spec.featureDimension(keyDim: dk, fullSecondOrder: fullSecondOrder) else {
            // No feature map (exponential score): the KV cache.
            let n = length ?? 0
            return n * (dk + dv) + (spec.hasDecay ? n : 0) + conv
        }
        return f * dv + (spec.normalization == .sum ? f : 0) + conv
    }
}
