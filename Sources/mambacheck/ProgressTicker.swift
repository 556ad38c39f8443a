import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Elapsed-time progress for long steps that report no fraction (the
/// oracle and baselines of `compare`): after 2 s, one line on stderr,
/// rewritten twice a second — on a terminal only. Off a terminal (CI logs,
/// redirected output) it writes nothing, so logs and reports are unchanged.
final class ProgressTicker: @unchecked Sendable {
    private let label: String
    private let lock = NSLock()
    private var stage: String
    private var running = true
    private var shown = false
    private let start = Date()
    private var thread: Thread?

    init(label: String, stage: String) {
        self.label = label
        self.stage = stage
        guard isatty(2) != 0 else { return }
        let t = Thread { [weak self] in
            while true {
                Thread.sleep(forTimeInterval: 0.5)
                guard let self, self.tick() else { return }
            }
        }
        thread = t
        t.start()
    }

    /// Names the step now running.
    func set(stage: String) {
        lock.lock()
        self.stage = stage
        lock.unlock()
    }

    /// Writes the line (after 2 s); false once stopped.
    private func tick() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard running else { return false }
        let elapsed = Date().timeIntervalSince(start)
        if elapsed > 2 {
            writeStderr("\r\(label): \(stage)… \(Int(elapsed)) s\u{1B}[K")
            shown = true
        }
        return true
    }

    /// Stops and clears the line.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        running = false
        if shown { writeStderr("\r\u{1B}[K") }
        shown = false
    }
}
