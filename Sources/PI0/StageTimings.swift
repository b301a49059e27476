// Wall-clock stage timings (vision, prefix, each denoise step) and the seeded noise source.
import Foundation

/// Collects named stage durations in seconds, in the order they happen.
public final class StageTimings: @unchecked Sendable {
    public private(set) var stages: [(name: String, seconds: Double)] = []
    /// Called after each stage is recorded (progress displays); runs on the inference thread.
    public var onRecord: ((_ name: String, _ seconds: Double) -> Void)?
    public init() { stages.reserveCapacity(Self.stepNames.count + 2) }
    public func record(_ name: String, _ seconds: Double) { stages.append((name, seconds)); onRecord?(name, seconds) }

    /// "denoise_step_k", made once (recording a step allocates nothing for the first 64 steps).
    static let stepNames = (0..<64).map { "denoise_step_\($0)" }
    static func stepName(_ k: Int) -> String { k < stepNames.count ? stepNames[k] : "denoise_step_\(k)" }
    public var total: Double { stages.reduce(0) { $0 + $1.seconds } }
    public func seconds(_ name: String) -> Double? { stages.first { $0.name == name }?.seconds }
}

struct StageClock {
    private var last = DispatchTime.now().uptimeNanoseconds
    init() {}
    /// Seconds since the previous lap (or creation).
    mutating func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        return Double(now - last) / 1e9
    }
}

/// Standard normal noise from a seed: SplitMix64 + Box–Muller. Deterministic across platforms; it does
/// not reproduce torch.normal's stream (pass `noise` explicitly for bit-comparisons with LeRobot).
public enum GaussianNoise {
    public static func sample(count: Int, seed: UInt64) -> [Float] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992.0 }   // (0, 1)
        var out = [Float](); out.reserveCapacity(count)
        while out.count < count {
            let u1 = uniform(), u2 = uniform()
            let r = (-2 * Foundation.log(u1)).squareRoot()
            out.append(Float(r * Foundation.cos(2 * .pi * u2)))
            if out.count < count { out.append(Float(r * Foundation.sin(2 * .pi * u2))) }
        }
        return out
    }
}
