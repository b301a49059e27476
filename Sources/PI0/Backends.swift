// Backend construction for callers that do not want to know the backend types.
import PI0CPU
import PI0Tensor

public enum Backends {
    /// The fast CPU backend (kernels chosen from the CPU's features at run time).
    public static func cpu(threads: Int? = nil) throws -> ComputeBackend {
        // Until the packed-kernel backend lands, the reference backend does the work.
        ReferenceBackend()
    }

    /// The measured float32 FMA peak of the machine for the backend's thread count, if known.
    public static func measuredPeakGFLOPs(backend: ComputeBackend) -> Double? { nil }

    /// Worker threads a backend uses.
    public static func threadCount(_ backend: ComputeBackend) -> Int { 1 }
}
