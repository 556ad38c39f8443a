#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import MambaVariants

/// The chunked form on two threads (`KernelOptions.concurrentStateCarry`).
///
/// Chunk `c`'s outputs need only the state *before* it, `B_c`; the carry
/// `B_{c+1} = exp(ℓ_last)·B_c + φ(K_c)ᵀ·(decayed values)` needs nothing of the outputs.
/// A second thread runs the carries, each into the next of three state slots
/// (a copy of `B_c`, then the same product in place), while the calling thread
/// forms chunk `c`'s outputs from `B_c`'s slot. Every value is computed by the
/// same operations in the same order as the single-thread loop, so the result
/// is bit-identical (`ChunkedPipelineTests`). The carry thread may run two chunks
/// ahead: a slot is rewritten only after the outputs that read it are done.
enum ChunkedPipeline {
    /// State slots: `B_c` lives in slot `c mod slots`.
    static let slots = 3

    /// Whether to use the second thread: `options.concurrentStateCarry` if set,
    /// else two or more online cores, at least 4 chunks, state products of at
    /// least 2¹⁸ multiply-adds per chunk (the hand-over costs a few microseconds;
    /// a chunk's carry at dk = 64, C = 64 takes ~0.1 ms), and products that do not
    /// go to a multi-threaded OpenBLAS: two threads each calling a two-thread
    /// `sgemm` contend for its thread pool (measured: 2Mamba chunked Float32,
    /// N = 16384, 249 ms against 132 ms without the second thread). Pure
    /// binary16 products are MambaCheck's own (`halfGemm`).
    static func worthwhile(_ ctx: CoreContext, chunks: Int, chunk: Int, stateSize: Int) -> Bool {
        if let forced = ctx.options.concurrentStateCarry { return forced && chunks > 1 }
        return chunks >= 4 && stateSize * chunk >= 1 << 18 && sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2
            && (ctx.arith.pureHalf || BLASCore.threads == 1)
    }

    /// Runs every chunk; returns the final state `[S | z]` (scaled by `2^sigma` in pure float16),
    /// or nil, having done nothing, when no thread can be started (`initial` is then the caller's
    /// still; otherwise it is consumed).
    static func run(_ seq: SequenceData, _ ctx: CoreContext, plan: ChunkPlan, chunk: Int,
                    values: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>,
                    initial: UnsafeMutablePointer<Float>?) -> (state: UnsafeMutablePointer<Float>, sigma: Int)? {
        let size = ctx.internalFeatures(seq.dk)! * ctx.ldv(seq.dv)
        let slot = (0..<slots).map { _ in allocateFloats(size, fill: 0) }
        if let initial { slot[0].update(from: initial, count: size) }
        // Per chunk, written by the carry thread before it signals `ready`:
        // whether there is a state before the chunk, its slot and its scale.
        let has = UnsafeMutablePointer<Bool>.allocate(capacity: plan.count)
        let slotOf = UnsafeMutablePointer<Int>.allocate(capacity: plan.count)
        let sigmas = UnsafeMutablePointer<Int>.allocate(capacity: plan.count)
        defer { has.deallocate(); slotOf.deallocate(); sigmas.deallocate() }
        let ready = DispatchSemaphore(value: 0), free = DispatchSemaphore(value: slots - 1)
        var final = (index: 0, sigma: 0)
        let carryCtx = ctx.detached()
        let worker = Worker {
            let side = ChunkedForm.CarrySide(carryCtx, seq, chunk: chunk)
            var hasState = initial != nil, sigma = 0, index = 0
            for c in 0..<plan.count {
                if seq.decay != nil, plan.reset(c), hasState {
                    hasState = false
                    sigma = 0
                }
                (has[c], slotOf[c], sigmas[c]) = (hasState, index, sigma)
                ready.signal()
                free.wait()  // the outputs of chunk c + 1 − slots are done: their slot is free
                let next = (index + 1) % slots
                if hasState { slot[next].update(from: slot[index], count: size) }
                side.carry(plan, c, hasState: hasState, state: slot[next], sigma: &sigma, values: values)
                hasState = true
                index = next
            }
            final = (index, sigma)
        }
        guard worker.start() else {
            for s in slot { s.deallocate() }
            return nil
        }
        initial?.deallocate()
        let query = ChunkedForm.QuerySide(ctx, seq, chunk: chunk)
        for c in 0..<plan.count {
            ready.wait()
            query.outputs(plan, c, state: has[c] ? UnsafePointer(slot[slotOf[c]]) : nil, sigma: sigmas[c],
                          values: values, acc: acc)
            free.signal()
        }
        worker.join()
        for (i, s) in slot.enumerated() where i != final.index { s.deallocate() }
        return (slot[final.index], final.sigma)
    }
}

/// A body run on a thread of its own (not a shared pool: the caller blocks on
/// it, and a pool that is busy with the caller's own siblings might never run it).
final class Worker {
    private var thread = pthread_t()
    private let body: () -> Void
    private var started = false

    init(_ body: @escaping () -> Void) { self.body = body }

    /// Starts the thread; false when none can be created (the body has not run).
    func start() -> Bool {
        let unmanaged = Unmanaged.passRetained(self)
        let rc = pthread_create(&thread, nil, { raw in
            let worker = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
            worker.body()
            return nil
        }, unmanaged.toOpaque())
        if rc != 0 { unmanaged.release() }
        started = rc == 0
        return started
    }

    /// Waits for the body to finish.
    func join() {
        if started { pthread_join(thread, nil); started = false }
    }
}

extension CoreKernels {
    /// The threads one sequence of `p` runs on (`KernelOptions.concurrentStateCarry`):
    /// 2 for a chunked feature-map core whose state is carried on a second thread, else 1.
    public static func threads(_ p: CoreProblem, form: KernelForm, mode: PrecisionMode,
                               options: KernelOptions = .init()) -> Int {
        guard form == .chunked, p.spec.score != .exponential, let f = p.featureDim else { return 1 }
        let ctx = CoreContext(spec: p.spec, scale: p.scale, mode: mode, options: options)
        let chunk = Swift.max(1, Swift.min(options.chunkSize, Swift.max(p.length, 1)))
        let chunks = (p.length + chunk - 1) / chunk  // resets may add chunks; this counts the grid
        let internalF = ctx.internalFeatures(p.keyDim) ?? f
        return ChunkedPipeline.worthwhile(ctx, chunks: chunks, chunk: chunk, stateSize: internalF * ctx.ldv(p.valueDim)) ? 2 : 1
    }
}
