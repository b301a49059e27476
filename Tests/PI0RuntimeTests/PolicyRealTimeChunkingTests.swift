// Real-time chunking through the policy (docs/RTC.md): the previous chunk arrives in the robot's units,
// is normalised with the checkpoint's statistics and guides the next chunk towards it.
import Foundation
import XCTest
import PI0
@testable import PI0Runtime
import SafeTensors

final class PolicyRealTimeChunkingTests: XCTestCase {
    var dir: String { Bundle.module.resourcePath! + "/Fixtures/end_to_end" }

    func setUpPolicy() throws -> (PI0Policy, Observation, [Float]) {
        let io = try SafeTensorsFile(path: dir + "/io.safetensors")
        let policy = try PI0Policy(checkpoint: dir, backend: try Backends.cpu(threads: 2))
        return (policy, try PolicyEndToEndTests.observation(io), try io.floats("noise"))
    }

    /// normalizeActions is the inverse of unnormalizeActions (to float32 rounding).
    func testPreviousChunkIsNormalisedWithTheCheckpointStatistics() throws {
        let (policy, _, _) = try setUpPolicy()
        let stats = try XCTUnwrap(policy.stats)
        let model: [Float] = (0..<(5 * 14)).map { i in Float((i * 37) % 23) / 11 - 1 }
        let robot = try stats.unnormalizeActions(model, actionDim: 14)
        XCTAssertNotEqual(robot, model, "the fixture's statistics must not be the identity")
        let back = try stats.normalizeActions(robot, actionDim: 14)
        for (a, b) in zip(back, model) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertThrowsError(try stats.normalizeActions([1, 2, 3], actionDim: 14))
    }

    /// With the previous chunk's tail as the target, the rows the robot executes during the delay land
    /// much closer to it than an unguided chunk from the same noise; the request changes nothing else.
    func testGuidancePullsTheNextChunkOntoThePreviousOne() throws {
        let (policy, obs, noise) = try setUpPolicy()
        let previous = try policy.predictActionChunk(obs, seed: 11)
        let d = 4, executed = 3                        // 3 actions already executed, 4 more during inference
        let tail = Array(previous.values[(executed * 14)...])
        var guided = obs
        guided.previousChunk = PreviousChunk(actions: tail, steps: 50 - executed, inferenceDelay: d, executionHorizon: 10)
        let plain = try policy.predictActionChunk(obs, noise: noise)
        let rtc = try policy.predictActionChunk(guided, noise: noise)
        func distance(_ c: ActionChunk, rows: Range<Int>) -> Float {
            rows.map { t in (0..<14).map { i in abs(c.values[t * 14 + i] - tail[t * 14 + i]) }.reduce(0, +) }.reduce(0, +)
        }
        let before = distance(plain, rows: 0..<d), after = distance(rtc, rows: 0..<d)
        XCTAssertLessThan(after, 0.5 * before, "guided rows \(after) vs unguided \(before)")
        XCTAssertTrue(rtc.values.allSatisfy(\.isFinite))
        // The same request through the raw model gives the same actions.
        var inputs = try policy.preprocess(guided)
        inputs.noise = noise
        inputs.rtc = RTCRequest(previousChunk: try policy.stats!.normalizeActions(tail, actionDim: 14), batch: 1,
                                previousSteps: 47, previousWidth: 14, inferenceDelay: d, executionHorizon: 10)
        XCTAssertEqual(try policy.postprocess(policy.model.sampleActions(inputs).array).values, rtc.values)
    }

    /// A previous chunk narrower than the action dimension is normalised per dimension and the rest of
    /// the width is left to the model's zero padding.
    func testNarrowPreviousChunkKeepsItsOwnDimensions() throws {
        let (policy, obs, _) = try setUpPolicy()
        let full = try policy.predictActionChunk(obs, seed: 3)
        let narrow = (0..<20).flatMap { t in full.values[(t * 14)..<(t * 14 + 7)] }
        let r = try policy.rtcRow(PreviousChunk(actions: narrow, steps: 20, inferenceDelay: 1))
        XCTAssertEqual(r.previousWidth, 7)
        let wide = try policy.stats!.normalizeActions(Array(full.values[0..<(20 * 14)]), actionDim: 14)
        XCTAssertEqual(r.previousChunk, (0..<20).flatMap { t in wide[(t * 14)..<(t * 14 + 7)] })
    }

    func testBadPreviousChunksGetClearErrors() throws {
        let (policy, obs, _) = try setUpPolicy()
        func expect(_ prev: PreviousChunk, _ fragment: String, line: UInt = #line) {
            var o = obs; o.previousChunk = prev
            XCTAssertThrowsError(try policy.predictActionChunk(o, steps: 1), line: line) {
                XCTAssertTrue("\($0)".contains(fragment), "\($0)", line: line)
            }
        }
        let ok = [Float](repeating: 0.1, count: 10 * 14)
        expect(PreviousChunk(actions: Array(ok.dropLast()), steps: 10, inferenceDelay: 2), "expected 10 × (1…14)")
        expect(PreviousChunk(actions: ok + ok, steps: 10, inferenceDelay: 2), "expected 10 × (1…14)")
        expect(PreviousChunk(actions: [Float](repeating: 0, count: 51 * 14), steps: 51, inferenceDelay: 2), "51 steps")
        var nan = ok; nan[5] = .nan
        expect(PreviousChunk(actions: nan, steps: 10, inferenceDelay: 2), "non-finite value at index 5")
        expect(PreviousChunk(actions: ok, steps: 10, inferenceDelay: -1), "rtc_inference_delay")
        expect(PreviousChunk(actions: ok, steps: 10, inferenceDelay: 50), "rtc_inference_delay")
    }
}
