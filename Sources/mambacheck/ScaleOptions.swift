import ArgumentParser
import MambaVariants

/// `--scale` and `--scale-as`: the score scale as part of the problem (issue 14).
///
/// `--scale` is a decimal string read exactly by MPFR (not through a Double);
/// without it the scale is exactly `1/√dk`. `--scale-as` says what the
/// kernel received: the real number (`exact`), its nearest Double
/// (`float64`, PyTorch code passing a Python float) or that Double rounded to
/// Float32 (`float32`, Triton passing a Python float scalar).
struct ScaleOptions: ParsableArguments {
    @Option(help: "Score scale s as a decimal number, read exactly (default: exactly 1/sqrt(dk)).")
    var scale: String?
    @Option(name: .customLong("scale-as"),
            help: "What the kernel received: exact (default), float64 (nearest Double) or float32 (that Double rounded to Float32, as Triton passes Python floats).")
    var scaleAs: OracleScale.Received = .exact

    func validate() throws {
        // Non-finite scores have no oracle; s = 0 makes every score 0 (0/0 rows when sum-normalised).
        if let scale, let m = OracleScale.decimalError(scale) { throw ValidationError("--scale \(m)") }
    }

    /// The scale for a problem with key dimension `dk`.
    func oracleScale(keyDim dk: Int) -> OracleScale {
        if let scale { return OracleScale(value: .decimal(scale), received: scaleAs) }
        return .inverseSquareRoot(keyDim: dk, received: scaleAs)
    }

    /// The options as they are given on a command line (for "rerun with" lines).
    var commandLineArguments: String {
        (scale.map { " --scale \($0)" } ?? "") + (scaleAs == .exact ? "" : " --scale-as \(scaleAs.rawValue)")
    }
}

extension OracleScale.Received: ExpressibleByArgument {}
