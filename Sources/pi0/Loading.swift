// Progress while a model loads and while it runs (docs/CLI.md "Progress"): weight bytes read and packed
// with rate and ETA, then the inference stages (vision, prefix pass, denoise step k of n).
import Foundation
import PI0

enum Loading {
    /// Runs `body` (which builds a model) with a "loading weights" display fed by `Checkpoint.loadProgress`,
    /// then notes the load time. Returns the result and the seconds it took.
    static func run<T>(_ what: String, summary: Bool = true, _ body: (_ progress: @escaping (Int64, Int64) -> Void) throws -> T) throws -> (T, Double) {
        let display = Progress("loading \(what)", unit: .bytes)
        let t0 = Date()
        do {
            var total: Int64 = 0
            let r = try body { done, all in total = all; display.update(done: done, total: all) }
            display.update(done: total)   // the last tensor is packed
            let s = Date().timeIntervalSince(t0)
            display.finish(summary && s >= Progress.quietStart ? String(format: "loaded %@ in %.1f s", what, s) : nil)
            return (r, s)
        } catch {
            display.finish()
            throw error
        }
    }

    /// A display for one inference: `timings` reports each stage as it ends. It names the current stage and
    /// the elapsed time, without a percentage or ETA: the stages differ too much in cost (the prefix pass of a
    /// full-size model takes longer than all denoise steps together) for a stage count to predict anything.
    static func inference(_ label: String, steps: Int, timings: StageTimings) -> Progress {
        let display = Progress(label)
        var count: Int64 = 0
        display.update(done: 0, detail: "vision encoder")
        timings.onRecord = { name, _ in
            count += 1
            let next = count == 1 ? "prefix pass" : count - 2 < steps ? "denoise step \(count - 1)/\(steps)" : "done"
            display.update(done: 0, detail: next)
        }
        return display
    }
}
