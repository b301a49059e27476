// Optional real-time chunking fields of an openpi observation (docs/SERVER.md, docs/RTC.md). A request
// without them is answered exactly as before, so an unmodified openpi-client keeps working.
//   rtc_prev_chunk         [T_prev, action_dim] numbers: the previous chunk's unexecuted actions, in the
//                          robot's units as the server returned them (the server normalises them)
//   rtc_inference_delay    integer ≥ 0: control steps that pass while the model runs
//   rtc_execution_horizon  integer ≥ 0, optional: overrides the checkpoint's rtc_config
import MessagePack
import PI0Runtime

extension ObservationMapper {
    static let rtcKeys: Set<String> = ["rtc_prev_chunk", "rtc_inference_delay", "rtc_execution_horizon"]

    static func previousChunk(_ obs: NumpyValue) throws -> PreviousChunk? {
        guard let prev = obs["rtc_prev_chunk"] else {
            if let stray = ["rtc_inference_delay", "rtc_execution_horizon"].first(where: { obs[$0] != nil }) {
                throw ObservationError.badValue(key: stray, reason: "given without rtc_prev_chunk")
            }
            return nil
        }
        let values = try floats(prev, key: "rtc_prev_chunk")
        let steps: Int
        if let a = prev.ndarray {
            guard a.shape.count == 2, a.shape[0] >= 1 else {
                throw ObservationError.badValue(key: "rtc_prev_chunk", reason: "expected [steps, action_dim], got shape \(a.shape)")
            }
            steps = a.shape[0]
        } else if case .list(let rows) = prev, !rows.isEmpty {
            steps = rows.count
        } else {
            throw ObservationError.badValue(key: "rtc_prev_chunk", reason: "expected a 2-D array [steps, action_dim]")
        }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw ObservationError.badValue(key: "rtc_prev_chunk", reason: "non-finite value at index \(i)")
        }
        guard let delay = try integer(obs, "rtc_inference_delay") else {
            throw ObservationError.missingKey("rtc_inference_delay")
        }
        return PreviousChunk(actions: values, steps: steps, inferenceDelay: delay, executionHorizon: try integer(obs, "rtc_execution_horizon"))
    }

    static func integer(_ obs: NumpyValue, _ key: String) throws -> Int? {
        guard let v = obs[key] else { return nil }
        let f = try floats(v, key: key)
        guard f.count == 1, let x = f.first, x.isFinite, x == x.rounded(), x >= 0, x < 1e6 else {
            throw ObservationError.badValue(key: key, reason: "expected one non-negative integer")
        }
        return Int(x)
    }
}
