// Wall-clock stage timings (vision, prefix, each denoise step).
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
