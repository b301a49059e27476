// Choosing the compute backend from the command line.
import ArgumentParser
import PI0
import PI0Runtime
import PI0Tensor

extension BackendChoice: ExpressibleByArgument {}
extension GraphMode: ExpressibleByArgument {}

struct BackendOptions: ParsableArguments {
    @Option(help: "Compute backend: cpu (fast kernels), reference (plain loops, slow; for checking) cuda (NVIDIA GPU, loaded at run time) or auto (cuda when available, else cpu).")
    var backend: BackendChoice = .cpu
    @Option(help: "Worker threads for the cpu backend (default: all cores, or PI0_NUM_THREADS).")
    var threads: Int?
    @Option(help: "How samples run: none (every operation issued per call), full (the whole sample captured once per shape and replayed) or loop (the prefix eager, the denoise loop captured; one graph for every prompt length). full and loop need the cuda backend.")
    var graph: GraphMode = .none

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if graph != .none && (backend == .cpu || backend == .reference) {
            throw ValidationError("--graph \(graph.rawValue) needs a backend that captures work (--backend cuda); the \(backend.rawValue) backend runs --graph none")
        }
    }

    /// The backend, checked against --graph before anything is loaded.
    func make() throws -> ComputeBackend {
        let made = try Backends.make(backend, threads: threads) { reason in
            // One short line at info; the full reason (often long: which library, which driver) at debug.
            debugNote("note: CUDA unavailable: \(reason)")
            note("note: no usable CUDA GPU; using the cpu backend" + (Console.shows(.debug) ? "" : " (--log-level debug says why)"))
        }
        if graph != .none && !(made is GraphCapturing) {
            throw ValidationError("--graph \(graph.rawValue) needs a backend that captures work; \(made.name) does not (use --graph none)")
        }
        return made
    }
}

/// `--precision float32|bfloat16`, parsed once for every command.
func parsePrecision(_ p: String?, option: String = "--precision") throws -> Precision? {
    try p.map { v in
        guard let x = Precision(rawValue: v) else { throw ValidationError("\(option) must be float32 or bfloat16, got '\(v)'") }
        return x
    }
}
