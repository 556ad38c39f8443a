import MambaPrecision

/// The score scale `s` of docs/MATH.md §1 as part of the problem.
///
/// The mathematical scale (`value`) is exact: by default `1/√dk` as a real
/// number, or a decimal string read exactly. `received` models what a kernel
/// was actually handed: `exact` (the real number; the oracle evaluates it in
/// MPFR at working precision, or encloses it), `float64` (the nearest Double,
/// as PyTorch code passing a Python float computes with) or `float32` (that
/// Double rounded again to Float32, as Triton converts Python float scalars).
/// For `float64`/`float32` the scale is a binary number and enters the oracle
/// without rounding.
public struct OracleScale: Sendable, Equatable, CustomStringConvertible {
    public enum Value: Sendable, Equatable {
        /// `1/√n`, exactly.
        case inverseSquareRoot(Int)
        /// A decimal number, exactly as written (validated by `init?(decimal:received:)`).
        case decimal(String)
        /// A binary64 number given as such (a Double scale from code or a file).
        case binary64(Double)
    }

    /// What the kernel received.
    public enum Received: String, Sendable, CaseIterable {
        case exact, float32, float64
    }

    public let value: Value
    public let received: Received

    /// The default of docs/MATH.md §1: exactly `1/√dk`.
    public static func inverseSquareRoot(keyDim: Int, received: Received = .exact) -> OracleScale {
        OracleScale(value: .inverseSquareRoot(keyDim), received: received)
    }

    /// A Double taken as exact (the value *is* binary64).
    public static func binary64(_ x: Double) -> OracleScale { OracleScale(value: .binary64(x), received: .exact) }

    /// A decimal scale, or nil (with the reason in `decimalError(_:)`) when the
    /// string is not a finite non-zero number whose nearest Double is normal.
    public init?(decimal text: String, received: Received = .exact) {
        guard Self.decimalError(text) == nil else { return nil }
        self.init(value: .decimal(text), received: received)
    }

    public init(value: Value, received: Received) {
        self.value = value
        self.received = received
    }

    /// Why `text` is not a usable scale, or nil. The nearest Double must be a
    /// finite, non-zero normal number: every kernel computes with it.
    public static func decimalError(_ text: String) -> String? {
        guard let x = BigFloat(text, precision: 53, rounding: .nearest) else {
            return "expected a decimal number such as 0.125 or 1e-1, found '\(text)'"
        }
        let d = x.doubleValue
        if !d.isFinite || d == 0 || !d.isNormal {
            return "must be finite, non-zero and within Double's normal range, found '\(text)'"
        }
        if Float(d) == 0 || !Float(d).isFinite {
            return "must be within Float32's range, found '\(text)'"
        }
        return nil
    }

    /// The exact scale rounded once to the nearest Double (MPFR, correctly rounded).
    public var nearestDouble: Double {
        switch value {
        case .binary64(let x): return x
        case .inverseSquareRoot(let n): return BigFloat(reciprocalSquareRootOf: n, precision: 53, rounding: .nearest).doubleValue
        case .decimal(let s): return BigFloat(s, precision: 53, rounding: .nearest)!.doubleValue
        }
    }

    /// The binary value the kernel received, when it is one (`float64`,
    /// `float32`, or a `binary64` value); nil when the scale is a real number.
    public var receivedBinary: Double? {
        switch (received, value) {
        case (.float64, _), (.exact, .binary64): return nearestDouble
        case (.float32, _): return Double(Float(nearestDouble))  // Python float → fp32, as Triton does
        case (.exact, _): return nil
        }
    }

    /// The Double a Float32/Float64 kernel uses: the received binary value, or
    /// the nearest Double to the exact one.
    public var doubleValue: Double { receivedBinary ?? nearestDouble }

    /// For reports: e.g. `1/sqrt(48) exact`, `0.3 as float32 (0.30000001192092896)` (the
    /// received value printed as the shortest Double that identifies it).
    public var description: String {
        let what: String
        switch value {
        case .inverseSquareRoot(let n): what = "1/sqrt(\(n))"
        case .decimal(let s): what = s
        case .binary64(let x): return "\(x) (binary64, exact)"
        }
        switch received {
        case .exact: return what + " exact"
        case .float64: return what + " as float64 (\(doubleValue))"
        case .float32: return what + " as float32 (\(doubleValue))"
        }
    }
}
