// `rtc_config` in a LeRobot config.json (LeRobot 0.6.1 `policies/rtc/configuration_rtc.py`):
// enabled, prefix_attention_schedule, max_guidance_weight, execution_horizon, debug, debug_maxlen.
extension RTCConfig {
    /// Parses the nested object; every problem names `rtc_config.<field>`.
    static func parse(_ r: inout JSONFields) throws -> RTCConfig {
        var c = RTCConfig()
        c.enabled = try r.bool("enabled") ?? c.enabled
        if let s = try r.string("prefix_attention_schedule") {
            guard let schedule = RTCSchedule(rawValue: s.uppercased()) else {
                throw PI0ConfigError.invalidValue(file: r.file, field: r.prefix + "prefix_attention_schedule",
                                                  reason: "'\(s)' is not one of \(RTCSchedule.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            c.schedule = schedule
        }
        if let g = try r.double("max_guidance_weight") {
            guard g > 0, g <= Double(Float.greatestFiniteMagnitude) else {
                throw PI0ConfigError.invalidValue(file: r.file, field: r.prefix + "max_guidance_weight", reason: "must be > 0, got \(g)")
            }
            c.maxGuidanceWeight = Float(g)
        }
        c.executionHorizon = try r.nonNegativeInt("execution_horizon") ?? c.executionHorizon
        _ = try r.bool("debug")                      // LeRobot's step tracker: no effect on the actions
        _ = try r.positiveInt("debug_maxlen")
        for key in r.remaining.sorted() {
            throw PI0ConfigError.unknownField(file: r.file, field: r.prefix + key)
        }
        return c
    }
}
