import Testing
import MambaVariants

@Suite struct CatalogueTests {
    @Test func everyPresetNameRoundTrips() {
        for v in VariantSpec.presets {
            let parsed = VariantSpec(named: v.name)
            #expect(parsed == v, "\(v.name)")
        }
        #expect(Set(VariantSpec.presets.map(\.name)).count == VariantSpec.presets.count)
    }

    @Test func presetsMatchSpecTable() {
        let m = VariantSpec.mamba2
        #expect(m.score == .linear && m.decay == .original && m.convWindow == 4 && m.dtOnValues && m.dResidual
                && m.zGate && !m.zGateBias && m.activation == .silu && m.activationOnValues && m.outputNorm)
        let t = VariantSpec(named: "2mamba")!
        #expect(t.core == CoreSpec(score: .squared, hasDecay: true, normalization: .sum) && t.convWindow == 2)
        #expect(VariantSpec(named: "2mamba-e")!.core.score == .exponential)
        #expect(VariantSpec(named: "softmax")!.core == CoreSpec(score: .exponential, hasDecay: false, normalization: .sum))
        #expect(VariantSpec(named: "linear")!.core.score == .reluLinear)
        #expect(VariantSpec(named: "mamba2s")!.decay == .softplus)
        #expect(VariantSpec(named: "linear-outnorm+conv3+silu")!.convWindow == 3)
        #expect(VariantSpec(named: "nonsense") == nil)
        #expect(VariantSpec(named: "2mamba+bogus") == nil)
    }

    @Test func coreCatalogue() {
        // 4 scores × 2 decays × 2 norms, minus linear+sum (×2 decays).
        #expect(CoreSpec.all.count == 14)
        for c in CoreSpec.all { #expect(CoreSpec(name: c.name) == c) }
        #expect(CoreSpec(score: .squared, hasDecay: true, normalization: .sum).featureDimension(keyDim: 64) == 2080)
    }

    @Test func packedSecondOrderMapReproducesSquaredDotProduct() {
        var g = SeededGenerator(seed: 7)
        for d in 1...9 {
            let q = (0..<d).map { _ in Double(Int(g.uniform(-8, 8))) }
            let k = (0..<d).map { _ in Double(Int(g.uniform(-8, 8))) }
            let pq = FeatureMap.apply(.squared, q), pk = FeatureMap.apply(.squared, k)
            let lhs = zip(pq, pk).reduce(0) { $0 + $1.0 * $1.1 }
            let dot = zip(q, k).reduce(0) { $0 + $1.0 * $1.1 }
            // Small integers: products of q and k entries are exact; each √2-weighted
            // term carries ≤ 4 roundings and the sum of m terms ≤ m more, so
            // |error| ≤ (m + 4)·u·Σ|terms| (Higham's γ_n bound, u = 2^-53).
            let m = pq.count
            let absSum = zip(pq, pk).reduce(0) { $0 + abs($1.0 * $1.1) }
            #expect(abs(lhs - dot * dot) <= Double(m + 4) * Double.ulpOfOne / 2 * absSum, "d=\(d)")
            #expect(FeatureMap.packedIndex(d - 1, d - 1, dim: d) == d * (d + 1) / 2 - 1)
        }
    }

    @Test func generatorIsReproducible() {
        let a = CoreProblem.random(spec: CoreSpec.all[0], length: 5, keyDim: 3, valueDim: 2, seed: 42)
        let b = CoreProblem.random(spec: CoreSpec.all[0], length: 5, keyDim: 3, valueDim: 2, seed: 42)
        #expect(a.q == b.q && a.k == b.k && a.v == b.v)
        #expect(a.q.allSatisfy { Double(Float($0)) == $0 })
    }
}

/// Proofs/T5: state size and crossover against a KV cache.
@Suite struct StateMemoryTests {
    @Test func twoMambaStateMatchesTheSpecFormula() {
        #expect(StateMemory.recurrentStateElements(.twoMamba, headDim: 64) == 135_392)
        for dh in [1, 2, 8, 16, 64, 128] {
            let d = dh * (dh + 1) / 2
            #expect(StateMemory.recurrentStateElements(.twoMamba, headDim: dh) == dh * d + d + 3 * dh)
        }
        #expect(StateMemory.recurrentStateElements(.softmax, headDim: 64) == nil)
    }

    @Test func crossoverIsWhereTheStateBecomesSmallerThanTheCache() {
        #expect(StateMemory.twoMambaCrossoverLength(headDim: 64) == 1058)
        for dh in [1, 2, 3, 8, 16, 31, 64, 100] {
            let n = StateMemory.twoMambaCrossoverLength(headDim: dh)
            let state = StateMemory.recurrentStateElements(.twoMamba, headDim: dh)!
            #expect(state < StateMemory.kvCacheElements(length: n, headDim: dh), "dh=\(dh)")
            #expect(state >= StateMemory.kvCacheElements(length: n - 1, headDim: dh), "dh=\(dh)")
        }
    }
}
