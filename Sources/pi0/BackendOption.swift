// Choosing the compute backend from the command line.
import ArgumentParser
import PI0
import PI0CUDA
import PI0Tensor

enum BackendName: String, ExpressibleByArgument, CaseIterable {
    case cpu, reference, cuda, auto
}

struct BackendOptions: ParsableArguments {
    @Option(help: "Compute backend: cpu (fast kernels), reference (plain loops, slow; for checking) cuda (NVIDIA GPU, loaded at run time) or auto (cuda when available, else cpu).")
    var backend: BackendName = .cpu
    @Option(help: "Worker threads for the cpu backend (default: all cores, or PI0_NUM_THREADS).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func make() throws -> ComputeBackend {
        switch backend {
        case .reference: return ReferenceBackend()
        case .cpu: return try Backends.cpu(threads: threads)
        case .cuda: return try CUDABackend.make()
        case .auto:
            do { return try CUDABackend.make() } catch {
                // One short line at info; the full reason (often long: which library, which driver) at debug.
                debugNote("note: CUDA unavailable: \(error)")
                note("note: no usable CUDA GPU; using the cpu backend" + (Console.shows(.debug) ? "" : " (--log-level debug says why)"))
                return try Backends.cpu(threads: threads)
            }
        }
    }
}

/// `--precision float32|bfloat16`, parsed once for every command.
func parsePrecision(_ p: String?, option: String = "--precision") throws -> Precision? {
    try p.map { v in
        guard let x = Precision(rawValue: v) else { throw ValidationError("\(option) must be float32 or bfloat16, got '\(v)'") }
        return x
    }
}
