// Real-time chunking (RTC) as LeRobot 0.6.1 computes it (`policies/rtc/modeling_rtc.py`,
// `RTCProcessor.denoise_step` and `get_prefix_weights`; docs/RTC.md has the derivation and the line
// references). While a robot executes the previous chunk, the next one is sampled with every Euler
// velocity pulled towards the previous chunk's unexecuted actions:
//
//     x1  = x − t·v                           (LeRobot's sign; its docstring says +)
//     err = (Y − x1) · W[row]                 Y = previous chunk zero-padded to [B, H, A]
//     v'  = v − g(τ)·err,  τ = 1 − t          g = min(max_g, ((1−τ)² + τ²)/(τ(1−τ))), τ = 0 → max_g
//
// LeRobot 0.6.1 evaluates the correction with `torch.autograd.grad(x1, x)` after the model ran on an
// `x` that did not yet require grad, so the vector-Jacobian product is the identity: the correction is
// `err` itself, with no Jacobian term through the network (docs/RTC.md §3). We compute that directly,
// in float32 and in LeRobot's operation order, with no allocation in the loop.
import Foundation

/// `RTCAttentionSchedule` (LeRobot 0.6.1 `configs/types.py`): how the prefix rows are weighted.
public enum RTCSchedule: String, Sendable, CaseIterable {
    case zeros = "ZEROS", ones = "ONES", linear = "LINEAR", exp = "EXP"
}

/// A checkpoint's `rtc_config` (LeRobot's `RTCConfig`), defaults as LeRobot's dataclass.
public struct RTCConfig: Sendable, Equatable {
    public var enabled = true
    public var schedule: RTCSchedule = .linear
    public var maxGuidanceWeight: Float = 10
    public var executionHorizon = 10

    public init(enabled: Bool = true, schedule: RTCSchedule = .linear, maxGuidanceWeight: Float = 10, executionHorizon: Int = 10) {
        self.enabled = enabled; self.schedule = schedule
        self.maxGuidanceWeight = maxGuidanceWeight; self.executionHorizon = executionHorizon
    }
}

/// What one request asks of RTC, per batch row: the previous chunk's unexecuted actions in the model's
/// normalised action space, [T_prev, A_prev] with T_prev ≤ chunk and A_prev ≤ max_action_dim, the
/// inference delay in control steps and (optionally) the execution horizon, which overrides the
/// config's. A row without a request (nil) is sampled without guidance (batched serving mixes both).
public struct RTCRequest: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public var previousChunk: [Float]
        public var previousSteps: Int, previousWidth: Int
        public var inferenceDelay: Int
        public var executionHorizon: Int?

        public init(previousChunk: [Float], previousSteps: Int, previousWidth: Int, inferenceDelay: Int, executionHorizon: Int? = nil) {
            self.previousChunk = previousChunk; self.previousSteps = previousSteps; self.previousWidth = previousWidth
            self.inferenceDelay = inferenceDelay; self.executionHorizon = executionHorizon
        }
    }

    public var rows: [Row?]

    public init(rows: [Row?]) { self.rows = rows }

    /// LeRobot's form: one [B, T_prev, A_prev] tensor and one delay and horizon for every row.
    public init(previousChunk: [Float], batch: Int, previousSteps: Int, previousWidth: Int,
                inferenceDelay: Int, executionHorizon: Int? = nil) {
        let n = previousSteps * previousWidth
        rows = (0..<max(batch, 0)).map { b in
            let slice = previousChunk.count == batch * n ? Array(previousChunk[(b * n)..<((b + 1) * n)]) : previousChunk
            return Row(previousChunk: slice, previousSteps: previousSteps, previousWidth: previousWidth,
                       inferenceDelay: inferenceDelay, executionHorizon: executionHorizon)
        }
    }
}

public enum RealTimeChunking {
    /// `get_prefix_weights(start, end, total)` with `start = min(start, end)`: one weight per chunk row.
    public static func prefixWeights(schedule: RTCSchedule, delay: Int, horizon end: Int, total: Int) -> [Float] {
        let start = min(delay, end)
        var w = [Float](repeating: 0, count: total)
        switch schedule {
        case .zeros:
            for i in 0..<min(start, total) { w[i] = 1 }
        case .ones:
            for i in 0..<min(max(end, 0), total) { w[i] = 1 }
        case .linear, .exp:
            // [ones(start), ramp, zeros(total − end)]; the ramp is linspace(1, 0, n + 2)[1:−1] over
            // rows start ..< min(end, total), and EXP maps it to r·expm1(r)/(e − 1).
            let n = min(end, total) - start
            var ramp = n > 0 ? linspace(1, 0, n + 2)[1...n].map { $0 } : []
            if schedule == .exp {
                let eMinus1 = Float(M_E - 1)
                ramp = ramp.map { r in r * (Foundation.expm1(r) / eMinus1) }
            }
            let lead = min(start, total)
            for i in 0..<lead { w[i] = 1 }
            for (k, r) in ramp.enumerated() where lead + k < total { w[lead + k] = r }
        }
        return w
    }

    /// torch.linspace(start, end, steps) in float32 (the first half counted up from `start`, the
    /// second half down from `end`, as ATen's CPU kernel does for its scalar path).
    static func linspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        if steps == 1 { return [start] }
        let step = (end - start) / Float(steps - 1)
        let halfway = steps / 2
        return (0..<steps).map { i in i < halfway ? start + step * Float(i) : end - step * Float(steps - i - 1) }
    }

    /// The guidance weight g(τ) in float32, LeRobot's operations in order (`nan_to_num` with
    /// posinf = max_g, then `minimum` with max_g).
    public static func guidanceWeight(tau: Float, maxGuidanceWeight maxG: Float) -> Float {
        let oneMinus = 1 - tau
        let sq = oneMinus * oneMinus
        let invR2 = (sq + tau * tau) / sq
        var c = (1 - tau) / tau
        c = nanToNum(c, posinf: maxG)
        let g = nanToNum(c * invR2, posinf: maxG)
        return min(g, maxG)
    }

    /// torch.nan_to_num: NaN → 0, +inf → posinf, −inf → the lowest finite float.
    static func nanToNum(_ x: Float, posinf: Float) -> Float {
        if x.isNaN { return 0 }
        if x == .infinity { return posinf }
        if x == -.infinity { return -Float.greatestFiniteMagnitude }
        return x
    }
}

public enum RTCError: Error, CustomStringConvertible, Equatable {
    case invalid(field: String, reason: String)

    public var description: String {
        switch self {
        case let .invalid(f, r): return "real-time chunking: '\(f)': \(r)"
        }
    }
}

/// RTC prepared for one `sampleActions` call: the padded targets Y [B, H, A] and the row weights
/// [B, H], built once; `guide` then runs per Euler step without allocating.
public struct RTCGuide: Sendable {
    public let config: RTCConfig
    public let target: [Float]         // [B, H, A]
    public let weights: [Float]        // [B, H]; all zero for a row without a request (v unchanged)
    public let horizons: [Int]         // per row, the execution horizon after LeRobot's clip to T_prev
    let batch: Int, chunk: Int, width: Int

    /// Checks the request against the model's chunk and action width; every error names the field.
    public init(request: RTCRequest, config: RTCConfig, batch: Int, chunk: Int, actionDim: Int) throws {
        func bad(_ f: String, _ why: String) -> RTCError { .invalid(field: f, reason: why) }
        guard config.maxGuidanceWeight.isFinite, config.maxGuidanceWeight > 0 else {
            throw bad("max_guidance_weight", "must be a positive finite number, got \(config.maxGuidanceWeight)")
        }
        guard request.rows.count == batch else {
            throw bad("rtc_prev_chunk", "batch \(request.rows.count) but the observation batch is \(batch)")
        }
        var y = [Float](repeating: 0, count: batch * chunk * actionDim)
        var w = [Float](repeating: 0, count: batch * chunk)
        var horizons = [Int](repeating: 0, count: batch)
        for (b, row) in request.rows.enumerated() {
            guard let r = row else { continue }
            guard r.previousSteps >= 1, r.previousSteps <= chunk else {
                throw bad("rtc_prev_chunk", "\(r.previousSteps) steps; expected 1…\(chunk) (the chunk size)")
            }
            guard r.previousWidth >= 1, r.previousWidth <= actionDim else {
                throw bad("rtc_prev_chunk", "\(r.previousWidth) action dims; expected 1…\(actionDim) (max_action_dim)")
            }
            guard r.previousChunk.count == r.previousSteps * r.previousWidth else {
                throw bad("rtc_prev_chunk", "\(r.previousChunk.count) values in row \(b) for shape [\(r.previousSteps), \(r.previousWidth)]")
            }
            if let i = r.previousChunk.firstIndex(where: { !$0.isFinite }) {
                throw bad("rtc_prev_chunk", "non-finite value (NaN or Inf) in row \(b) at index \(i)")
            }
            guard r.inferenceDelay >= 0, r.inferenceDelay < chunk else {
                throw bad("rtc_inference_delay", "must be in 0…\(chunk - 1) (less than the chunk size), got \(r.inferenceDelay)")
            }
            let requested = r.executionHorizon ?? config.executionHorizon
            guard requested >= 0 else { throw bad("rtc_execution_horizon", "must be ≥ 0, got \(requested)") }
            horizons[b] = min(requested, r.previousSteps)          // LeRobot clips the horizon to T_prev
            for t in 0..<r.previousSteps {
                for a in 0..<r.previousWidth {
                    y[(b * chunk + t) * actionDim + a] = r.previousChunk[t * r.previousWidth + a]
                }
            }
            let rowWeights = RealTimeChunking.prefixWeights(schedule: config.schedule, delay: r.inferenceDelay,
                                                            horizon: horizons[b], total: chunk)
            w.replaceSubrange((b * chunk)..<((b + 1) * chunk), with: rowWeights)
        }
        self.config = config
        self.batch = batch; self.chunk = chunk; self.width = actionDim
        target = y; weights = w; self.horizons = horizons
    }

    /// A guide with given row weights [H] for every row (tests use LeRobot's stored weights for
    /// bit-exact step checks).
    init(config: RTCConfig, target: [Float], weights: [Float], horizon: Int, batch: Int, chunk: Int, actionDim: Int) {
        self.config = config; self.target = target
        self.weights = (0..<batch).flatMap { _ in weights }; self.horizons = [Int](repeating: horizon, count: batch)
        self.batch = batch; self.chunk = chunk; self.width = actionDim
    }

    /// Replaces the model's velocity v [B, H, A] at x [B, H, A] and time t (LeRobot's Python double
    /// 1 + k·dt) by the guided velocity. A row of zero weights is left exactly as it was.
    public func guide(x: UnsafePointer<Float>, velocity v: UnsafeMutablePointer<Float>, time t: Double) {
        let tf = Float(t)
        let g = RealTimeChunking.guidanceWeight(tau: Float(1 - t), maxGuidanceWeight: config.maxGuidanceWeight)
        target.withUnsafeBufferPointer { y in
            weights.withUnsafeBufferPointer { w in
                for b in 0..<batch {
                    for row in 0..<chunk {
                        let base = (b * chunk + row) * width, wr = w[b * chunk + row]
                        if wr == 0 { continue }          // (Y − x1)·0 = 0 and v − g·0 = v: skip exactly
                        for i in base..<(base + width) {
                            let x1 = x[i] - tf * v[i]
                            let err = (y[i] - x1) * wr
                            v[i] = v[i] - g * err
                        }
                    }
                }
            }
        }
    }
}
