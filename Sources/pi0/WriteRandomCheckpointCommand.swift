// `pi0 write-random-checkpoint DIR`: a full-size π0 or π0.5 checkpoint with real key names and shapes.
import ArgumentParser
import Foundation
import PI0

struct WriteRandomCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-random-checkpoint",
        abstract: "Write a full-size random-weight π0 or π0.5 checkpoint (real key names and shapes) for benchmarking.")

    @Argument(help: "Output folder.") var directory: String
    @Option(help: "pi0 or pi05.") var model: String = "pi0"
    @Option(help: "bfloat16 (~7 GB) or float32 (~14 GB).") var dtype: String = "bfloat16"
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Flag(help: "Print every tensor (name, shape) and the totals instead of writing anything.") var list = false

    func run() throws {
        guard let p = Precision(rawValue: dtype) else { throw ValidationError("--dtype must be bfloat16 or float32") }
        guard let kind = ModelKind(rawValue: model) else { throw ValidationError("--model must be pi0 or pi05, got '\(model)'") }
        let dims = ModelDims(vision: .so400m, vlm: .gemma2b, expert: .gemma300m)
        if list {
            let tensors = CheckpointLayout.tensors(dims: dims, model: kind)
            for t in tensors { print("\(t.name) \(t.shape)") }
            let params = tensors.reduce(0) { $0 + $1.count }
            note("\(kind.rawValue): \(tensors.count) tensors, \(params) parameters, \(params * (p == .bfloat16 ? 2 : 4)) bytes of \(p.rawValue) (nothing written)")
            return
        }
        let start = Date()
        var lastShown = -1
        try RandomCheckpoint.write(to: directory, dims: dims, model: kind, dtype: p, seed: seed) { done, total in
            let pct = done * 100 / max(total, 1)
            if pct != lastShown { lastShown = pct; FileHandle.standardError.write("\rwriting \(pct)%".data(using: .utf8)!) }
        }
        note("")
        note(String(format: "wrote %@ (%@ %@, random weights) in %.1f s", directory, kind.rawValue, p.rawValue, Date().timeIntervalSince(start)))
    }
}
