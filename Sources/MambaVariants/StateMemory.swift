/// Memory of the recurrent state per head, in elements (docs/MATH.md §4, Proofs/T5).
public enum StateMemory {
    /// `F·dv + F·[sum] + (k−1)·3·dh` with `F = dh` (first order) or
    /// `dh(dh+1)/2` (squared), `dv = dh`: state `S`, normaliser `z`, and the
    /// last `k − 1` pre-convolution rows of the Q, K, V channels.
    /// nil for the exponential score (its cache grows with N).
    public static func recurrentStateElements(_ v: VariantSpec, headDim dh: Int) -> Int? {
        guard let f = v.core.featureDimension(keyDim: dh) else { return nil }
        return f * dh + (v.normalization == .sum ? f : 0) + (v.convWindow - 1) * 3 * dh
    }

    /// A softmax KV cache after `n` tokens: `2·N·dh`.
    public static func kvCacheElements(length n: Int, headDim dh: Int) -> Int { 2 * n * dh }

    /// Smallest N at which 2Mamba's state is smaller than a KV cache:
    /// the least integer N with `N > (dh+1)²/4 + 3/2`.
    public static func twoMambaCrossoverLength(headDim dh: Int) -> Int {
        let bound = Double((dh + 1) * (dh + 1)) / 4 + 1.5
        return Int(bound.rounded(.down)) + 1
    }
}
