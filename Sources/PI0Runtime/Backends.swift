// Choosing and constructing the compute backend: the one place that knows the backend types
// (docs/ARCHITECTURE.md, "Layers"). The model only sees a `ComputeBackend`; the server and the command
// line name a `BackendChoice`.
import PI0CPU
import PI0CUDA
import PI0
import PI0Tensor

/// The backends a user can ask for.
public enum BackendChoice: String, Sendable, CaseIterable {
    /// The fast CPU kernels.
    case cpu
    /// Plain loops (slow; the yardstick for checking).
    case reference
    /// An NVIDIA GPU through the driver API, loaded at run time.
    case cuda
    /// cuda when a usable GPU is present, else cpu.
    case auto
}

public enum Backends {
    /// The backend for `choice`. For `.auto`, `fallback` is called with the reason when CUDA is
    /// unavailable and the cpu backend is used instead.
    public static func make(_ choice: BackendChoice, threads: Int? = nil,
                            fallback: (_ reason: String) -> Void = { _ in }) throws -> ComputeBackend {
        switch choice {
        case .cpu: return try cpu(threads: threads)
        case .reference: return ReferenceBackend()
        case .cuda: return try CUDABackend.make()
        case .auto:
            do { return try CUDABackend.make() } catch {
                fallback("\(error)")
                return try cpu(threads: threads)
            }
        }
    }

    /// The fast CPU backend (kernels chosen from the CPU's features at run time).
    public static func cpu(threads: Int? = nil) throws -> ComputeBackend {
        CPUBackend(threads: threads ?? 0)
    }

    /// The measured float32 FMA peak of this machine for the backend's thread count (GFLOP/s), if known.
    public static func measuredPeakGFLOPs(backend: ComputeBackend) -> Double? {
        guard let cpu = backend as? CPUBackend, let perCore = FMAPeak.measure() else { return nil }
        return perCore * Double(cpu.threads)
    }

    /// Worker threads a backend uses.
    public static func threadCount(_ backend: ComputeBackend) -> Int { (backend as? CPUBackend)?.threads ?? 1 }
}
