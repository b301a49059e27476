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

    func make() throws -> ComputeBackend {
        switch backend {
        case .reference: return ReferenceBackend()
        case .cpu: return try Backends.cpu(threads: threads)
        case .cuda: return try CUDABackend.make()
        case .auto:
            do { return try CUDABackend.make() } catch {
                note("note: \(error); using the cpu backend")
                return try Backends.cpu(threads: threads)
            }
        }
    }
}
