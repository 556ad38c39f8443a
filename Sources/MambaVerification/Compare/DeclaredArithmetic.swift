import MambaKernels
import MambaVariants
import MambaPrecision

/// The arithmetic a candidate kernel declares it uses (docs/MATH.md §8): the
/// precision of its matrix-product operands, of its accumulation, and of its
/// stored (carried) state. The storage format of inputs and outputs comes
/// from the tensors' dtypes. MambaCheck's baselines run in exactly this
/// arithmetic, so the verdict compares like with like; it never switches to
/// a looser one by itself (`looser` only *explains* a failure).
///
/// Profiles (`named(_:)`):
///
/// | profile | operands | accumulation | typical kernel |
/// |---|---|---|---|
/// | `float32` (`fp32`) | binary32 | binary32 | true Float32, `allow_tf32=False` |
/// | `float32-3xtf32` (`3xtf32`) | binary32 split in two TF32 | binary32 | CUTLASS `OpMultiplyAddFastF32` (PyTorch's memory-efficient attention on fp32), Triton's `tf32x3` dots |
/// | `tf32` (`fp32-tf32`) | TF32 | binary32 | Triton's default `tl.dot` on fp32 data |
/// | `float16-acc32` (`fp16`, `fp16-acc32`) | binary16 | binary32 | tensor cores, fp16 inputs |
/// | `bfloat16-acc32` (`bf16`, `bf16-acc32`) | bfloat16 | binary32 | tensor cores, bf16 inputs |
/// | `float16-pure` (`pure-fp16`) | binary16 | binary16 | every operation in half |
///
/// plus a stored-state format (`+state=float16|bfloat16`, or `stateStorage`):
/// a state cache kept in 16 bits between chunks or tokens; and the kernel's
/// chunk length (`+chunk=256`, or `chunkSize`; default 64); and, optionally,
/// the kernel's form (`+form=chunked|quadratic|tiled|recurrent`, or `form`).
public struct DeclaredArithmetic: Sendable, Hashable, CustomStringConvertible {
    /// Operands of every matrix product (`.binary32`, `.tf32`, `.binary16`, `.bfloat16`).
    public var operands: NumberFormat
    /// Accumulation (`.binary32`, or `.binary16` for pure half).
    public var accumulation: NumberFormat
    /// Binary32 operands multiplied in 3xTF32 (`KernelOptions.splitTF32Products`):
    /// each split into a truncated TF32 `big` and a TF32 `small`, and
    /// `a·b ≈ a_s·b_b + a_b·b_s + a_b·b_b`. Each product errs by up to `2⁻¹⁹`
    /// relative, 32 of Float32's `u` (typically a few), so such a kernel is measurably less
    /// accurate than an IEEE Float32 one (PyTorch's memory-efficient SDPA,
    /// fp32: 1.6–2.0x the Float32 baselines normwise) and is judged against
    /// baselines that multiply the same way. Only with binary32 operands.
    public var splitTF32: Bool
    /// Storage of the carried state between chunks or tokens.
    public var stateStorage: StateStorage
    /// The kernel's chunk length: decay exponents inside a chunk are formed
    /// from chunk-local prefix sums over up to `chunkSize` tokens, whose
    /// error `u_acc·|ℓ_i|` grows with it (Proofs/T9; visible in true Float32
    /// only). 64 (FLA's) by default; Mamba-2's SSD kernels use 256. The
    /// chunked baseline runs with it. `compare` infers a longer one when none
    /// is declared (`ChunkLengthInference`).
    public var chunkSize: Int
    /// The kernel's form, when declared; nil: any form. A recurrent kernel sums
    /// its state token by token, so where no form is declared its error is a
    /// yardstick too (a Float32 recurrent output, an acc32 recurrent final state:
    /// Proofs/T9); declaring a parallel form (chunked, quadratic, tiled) drops
    /// that yardstick, and with it the ~14x larger allowance a recurrent final
    /// state gives a chunked acc32 kernel's final state. Declaring `recurrent`
    /// keeps only recurrent baselines for the forward outputs (chunk-local
    /// prefix sums of parallel forms err by `u·|ℓ|` in the exponent, which a
    /// recurrence never does). Gradients keep every backward form.
    public var form: KernelForm?

    public init(operands: NumberFormat, accumulation: NumberFormat = .binary32, stateStorage: StateStorage = .float32,
                chunkSize: Int = 64, form: KernelForm? = nil, splitTF32: Bool = false) {
        self.operands = operands
        self.accumulation = accumulation
        self.splitTF32 = splitTF32 && operands == .binary32 && accumulation == .binary32
        self.stateStorage = stateStorage
        self.chunkSize = chunkSize
        self.form = form
    }

    public static let float32 = DeclaredArithmetic(operands: .binary32)
    public static let float32Split3xTF32 = DeclaredArithmetic(operands: .binary32, splitTF32: true)
    public static let tf32 = DeclaredArithmetic(operands: .tf32)
    public static let float16Acc32 = DeclaredArithmetic(operands: .binary16)
    public static let bfloat16Acc32 = DeclaredArithmetic(operands: .bfloat16)
    public static let float16Pure = DeclaredArithmetic(operands: .binary16, accumulation: .binary16)

    /// The named profiles, in order of increasing looseness.
    public static let profiles: [(name: String, aliases: [String], arithmetic: DeclaredArithmetic)] = [
        ("float32", ["fp32", "binary32", "ieee"], .float32),
        ("float32-3xtf32", ["3xtf32", "fp32-3xtf32", "tf32x3", "float32-tf32x3"], .float32Split3xTF32),
        ("tf32", ["fp32-tf32", "float32-tf32"], .tf32),
        ("float16-acc32", ["fp16", "fp16-acc32", "float16", "half", "fp16-fp32acc"], .float16Acc32),
        ("bfloat16-acc32", ["bf16", "bf16-acc32", "bfloat16", "bf16-fp32acc"], .bfloat16Acc32),
        ("float16-pure", ["pure-fp16", "fp16-pure", "fp16-acc16"], .float16Pure),
    ]

    /// Parses a profile name, with an optional `+state=FORMAT` suffix
    /// (e.g. `bf16-acc32+state=bfloat16`). Case and `_` vs `-` are ignored.
    public static func named(_ text: String) -> DeclaredArithmetic? {
        let parts = text.lowercased().replacingOccurrences(of: "_", with: "-").split(separator: "+")
        guard let head = parts.first else { return nil }
        guard var a = profiles.first(where: { $0.name == head || $0.aliases.contains(String(head)) })?.arithmetic
        else { return nil }
        for extra in parts.dropFirst() {
            let kv = extra.split(separator: "=")
            guard kv.count == 2 else { return nil }
            if kv[0] == "form" {
                guard let f = KernelForm(rawValue: String(kv[1])) else { return nil }
                a.form = f
                continue
            }
            if kv[0] == "chunk" {
                guard let c = Int(kv[1]), c >= 1, c <= 1 << 16 else { return nil }
                a.chunkSize = c
                continue
            }
            guard kv[0] == "state" else { return nil }
            switch kv[1] {
            case "float32", "fp32": a.stateStorage = .float32
            case "float16", "fp16": a.stateStorage = .float16
            case "bfloat16", "bf16": a.stateStorage = .bfloat16
            default: return nil
            }
        }
        return a
    }

    /// The profile name (with `+state=…` when the state is stored in 16 bits).
    public var name: String {
        let base = DeclaredArithmetic.profiles.first {
            $0.arithmetic.operands == operands && $0.arithmetic.accumulation == accumulation
                && $0.arithmetic.splitTF32 == splitTF32
        }?.name ?? "\(operands.rawValue)-operands/\(accumulation.rawValue)-acc"
        return base + (stateStorage == .float32 ? "" : "+state=\(stateStorage.rawValue)")
            + (chunkSize == 64 ? "" : "+chunk=\(chunkSize)") + (form.map { "+form=\($0.rawValue)" } ?? "")
    }

    /// In words, e.g. "fp16 operands, fp32 accumulation, fp32 state".
    public var description: String {
        func short(_ f: NumberFormat) -> String {
            switch f {
            case .binary64: return "fp64"
            case .binary32: return "fp32"
            case .binary16: return "fp16"
            case .bfloat16: return "bf16"
            case .tf32: return "TF32"
            default: return f.rawValue
            }
        }
        let state: String
        switch stateStorage {
        case .float32: state = "fp32"
        case .float16: state = "fp16"
        case .bfloat16: state = "bf16"
        }
        let operandText = splitTF32 ? "fp32 operands in 3xTF32" : short(operands) + " operands"
        return "\(operandText), \(short(accumulation)) accumulation, \(state) stored state, chunk \(chunkSize)"
            + (form.map { ", \($0.rawValue) form" } ?? "")
    }

    /// The precision mode of MambaCheck's kernels that realises this arithmetic.
    ///
    /// - Throws: `VerificationError.invalidPolicy` for a combination no mode models
    ///   (e.g. bfloat16 accumulation).
    public func mode() throws -> PrecisionMode {
        guard let m = PrecisionMode.allCases.first(where: {
            $0.formats.operand == operands && $0.formats.accumulation == accumulation
        }) else {
            throw VerificationError.invalidPolicy(
                "no kernel models \(operands.rawValue) operands with \(accumulation.rawValue) accumulation")
        }
        return m
    }

    /// The arithmetic a kernel storing its outputs in `format` is assumed to
    /// use when it declares none: Float32 for binary32 (and binary64) outputs,
    /// 16-bit operands with Float32 accumulation for binary16/bfloat16, TF32
    /// for the legacy `--format tf32`.
    public static func assumed(forStorage format: NumberFormat) -> DeclaredArithmetic {
        switch format {
        case .binary16: return .float16Acc32
        case .bfloat16: return .bfloat16Acc32
        case .tf32: return .tf32
        default: return .float32
        }
    }

    /// Arithmetics strictly looser than this one, in the order a failure is
    /// explained by them: TF32 dots, 16-bit stored state, 16-bit operands,
    /// half accumulation.
    public var looser: [DeclaredArithmetic] {
        var out: [DeclaredArithmetic] = []
        func add(_ a: DeclaredArithmetic) {
            if a != self, a.isAtLeastAsLoose(as: self), !out.contains(a) { out.append(a) }
        }
        let c = chunkSize
        let split = splitTF32
        if form != nil {  // any form: a recurrent kernel's error as a yardstick too
            add(DeclaredArithmetic(operands: operands, accumulation: accumulation, stateStorage: stateStorage,
                                   chunkSize: c, splitTF32: split))
        }
        add(DeclaredArithmetic(operands: operands, accumulation: accumulation, stateStorage: stateStorage,
                               chunkSize: Swift.max(c, 256), form: form, splitTF32: split))
        add(DeclaredArithmetic(operands: operands, accumulation: accumulation, stateStorage: stateStorage,
                               chunkSize: c, splitTF32: true))
        add(DeclaredArithmetic(operands: .tf32, accumulation: accumulation, stateStorage: stateStorage, chunkSize: c))
        add(DeclaredArithmetic(operands: operands, accumulation: accumulation, stateStorage: .bfloat16, chunkSize: c))
        add(DeclaredArithmetic(operands: .binary16, accumulation: accumulation, stateStorage: stateStorage, chunkSize: c))
        add(DeclaredArithmetic(operands: .bfloat16, accumulation: accumulation, stateStorage: stateStorage, chunkSize: c))
        add(DeclaredArithmetic(operands: .bfloat16, accumulation: accumulation, stateStorage: .bfloat16, chunkSize: c))
        add(DeclaredArithmetic(operands: .binary16, accumulation: .binary16, stateStorage: .float32, chunkSize: c))
        return out.filter { (try? $0.mode()) != nil }
    }

    /// Every precision at least as coarse as `other`'s.
    func isAtLeastAsLoose(as other: DeclaredArithmetic) -> Bool {
        func u(_ s: StateStorage) -> Double {
            switch s {
            case .float32: return NumberFormat.binary32.unitRoundoff
            case .float16: return NumberFormat.binary16.unitRoundoff
            case .bfloat16: return NumberFormat.bfloat16.unitRoundoff
            }
        }
        return chunkSize >= other.chunkSize && (form == nil || form == other.form)
            && productUnitRoundoff >= other.productUnitRoundoff
            && accumulation.unitRoundoff >= other.accumulation.unitRoundoff
            && u(stateStorage) >= u(other.stateStorage)
    }

    /// The relative error one matrix-product operand contributes: its
    /// format's unit roundoff, or 2⁻²¹ (a TF32 small part's rounding) in 3xTF32.
    var productUnitRoundoff: Double { splitTF32 ? 0x1p-21 : operands.unitRoundoff }

    /// Unit roundoff of the stored state.
    var stateUnitRoundoff: Double {
        switch stateStorage {
        case .float32: return NumberFormat.binary32.unitRoundoff
        case .float16: return NumberFormat.binary16.unitRoundoff
        case .bfloat16: return NumberFormat.bfloat16.unitRoundoff
        }
    }
}

extension NumberFormat {
    /// The 16-bit format a stored state is held in (nil for a Float32 state).
    init?(stateStorage: StateStorage) {
        switch stateStorage {
        case .float32: return nil
        case .float16: self = .binary16
        case .bfloat16: self = .bfloat16
        }
    }
}
