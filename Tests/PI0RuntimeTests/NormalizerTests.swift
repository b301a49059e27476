// NormalizationStats against LeRobot 0.6.1 pipelines (fixtures/policy/normalizer, copied into Fixtures/normalizer)
// and LeRobot's own outputs for the other modes (Fixtures/normalizer/modes.safetensors,
// tools/imageio/make_normalizer_modes.py). The issue allows 1e-5 relative; we assert bit-exactness.
import Foundation
import SafeTensors
import XCTest
@testable import PI0Runtime

final class NormalizerTests: XCTestCase {
    var dir: String { RuntimeFixtures.path("normalizer") }

    func rows(_ x: [Float], _ n: Int) -> [[Float]] { stride(from: 0, to: x.count, by: n).map { Array(x[$0..<$0 + n]) } }

    func assertBitExact(_ got: [Float], _ want: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        guard got.count == want.count else { return }
        let c = compare(got, want)
        var maxRel: Float = 0
        for i in got.indices where want[i] != 0 { maxRel = max(maxRel, abs(got[i] - want[i]) / abs(want[i])) }
        XCTAssertLessThanOrEqual(maxRel, 1e-5, "\(what): max rel diff", file: file, line: line)
        XCTAssertEqual(c.differing, 0, "\(what): \(c.differing) values not bit-exact (max abs \(c.maxAbs))", file: file, line: line)
    }

    func testLoadsPI0Processors() throws {
        let s = try NormalizationStats.load(checkpointDirectory: dir)
        XCTAssertEqual(s.stateDim, 14)
        XCTAssertEqual(s.actionDim, 14)
        XCTAssertEqual(s.pre.eps, 1e-8)
        XCTAssertEqual(s.pre.features["observation.state"]?.mode, .meanStd)
        XCTAssertEqual(s.pre.features["observation.images.top"]?.mode, .identity)
        XCTAssertEqual(s.post.features.keys.sorted(), ["action"])
        // Split at the LAST dot: camera stats are keyed by the full camera feature name.
        XCTAssertEqual(s.pre.stats["observation.images.top"]?["mean"]?.count, 3)
        let cases = try SafeTensorsFile(path: dir + "/cases.safetensors")
        XCTAssertEqual(s.pre.stats["observation.state"]?["std"], try cases.floats("state_std_f32"))
        XCTAssertEqual(s.post.stats["action"]?["mean"], try cases.floats("action_mean_f32"))
    }

    func testStateNormaliseAndPadMatchLeRobot() throws {
        let s = try NormalizationStats.load(checkpointDirectory: dir)
        let f = try SafeTensorsFile(path: dir + "/cases.safetensors")
        let raw = rows(try f.floats("state_raw"), 14)
        let norm = rows(try f.floats("state_normalized"), 14), padded = rows(try f.floats("state_padded"), 32)
        for r in raw.indices {
            let n = try s.normalizeState(raw[r])
            assertBitExact(n, norm[r], "state row \(r)")
            assertBitExact(padVector(n, to: 32), padded[r], "padded state row \(r)")
        }
        // Row 3 has dim 13 = 1e-6 with std 0: (1e-6 - 0) / (0 + 1e-8) = 100 (the epsilon matters).
        XCTAssertEqual(norm[3][13], 100, accuracy: 1e-3)
    }

    func testActionUnnormaliseMatchesLeRobot() throws {
        let s = try NormalizationStats.load(checkpointDirectory: dir)
        let f = try SafeTensorsFile(path: dir + "/cases.safetensors")
        let sliced = try f.floats("actions_sliced"), want = try f.floats("actions_unnormalized")
        let model = try f.floats("actions_model")   // [2, 50, 32]: check our slice equals LeRobot's
        var mySlice: [Float] = []
        for t in 0..<100 { mySlice += model[t * 32..<t * 32 + 14] }
        XCTAssertEqual(mySlice, sliced)
        for b in 0..<2 {
            let got = try s.unnormalizeActions(Array(sliced[b * 700..<(b + 1) * 700]), actionDim: 14)
            assertBitExact(got, Array(want[b * 700..<(b + 1) * 700]), "actions batch \(b)")
        }
    }

    /// MIN_MAX / QUANTILES / QUANTILE10 with the same stats, through processor JSONs whose norm_map we rewrite.
    func testOtherModesMatchLeRobot() throws {
        let g = try SafeTensorsFile(path: dir + "/modes.safetensors")
        let stateIn = rows(try g.floats("state_in"), 14), actionsIn = try g.floats("actions_in")
        for mode in ["MIN_MAX", "QUANTILES", "QUANTILE10"] {
            let tmp = try copiedCheckpoint(replacing: "\"MEAN_STD\"", with: "\"\(mode)\"")
            let s = try NormalizationStats.load(checkpointDirectory: tmp)
            XCTAssertEqual(s.pre.features["observation.state"]?.mode.rawValue, mode)
            let want = rows(try g.floats("state_\(mode)"), 14)
            for r in stateIn.indices { assertBitExact(try s.normalizeState(stateIn[r]), want[r], "\(mode) state row \(r)") }
            assertBitExact(try s.unnormalizeActions(actionsIn, actionDim: 14), try g.floats("actions_\(mode)"), "\(mode) actions")
        }
    }

    func testErrorsNameFileKeyAndField() throws {
        let s = try NormalizationStats.load(checkpointDirectory: dir)
        XCTAssertThrowsError(try s.normalizeState([Float](repeating: 0, count: 13))) {
            XCTAssertEqual($0 as? NormalizerError, .dimensionMismatch(file: dir + "/policy_preprocessor.json", key: "observation.state", field: "input", expected: 14, got: 13))
        }
        var bad = [Float](repeating: 0, count: 14); bad[9] = .infinity
        XCTAssertThrowsError(try s.normalizeState(bad)) {
            XCTAssertEqual($0 as? NormalizerError, .nonFinite(key: "observation.state", index: 9, value: .infinity))
        }
        bad[9] = .nan
        XCTAssertThrowsError(try s.normalizeState(bad)) { XCTAssertTrue("\($0)".contains("observation.state[9]"), "\($0)") }
        XCTAssertThrowsError(try s.normalizeState(bad, key: "observation.velocity")) {
            XCTAssertTrue("\($0)".contains("observation.velocity"), "\($0)")
        }
        XCTAssertThrowsError(try s.unnormalizeActions([Float](repeating: 0, count: 30), actionDim: 14))
        XCTAssertThrowsError(try s.unnormalizeActions([Float](repeating: 0, count: 26), actionDim: 13)) {
            XCTAssertEqual($0 as? NormalizerError, .dimensionMismatch(file: dir + "/policy_postprocessor.json", key: "action", field: "input", expected: 14, got: 13))
        }
        // Missing checkpoint / stats file / stat tensor.
        XCTAssertThrowsError(try NormalizationStats.load(checkpointDirectory: "/nonexistent")) {
            XCTAssertEqual($0 as? NormalizerError, .fileNotFound(file: "/nonexistent/policy_preprocessor.json"))
        }
        let noStats = try copiedCheckpoint(replacing: "step_6_normalizer", with: "step_5_normalizer")
        XCTAssertThrowsError(try NormalizationStats.load(checkpointDirectory: noStats)) {
            XCTAssertEqual($0 as? NormalizerError, .fileNotFound(file: noStats + "/policy_preprocessor_step_5_normalizer_processor.safetensors"))
        }
        let noStd = try copiedCheckpoint(replacing: "", with: "", dropping: "observation.state.std")
        let s2 = try NormalizationStats.load(checkpointDirectory: noStd)
        XCTAssertThrowsError(try s2.normalizeState([Float](repeating: 0, count: 14))) {
            XCTAssertEqual($0 as? NormalizerError, .missingStat(file: noStd + "/policy_preprocessor_step_6_normalizer_processor.safetensors",
                                                               key: "observation.state.std", mode: "MEAN_STD"))
        }
        let noStep = try copiedCheckpoint(replacing: "\"normalizer_processor\"", with: "\"other_processor\"")
        XCTAssertThrowsError(try NormalizationStats.load(checkpointDirectory: noStep)) {
            XCTAssertEqual($0 as? NormalizerError, .missingStep(file: noStep + "/policy_preprocessor.json", registryName: "normalizer_processor"))
        }
    }

    func testPadVectorNeverTruncates() {
        XCTAssertEqual(padVector([1, 2], to: 4), [1, 2, 0, 0])
        XCTAssertEqual(padVector([1, 2, 3], to: 2), [1, 2, 3])
    }

    /// Copies the fixture checkpoint to a temp folder, editing both JSONs and optionally dropping a tensor
    /// from the pre-processor stats file.
    func copiedCheckpoint(replacing a: String, with b: String, dropping: String? = nil) throws -> String {
        let tmp = NSTemporaryDirectory() + "normalizer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            let src = dir + "/" + name, dst = tmp + "/" + name
            if name.hasSuffix(".json") {
                let text = try String(contentsOfFile: src, encoding: .utf8)
                try (a.isEmpty ? text : text.replacingOccurrences(of: a, with: b)).write(toFile: dst, atomically: true, encoding: .utf8)
            } else if let drop = dropping, name.hasPrefix("policy_preprocessor_step") {
                let f = try SafeTensorsFile(path: src)
                var w = SafeTensorsWriter()
                for n in f.names where n != drop { try w.add(n, floats: try f.floats(n), shape: try f.info(n).shape) }
                try w.write(to: dst)
            } else {
                try FileManager.default.copyItem(atPath: src, toPath: dst)
            }
        }
        return tmp
    }
}
