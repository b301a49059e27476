// Real-time chunking against LeRobot 0.6.1's golden cases (Tests/PI0Tests/Fixtures/rtc, copied from
// the shared RTC fixtures; their README documents every tensor): prefix weights, guidance weights,
// each guided Euler step bit for bit from the stored tensors, and the whole guided sampling through
// the model at the fixtures' tolerances.
import Foundation
import XCTest
@testable import PI0
import PI0CPU
import PI0Tensor
import SafeTensors

final class RealTimeChunkingTests: XCTestCase {
    static let cases = ["rtc_linear", "rtc_exp_short", "rtc_bf16"]
    static func dir(_ name: String) -> String { Fixtures.path("rtc/" + name) }

    struct Effective { let weights: [Float]; let guidance: [Float]; let times: [Double]; let horizon: Int; let start: Int }

    func effective(_ name: String) throws -> Effective {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.dir(name) + "/rtc.json"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let e = try XCTUnwrap(json["effective"] as? [String: Any])
        func floats(_ k: String) throws -> [Float] { try XCTUnwrap(e[k] as? [NSNumber]).map { Float($0.doubleValue) } }
        return Effective(weights: try floats("prefix_weights"), guidance: try floats("guidance_weights"),
                         times: try XCTUnwrap(e["times"] as? [NSNumber]).map(\.doubleValue),
                         horizon: try XCTUnwrap(e["execution_horizon"] as? Int), start: try XCTUnwrap(e["start"] as? Int))
    }

    func load(_ name: String) throws -> (Checkpoint, PI0Inputs, SafeTensorsFile) {
        let ckpt = try Checkpoint(directory: Self.dir(name))
        let inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: Self.dir(name) + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
        return (ckpt, inputs, try SafeTensorsFile(path: Self.dir(name) + "/outputs.safetensors"))
    }

    /// Units in the last place between two floats (0 when equal).
    func ulps(_ a: Float, _ b: Float) -> Int { a == b ? 0 : abs(Int(a.bitPattern) - Int(b.bitPattern)) }

    func testConfigAndRequestAreReadAsLeRobotReadsThem() throws {
        let expected: [String: (RTCSchedule, Int, Int, Int)] = [
            "rtc_linear": (.linear, 10, 3, 50), "rtc_exp_short": (.exp, 8, 5, 30), "rtc_bf16": (.ones, 12, 2, 45)]
        for name in Self.cases {
            let (ckpt, inputs, _) = try load(name)
            let (schedule, horizon, delay, steps) = try XCTUnwrap(expected[name])
            XCTAssertEqual(ckpt.config.rtc, RTCConfig(enabled: true, schedule: schedule, maxGuidanceWeight: 10, executionHorizon: horizon), name)
            let rows = try XCTUnwrap(inputs.rtc, name).rows
            XCTAssertEqual(rows.count, 1, name)
            let r = try XCTUnwrap(rows[0], name)
            XCTAssertEqual(r.inferenceDelay, delay, name)
            XCTAssertEqual(r.executionHorizon, horizon, name)
            XCTAssertEqual(r.previousSteps, steps, name)
        }
    }

    func testPrefixWeightsMatchLeRobot() throws {
        for name in Self.cases {
            let (ckpt, inputs, outputs) = try load(name)
            let e = try effective(name)
            let guide = try RTCGuide(request: try XCTUnwrap(inputs.rtc), config: try XCTUnwrap(ckpt.config.rtc),
                                     batch: inputs.batch, chunk: ckpt.config.chunkSize, actionDim: ckpt.config.maxActionDim)
            XCTAssertEqual(guide.horizons, [e.horizon], name)
            let stored = try outputs.floats("rtc_prefix_weights")
            XCTAssertEqual(stored, e.weights, name)
            XCTAssertEqual(guide.weights.count, stored.count, name)
            // LeRobot's EXP ramp goes through a vectorised expm1; the fixtures' README measured 2 ulps.
            for (i, (ours, theirs)) in zip(guide.weights, stored).enumerated() {
                XCTAssertLessThanOrEqual(ulps(ours, theirs), 2, "\(name) row \(i): \(ours) vs \(theirs)")
            }
            XCTAssertEqual(guide.target, try outputs.floats("rtc_prev_chunk_padded"), "\(name): padded previous chunk")
        }
    }

    func testPrefixWeightSchedules() {
        let w = RealTimeChunking.prefixWeights
        XCTAssertEqual(w(.zeros, 3, 6, 8), [1, 1, 1, 0, 0, 0, 0, 0])
        XCTAssertEqual(w(.ones, 3, 6, 8), [1, 1, 1, 1, 1, 1, 0, 0])
        XCTAssertEqual(w(.linear, 2, 5, 8), [1, 1, 0.75, 0.5, 0.25, 0, 0, 0])
        // The delay is clipped to the horizon; then every schedule gives leading ones and zeros.
        for s in RTCSchedule.allCases { XCTAssertEqual(w(s, 7, 4, 8), [1, 1, 1, 1, 0, 0, 0, 0], "\(s)") }
        XCTAssertEqual(w(.zeros, 0, 4, 6), [0, 0, 0, 0, 0, 0], "delay 0 with ZEROS: RTC is a no-op")
        let exp = w(.exp, 0, 3, 5)
        let r: [Float] = [0.75, 0.5, 0.25]
        for (i, x) in r.enumerated() { XCTAssertEqual(exp[i], x * (Foundation.expm1(x) / Float(M_E - 1)), accuracy: 1e-7) }
        XCTAssertEqual(Array(exp[3...]), [0, 0])
    }

    func testGuidanceWeightsMatchLeRobotBitForBit() throws {
        for name in Self.cases {
            let e = try effective(name)
            let (_, _, outputs) = try load(name)
            let stored = try outputs.floats("rtc_guidance_weights")
            XCTAssertEqual(stored, e.guidance)
            for (i, t) in e.times.enumerated() {
                // (Foundation's JSON reader is not correctly rounded in the last bit, hence the accuracy.)
                let ours = FlowMatching.timeF64(step: i, steps: e.times.count)
                XCTAssertEqual(t, ours, accuracy: 1e-15, "\(name) step \(i) time")
                XCTAssertEqual(RealTimeChunking.guidanceWeight(tau: Float(1 - ours), maxGuidanceWeight: 10).bitPattern,
                               stored[i].bitPattern, "\(name) step \(i)")
            }
        }
        // Fewer steps and a smaller clamp (the README's N = 5, max_g = 3 row).
        let g = (0..<5).map { RealTimeChunking.guidanceWeight(tau: Float(1 - FlowMatching.timeF64(step: $0, steps: 5)), maxGuidanceWeight: 3) }
        XCTAssertEqual(g, [3, 3, 2.1666667461395264, 2.1666667461395264, 3])
    }

    /// From the stored x_t_i and v_t_i, each guided velocity and the next x are reproduced bit for bit.
    func testEachGuidedStepIsBitExactFromTheStoredTensors() throws {
        for name in Self.cases {
            let (ckpt, inputs, outputs) = try load(name)
            let c = ckpt.config, b = inputs.batch
            let full = try RTCGuide(request: try XCTUnwrap(inputs.rtc), config: try XCTUnwrap(c.rtc), batch: b,
                                    chunk: c.chunkSize, actionDim: c.maxActionDim)
            let guide = RTCGuide(config: full.config, target: full.target, weights: try outputs.floats("rtc_prefix_weights"),
                                 horizon: full.horizons[0], batch: b, chunk: c.chunkSize, actionDim: c.maxActionDim)
            let steps = try outputs.info("rtc_timesteps").shape[0]
            for i in 0..<steps {
                var x = try outputs.floats("x_t_\(i)")
                var v = try outputs.floats("v_t_\(i)")
                v.withUnsafeMutableBufferPointer { vp in
                    guide.guide(x: x, velocity: vp.baseAddress!, time: FlowMatching.timeF64(step: i, steps: steps))
                }
                XCTAssertEqual(v, try outputs.floats("v_t_guided_\(i)"), "\(name) step \(i): guided velocity")
                x.withUnsafeMutableBufferPointer { xp in
                    FlowMatching.eulerUpdate(xp.baseAddress!, velocity: v, count: v.count, steps: steps)
                }
                let next = i + 1 < steps ? try outputs.floats("x_t_\(i + 1)") : try outputs.floats("actions")
                XCTAssertEqual(x, next, "\(name) step \(i): x after the Euler update")
            }
        }
    }

    /// The whole guided sampling through the model: actions and every per-step tensor at the
    /// fixtures' tolerances, on the reference and the fast CPU backend.
    func testGuidedSamplingMatchesLeRobot() throws {
        for backend in [ReferenceBackend() as ComputeBackend, CPUBackend(threads: 2)] {
            for name in Self.cases {
                let (ckpt, inputs, outputs) = try load(name)
                let model = try PI0Model(checkpoint: ckpt, backend: backend)
                let tol = ckpt.config.precision == .bfloat16 ? Tolerance(minPCC: 0.999, maxRelL2: 1e-2) : Tolerance(minPCC: 0.99999, maxRelL2: 2e-5)
                let trace = IntermediateRecorder()
                let actions = try model.sampleActions(inputs, trace: trace)
                let r = ParityResult(name: "actions", actual: actions.array, expected: try outputs.floats("actions"))
                XCTAssertTrue(r.passes(minPCC: tol.minPCC, maxRelL2: tol.maxRelL2), "\(name) \(type(of: backend)): \(r)")
                for k in 0..<ckpt.config.numInferenceSteps {
                    for key in ["x_t_\(k)", "v_t_\(k)", "v_t_guided_\(k)"] {
                        guard case .float32(let ours)? = trace[key]?.values else { XCTFail("\(name): \(key) not recorded"); continue }
                        let p = ParityResult(name: key, actual: ours, expected: try outputs.floats(key))
                        XCTAssertTrue(p.passes(minPCC: tol.minPCC, maxRelL2: tol.maxRelL2), "\(name): \(p)")
                    }
                }
                // Guidance really changed the result: without the request we get LeRobot's RTC-off actions.
                var plain = inputs; plain.rtc = nil
                let off = ParityResult(name: "actions_no_rtc", actual: try model.sampleActions(plain).array,
                                       expected: try outputs.floats("actions_no_rtc"))
                XCTAssertTrue(off.passes(minPCC: tol.minPCC, maxRelL2: tol.maxRelL2), "\(name): \(off)")
                XCTAssertGreaterThan(ParityResult(name: "rtc effect", actual: actions.array, expected: try outputs.floats("actions_no_rtc")).relativeL2, 0.1)
            }
        }
    }

    /// More cases made with tools/reference/make_rtc_case.py (LeRobot 0.6.1's own sample_actions with
    /// rtc_config): ZEROS with batch 2, a delay past the horizon with a smaller guidance clamp and a
    /// narrower previous chunk, and π0.5 (LINEAR in float32, EXP in bf16).
    func testExtraCasesMatchLeRobot() throws {
        let root = Fixtures.path("rtc_extra")
        let names = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 2)
        for name in names {
            let dir = root + "/" + name
            let ckpt = try Checkpoint(directory: dir)
            let model = try PI0Model(checkpoint: ckpt, backend: CPUBackend(threads: 2))
            let inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: dir + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
            let outputs = try SafeTensorsFile(path: dir + "/outputs.safetensors")
            let tol = ckpt.config.precision == .bfloat16 ? Tolerance(minPCC: 0.999, maxRelL2: 1e-2) : Tolerance(minPCC: 0.99999, maxRelL2: 2e-5)
            XCTAssertNotNil(inputs.rtc, name)
            for (key, run) in [("actions", inputs), ("actions_no_rtc", { var p = inputs; p.rtc = nil; return p }())] {
                let r = ParityResult(name: key, actual: try model.sampleActions(run).array, expected: try outputs.floats(key))
                XCTAssertTrue(r.passes(minPCC: tol.minPCC, maxRelL2: tol.maxRelL2), "\(name): \(r)")
            }
        }
    }

    func testBadRequestsNameTheField() throws {
        let (ckpt, inputs, _) = try load("rtc_linear")
        let model = try PI0Model(checkpoint: ckpt, backend: ReferenceBackend())
        let good = try XCTUnwrap(XCTUnwrap(inputs.rtc).rows[0])
        func expectError(_ change: (inout RTCRequest.Row) -> Void, rows: Int = 1, field: String, file: StaticString = #filePath, line: UInt = #line) {
            var req = good; change(&req)
            var bad = inputs; bad.rtc = RTCRequest(rows: [RTCRequest.Row?](repeating: req, count: rows))
            XCTAssertThrowsError(try model.sampleActions(bad, steps: 1), file: file, line: line) { error in
                guard case .invalid(let f, _)? = error as? RTCError else { return XCTFail("\(error)", file: file, line: line) }
                XCTAssertEqual(f, field, file: file, line: line)
            }
        }
        expectError({ $0.inferenceDelay = -1 }, field: "rtc_inference_delay")
        expectError({ $0.inferenceDelay = 50 }, field: "rtc_inference_delay")
        expectError({ $0.executionHorizon = -2 }, field: "rtc_execution_horizon")
        expectError({ $0.previousChunk[17] = .nan }, field: "rtc_prev_chunk")
        expectError({ $0.previousChunk[3] = -.infinity }, field: "rtc_prev_chunk")
        expectError({ $0.previousWidth = 33; $0.previousChunk = [Float](repeating: 0, count: 50 * 33) }, field: "rtc_prev_chunk")
        expectError({ $0.previousSteps = 51; $0.previousChunk = [Float](repeating: 0, count: 51 * 32) }, field: "rtc_prev_chunk")
        expectError({ _ in }, rows: 2, field: "rtc_prev_chunk")
        expectError({ $0.previousChunk.removeLast() }, field: "rtc_prev_chunk")
        var badConfig = RTCConfig(); badConfig.maxGuidanceWeight = 0
        XCTAssertThrowsError(try model.sampleActions(inputs, steps: 1, rtcConfig: badConfig))
    }

    /// Rows of one batch can carry different requests, or none: each row equals its own run alone.
    func testRowsWithAndWithoutRequestsInOneBatch() throws {
        let (ckpt, inputs, outputs) = try load("rtc_linear")
        let model = try PI0Model(checkpoint: ckpt, backend: CPUBackend(threads: 2))
        var two = inputs
        two.batch = 2
        two.images = inputs.images.map { $0 + $0 }; two.imageMasks = inputs.imageMasks.map { $0 + $0 }
        two.langTokens = inputs.langTokens + inputs.langTokens; two.langMasks = inputs.langMasks + inputs.langMasks
        two.state = inputs.state + inputs.state; two.noise = inputs.noise.map { $0 + $0 }
        two.rtc = RTCRequest(rows: [nil, inputs.rtc!.rows[0]])
        let both = try model.sampleActions(two).array
        let n = both.count / 2
        let plain = ParityResult(name: "row 0 (no request)", actual: Array(both[..<n]), expected: try outputs.floats("actions_no_rtc"))
        let guided = ParityResult(name: "row 1 (guided)", actual: Array(both[n...]), expected: try outputs.floats("actions"))
        XCTAssertTrue(plain.passes(minPCC: 0.99999, maxRelL2: 2e-5), "\(plain)")
        XCTAssertTrue(guided.passes(minPCC: 0.99999, maxRelL2: 2e-5), "\(guided)")
    }

    func testRTCConfigParsing() throws {
        func parse(_ rtc: String) throws -> PI0Config {
            try PI0Config.parse(data: Data("{\"type\": \"pi0\", \"rtc_config\": \(rtc)}".utf8), file: "config.json")
        }
        XCTAssertNil(try parse("null").rtc)
        XCTAssertEqual(try parse("{}").rtc, RTCConfig())
        XCTAssertEqual(try parse("{\"prefix_attention_schedule\": \"EXP\", \"max_guidance_weight\": 3.5, \"execution_horizon\": 7, \"enabled\": false, \"debug\": true, \"debug_maxlen\": 10}").rtc,
                       RTCConfig(enabled: false, schedule: .exp, maxGuidanceWeight: 3.5, executionHorizon: 7))
        XCTAssertThrowsError(try parse("{\"prefix_attention_schedule\": \"CUBIC\"}")) {
            XCTAssertEqual(($0 as? PI0ConfigError).map { "\($0)" }?.contains("rtc_config.prefix_attention_schedule"), true, "\($0)")
        }
        XCTAssertThrowsError(try parse("{\"max_guidance_weight\": 0}")) {
            XCTAssertEqual($0 as? PI0ConfigError, .invalidValue(file: "config.json", field: "rtc_config.max_guidance_weight", reason: "must be > 0, got 0.0"))
        }
        XCTAssertThrowsError(try parse("{\"execution_horizon\": -1}"))
        XCTAssertThrowsError(try parse("{\"surprise\": 1}")) {
            XCTAssertEqual($0 as? PI0ConfigError, .unknownField(file: "config.json", field: "rtc_config.surprise"))
        }
    }
}
