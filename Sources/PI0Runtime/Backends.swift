// Backend construction for callers that do not want to know the backend types.
import PI0CPU
import PI0
import PI0Tensor

public enum Backends {
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
