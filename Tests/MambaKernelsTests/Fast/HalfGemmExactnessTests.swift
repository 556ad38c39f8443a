import CHalf
import Foundation
@testable import MambaKernels
import Testing

/// The pure binary16 GEMM (`mc_half_gemm`, every path this CPU has) against
/// binary16 arithmetic done by Swift's own `Float16` type: each product and
/// each partial sum rounded to binary16, summed in order from p = 0.
/// Bit-identical on every non-NaN result (NaN payloads are not specified:
/// which NaN operand x86 propagates depends on operand order, which the
/// compiler may commute); NaN where the reference is NaN.
@Suite("pure binary16 GEMM: exact on every path")
struct HalfGemmExactnessTests {
    /// Binary16 values chosen to hit every rounding case: zeros of both signs,
    /// the smallest and largest subnormals, the smallest normal, the largest
    /// finite, infinities, NaN, 1 and its neighbours (ties: 1 + 2⁻¹¹ is half
    /// an ulp above 1), and values whose products overflow or underflow.
    static let edgeBits: [UInt16] = [
        0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00,
        0x3C00, 0xBC00, 0x3C01, 0x3BFF, 0x1000, 0x9000, 0x0200, 0x5BFF, 0x7000, 0x1400, 0x3555, 0x4000,
    ]

    /// Reference: Swift `Float16` arithmetic, literally.
    static func reference(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = Float16(0)
                for p in 0..<k { s = s + Float16(a[i * k + p]) * Float16(b[p * n + j]) }
                c[i * n + j] = Float(s)
            }
        }
        return c
    }

    static func sameResult(_ x: Float, _ y: Float) -> Bool {
        (x.isNaN && y.isNaN) || x.bitPattern == y.bitPattern
    }

    static func matrices(rows: Int, cols: Int, edge: Bool, rng: inout SplitMix) -> [Float] {
        (0..<(rows * cols)).map { _ in
            let bits: UInt16
            if edge && rng.next() % 3 == 0 {
                bits = edgeBits[Int(rng.next() % UInt64(edgeBits.count))]
            } else if edge {
                bits = UInt16(truncatingIfNeeded: rng.next()) // any binary16, NaNs and subnormals included
            } else {
                // Moderate exponents (2⁻⁸ … 2⁸), both signs: long sums with many ties and carries.
                bits = UInt16(0x2000 + rng.next() % 0x3000) | (rng.next() & 1 == 0 ? 0 : 0x8000)
            }
            return Float(Float16(bitPattern: bits))
        }
    }

    @Test(arguments: [0, 1, 2, 3])
    func pathMatchesFloat16Arithmetic(path: Int32) throws {
        var rng = SplitMix(seed: 0x5EED_0000 + UInt64(path))
        var ran = 0
        for trial in 0..<60 {
            let m = Int(MC_HALF_GEMM_ROWS) * (1 + Int(rng.next() % 4))
            // Multiples of 8: the F16C and AVX-512F paths' 8-column tail tile (n % 16 == 8) as well.
            let n = 8 * (1 + Int(rng.next() % 6))
            let k = 1 + Int(rng.next() % 90)
            let a = Self.matrices(rows: m, cols: k, edge: trial % 2 == 0, rng: &rng)
            let b = Self.matrices(rows: k, cols: n, edge: trial % 2 == 0, rng: &rng)
            var c = [Float](repeating: .nan, count: m * n)
            let available = mc_half_gemm_on_path(path, a, b, &c, m, n, k)
            if available == 0 { continue } // this CPU lacks the path
            ran += 1
            let want = Self.reference(a, b, m: m, n: n, k: k)
            let bad = (0..<(m * n)).filter { !Self.sameResult(c[$0], want[$0]) }
            #expect(bad.isEmpty, "path \(path) trial \(trial) (\(m)×\(n)×\(k)): \(bad.count) differ, first at \(bad.first ?? -1): \(bad.first.map { (c[$0].bitPattern, want[$0].bitPattern) }.map { "\($0)" } ?? "")")
        }
        if path <= 1 && mc_half_gemm_path() >= path { #expect(ran == 60) }
    }

    /// Sums small enough that no partial sum can overflow (the F16C path then
    /// rounds them by Veltkamp splitting, `mc_half_sums_bounded`): long
    /// reductions with ties, carries, cancellation to subnormal sums and
    /// subnormal products, and one trial per size just over the bound.
    @Test(arguments: [0, 1, 2, 3])
    func boundedSumsMatchFloat16Arithmetic(path: Int32) throws {
        var rng = SplitMix(seed: 0xB0_0000 + UInt64(path))
        for trial in 0..<40 {
            let m = Int(MC_HALF_GEMM_ROWS) * (1 + Int(rng.next() % 3))
            let n = 8 * (1 + Int(rng.next() % 4))
            let k = 1 + Int(rng.next() % 400)
            // Magnitudes 2⁻¹² … 2¹ (products down to binary16 subnormals), both signs.
            let draw = { (rng: inout SplitMix) -> Float in
                let bits = UInt16(0x0C00 + rng.next() % 0x3400) | (rng.next() & 1 == 0 ? 0 : 0x8000)
                return Float(Float16(bitPattern: bits))
            }
            let a = (0..<(m * k)).map { _ in draw(&rng) }
            var b = (0..<(k * n)).map { _ in draw(&rng) }
            if trial % 8 == 7 { b[0] = 32768 }  // a large entry: the bound fails, conversions round the sums
            var c = [Float](repeating: .nan, count: m * n)
            guard mc_half_gemm_on_path(path, a, b, &c, m, n, k) == 1 else { continue }
            let want = Self.reference(a, b, m: m, n: n, k: k)
            let bad = (0..<(m * n)).filter { !Self.sameResult(c[$0], want[$0]) }
            #expect(bad.isEmpty, "path \(path) trial \(trial) (\(m)×\(n)×\(k)): \(bad.count) differ")
        }
    }

    /// Ties to even in the running sum: 1 + 2⁻¹¹ rounds down to 1 (even), and
    /// (1 + 2⁻¹⁰) + 2⁻¹¹ rounds up to 1 + 2⁻⁹; an overflowing product is +∞;
    /// the sum of +∞ and −∞ is NaN; a subnormal product stays exact.
    @Test func constructedCases() {
        let rows = Int(MC_HALF_GEMM_ROWS), cols = Int(MC_HALF_GEMM_COLUMNS), k = 2
        let h = { (x: Float) in Float(Float16(x)) }
        var a = [Float](repeating: 0, count: rows * k), b = [Float](repeating: 0, count: k * cols)
        // row 0: 1·1 + 1·2⁻¹¹; row 1: (1+2⁻¹⁰)·1 + 1·2⁻¹¹; row 2: 256·256 + 0; row 3: 256·256 + (−256)·256
        a[0] = 1; a[1] = 1
        a[2] = h(1 + 0x1p-10); a[3] = 1
        a[4] = 256; a[5] = 0
        a[6] = 256; a[7] = -256
        b[0] = 1; b[cols] = 0x1p-11
        b[1] = 0x1p-14; b[cols + 1] = 0x1p-10 // column 1: subnormal products 2⁻¹⁴·… and 2⁻¹⁰·…
        b[2] = 256; b[cols + 2] = 256
        for path: Int32 in 0...3 {
            var c = [Float](repeating: .nan, count: rows * cols)
            guard mc_half_gemm_on_path(path, a, b, &c, rows, cols, k) == 1 else { continue }
            #expect(c[0] == 1, "path \(path)")
            #expect(c[cols] == 1 + 0x1p-9, "path \(path)")
            #expect(c[2 * cols + 2] == .infinity, "path \(path)")  // 256·256 = 65536 overflows
            #expect(c[3 * cols + 2].isNaN, "path \(path)")        // +∞ + (−∞)
            #expect(c[1] == 0x1p-14 + 0x1p-10, "path \(path)")    // exact: 2⁻¹⁴ + 2⁻¹⁰
            #expect(c[2 * cols + 1] == h(256 * 0x1p-14), "path \(path)")
            let want = Self.reference(a, b, m: rows, n: cols, k: k)
            #expect((0..<(rows * cols)).allSatisfy { Self.sameResult(c[$0], want[$0]) }, "path \(path)")
        }
    }

    /// Through the kernels' `Arithmetic.gemm` (transposes, alpha, beta,
    /// scaleB, sizes that are not multiples of the vector tile): the same
    /// result as the operation-by-operation definition of docs/MATH.md §7.2.
    @Test func arithmeticGemmMatchesDefinition() {
        var rng = SplitMix(seed: 77)
        let arith = Arithmetic(.float16)
        for trial in 0..<40 {
            let m = 1 + Int(rng.next() % 11), n = 1 + Int(rng.next() % 37), k = 1 + Int(rng.next() % 20)
            let transA = rng.next() & 1 == 1, transB = rng.next() & 1 == 1
            let alpha: Float = [1, 0.5, -2, 0.3][Int(rng.next() % 4)]
            let beta: Float = [0, 1, 0.5, -1][Int(rng.next() % 4)]
            let scaleB: Float = [1, 4, 0.25][Int(rng.next() % 3)]
            let (ra, ca) = transA ? (k, m) : (m, k), (rb, cb) = transB ? (n, k) : (k, n)
            let a = Self.matrices(rows: ra, cols: ca, edge: false, rng: &rng)
            let b = Self.matrices(rows: rb, cols: cb, edge: false, rng: &rng)
            let c0 = Self.matrices(rows: m, cols: n, edge: false, rng: &rng)
            var c = c0
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                arith.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: ca,
                           b: bp.baseAddress!, ldb: cb, beta: beta, c: cp.baseAddress!, ldc: n, scaleB: scaleB)
            } } }
            // Definition: Float16 arithmetic throughout.
            let h = { (x: Float) in Float16(x) }
            let alphaH = h(alpha), betaH = h(beta)
            for i in 0..<m {
                for j in 0..<n {
                    var s = Float16(0)
                    for p in 0..<k {
                        let av = transA ? a[p * ca + i] : a[i * ca + p]
                        let bv = (transB ? b[j * cb + p] : b[p * cb + j]) * scaleB
                        s = s + h(av) * h(bv)
                    }
                    if alphaH != 1 { s = s * alphaH }
                    let want: Float16 = betaH == 0 ? s : (betaH == 1 ? h(c0[i * n + j]) : h(c0[i * n + j]) * betaH) + s
                    #expect(Self.sameResult(c[i * n + j], Float(want)), "trial \(trial) (\(i),\(j))")
                }
            }
        }
    }

    /// Zero rows of A and zero rows of B (whole steps), as binary16 underflow
    /// produces them, with and without an infinity or NaN elsewhere in the
    /// other operand (which forbids the skip on that side): the same bits as
    /// the operation-by-operation definition (`HalfGemmSkips`).
    @Test func zeroRowsAndStepsAreExact() {
        var rng = SplitMix(seed: 2026)
        let arith = Arithmetic(.float16)
        for trial in 0..<60 {
            let m = 1 + Int(rng.next() % 13), n = 1 + Int(rng.next() % 37), k = 1 + Int(rng.next() % 24)
            let transA = rng.next() & 1 == 1, transB = rng.next() & 1 == 1
            let beta: Float = [0, 1, 0.5][Int(rng.next() % 3)]
            var a = Self.matrices(rows: m, cols: k, edge: false, rng: &rng)   // logical op(A): m×k
            var b = Self.matrices(rows: k, cols: n, edge: false, rng: &rng)   // logical op(B): k×n
            for i in 0..<m where rng.next() % 3 != 0 { for p in 0..<k { a[i * k + p] = rng.next() & 1 == 0 ? 0 : -0.0 } }
            for p in 0..<k where rng.next() % 3 != 0 { for j in 0..<n { b[p * n + j] = rng.next() & 1 == 0 ? 0 : -0.0 } }
            let special: [Float] = [.infinity, -.infinity, .nan]
            switch trial % 4 {
            case 1: a[Int(rng.next() % UInt64(m * k))] = special[Int(rng.next() % 3)]
            case 2: b[Int(rng.next() % UInt64(k * n))] = special[Int(rng.next() % 3)]
            case 3: a[Int(rng.next() % UInt64(m * k))] = special[Int(rng.next() % 3)]
                    b[Int(rng.next() % UInt64(k * n))] = special[Int(rng.next() % 3)]
            default: break
            }
            // Stored as the kernels pass them (transposed when asked).
            let aStored = transA ? (0..<(k * m)).map { a[($0 % m) * k + $0 / m] } : a
            let bStored = transB ? (0..<(n * k)).map { b[($0 % k) * n + $0 / k] } : b
            let c0 = Self.matrices(rows: m, cols: n, edge: false, rng: &rng)
            var c = c0
            aStored.withUnsafeBufferPointer { ap in bStored.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                arith.gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: ap.baseAddress!, lda: transA ? m : k,
                           b: bp.baseAddress!, ldb: transB ? k : n, beta: beta, c: cp.baseAddress!, ldc: n)
            } } }
            let betaH = Float16(beta)
            for i in 0..<m {
                for j in 0..<n {
                    var s = Float16(0)
                    for p in 0..<k { s = s + Float16(a[i * k + p]) * Float16(b[p * n + j]) }
                    let want: Float16 = betaH == 0 ? s : (betaH == 1 ? Float16(c0[i * n + j]) : Float16(c0[i * n + j]) * betaH) + s
                    #expect(Self.sameResult(c[i * n + j], Float(want)), "trial \(trial) (\(i),\(j)): \(c[i * n + j]) vs \(want)")
                }
            }
        }
    }
}

/// A small seeded generator (SplitMix64) for the tests of this file.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
