// `pi0 write-random-checkpoint DIR`: a full-size π0 checkpoint with real key names and shapes.
import ArgumentParser
import Foundation
import PI0

struct WriteRandomCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-random-checkpoint",
        abstract: "Write a full-size random-weight π0 checkpoint (real key names and shapes) for benchmarking.")

    @Argument(help: "Output folder.") var directory: String
    @Option(help: "bfloat16 (~7 GB) or float32 (~14 GB).") var dtype: String = "bfloat16"
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func run() throws {
        guard let p = Precision(rawValue: dtype) else { throw ValidationError("--dtype must be bfloat16 or float32") }
        let dims = ModelDims(vision: .so400m, vlm: .gemma2b, expert: .gemma300m)
        let start = Date()
        var lastShown = -1
        try RandomCheckpoint.write(to: directory, dims: dims, dtype: p, seed: seed) { done, total in
            let pct = done * 100 / max(total, 1)
            if pct != lastShown { lastShown = pct; FileHandle.standardError.write("\rwriting \(pct)%".data(using: .utf8)!) }
        }
        note("")
        note(String(format: "wrote %@ (%@, random weights) in %.1f s", directory, p.rawValue, Date().timeIntervalSince(start)))
    }
}
