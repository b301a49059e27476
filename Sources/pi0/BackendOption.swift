// Choosing the compute backend from the command line.
import ArgumentParser
import PI0
import PI0Tensor

enum BackendName: String, ExpressibleByArgument, CaseIterable {
    case cpu, reference
}

struct BackendOptions: ParsableArguments {
    @Option(help: "Compute backend: cpu (fast kernels) or reference (plain loops, slow; for checking).")
    var backend: BackendName = .cpu
    @Option(help: "Worker threads for the cpu backend (default: all cores, or PI0_NUM_THREADS).")
    var threads: Int?

    func make() throws -> ComputeBackend {
        switch backend {
        case .reference: return ReferenceBackend()
        case .cpu: return try Backends.cpu(threads: threads)
        }
    }
}
