// Nothing non-finite leaves the engine: the outputs of each stage of sampleActions (the prefix
// embeddings, the last KV-cache layer, x after every denoise step) are scanned by the backend's
// `checkFinite` into status slots that come back with the actions in the call's one download
// (SamplingPlan.swift), and the first stage that held a NaN or ±inf is named in the error. The host
// scans below serve the runtime (un-normalised actions, the server's replies) (docs/SPEC.md §5).
import PI0Tensor

/// A NaN or ±inf appeared in the computation; `stage` names where it was first seen (e.g.
/// "prefix embeddings (vision tower, token embeddings)", "denoise step 3", "un-normalisation").
public struct NonFiniteError: Error, CustomStringConvertible, Equatable, Sendable {
    public let stage: String
    public let index: Int
    public let value: Float

    public init(stage: String, index: Int, value: Float) {
        self.stage = stage; self.index = index; self.value = value
    }

    public var description: String {
        "non-finite value \(value) at index \(index) produced by \(stage); refusing to return actions "
            + "(check the checkpoint's weights, pi0_dims.json and normalisation statistics)"
    }
}

public enum FiniteGuard {
    /// Index of the first NaN or ±inf in `count` floats, or nil. Allocation-free.
    @inline(__always)
    public static func firstNonFinite(_ p: UnsafePointer<Float>, count: Int) -> Int? {
        // Sum of x·0 is 0 for finite x and NaN as soon as one x is NaN or ±inf: one pass without
        // branches, then the exact index only on failure.
        var acc: Float = 0
        for i in 0..<count { acc += p[i] * 0 }
        if acc == 0 { return nil }
        for i in 0..<count where !p[i].isFinite { return i }
        return nil
    }

    /// Throws `NonFiniteError(stage:)` if any of the `count` floats at `p` is NaN or ±inf.
    public static func check(_ p: UnsafePointer<Float>, count: Int, stage: @autoclosure () -> String) throws {
        if let i = firstNonFinite(p, count: count) { throw NonFiniteError(stage: stage(), index: i, value: p[i]) }
    }

    public static func check(_ t: Tensor, stage: @autoclosure () -> String) throws {
        try check(UnsafePointer(t.data), count: t.count, stage: stage())
    }

    public static func check(_ values: [Float], stage: @autoclosure () -> String) throws {
        try values.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return }
            try check(base, count: b.count, stage: stage())
        }
    }
}
