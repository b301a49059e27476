// Issue 13: NaN in a checkpoint's normaliser statistics (`action.std`) gave all-NaN actions with exit
// status 0. Unusable statistics are now refused when they are loaded, naming the file and the tensor.
import Foundation
import SafeTensors
import XCTest
@testable import PI0Runtime

final class StatsValidationTests: XCTestCase {
    var src: String { RuntimeFixtures.path("normalizer") }
    var tmp: String!

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "stats-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    /// The fixture's processors with `tensor`'s element `index` set to `value` in the stats file whose
    /// name starts with `prefix`.
    func poisoned(_ prefix: String, _ tensor: String, index: Int, value: Float, all: Bool = false) throws -> String {
        for name in try FileManager.default.contentsOfDirectory(atPath: src) {
            let from = src + "/" + name, to = tmp + "/" + name
            if name.hasPrefix(prefix) && name.hasSuffix(".safetensors") {
                let f = try SafeTensorsFile(path: from)
                var w = SafeTensorsWriter()
                for n in f.names {
                    var v = try f.floats(n)
                    if n == tensor { if all { v = v.map { _ in value } } else { v[index] = value } }
                    try w.add(n, floats: v, shape: try f.info(n).shape)
                }
                try w.write(to: to)
            } else {
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
        }
        return tmp
    }

    func statKey(_ error: Error) -> String? {
        guard case let .invalidStat(_, key, _)? = error as? NormalizerError else { return nil }
        return key
    }

    func testNaNActionStdIsRefusedAtLoad() throws {
        let dir = try poisoned("policy_postprocessor_step", "action.std", index: 3, value: .nan)
        XCTAssertThrowsError(try NormalizationStats.load(checkpointDirectory: dir)) { e in
            XCTAssertEqual(self.statKey(e), "action.std", "\(e)")
            XCTAssertTrue("\(e)".contains("policy_postprocessor_step_0_unnormalizer_processor.safetensors"), "\(e)")
            XCTAssertTrue("\(e)".contains("index 3"), "\(e)")
        }
    }

    func testInfiniteMeanAndNegativeStdAreRefused() throws {
        let dir = try poisoned("policy_preprocessor_step", "observation.state.mean", index: 0, value: .infinity)
        XCTAssertThrowsError(try NormalizationStats.load(checkpointDirectory: dir)) { XCTAssertEqual(self.statKey($0), "observation.state.mean") }
        try FileManager.default.removeItem(atPath: tmp); try setUpWithError()
        let neg = try poisoned("policy_postprocessor_step", "action.std", index: 1, value: -0.5)
        XCTAssertThrowsError(try NormalizationStats.load(checkpointDirectory: neg)) {
            XCTAssertEqual(self.statKey($0), "action.std"); XCTAssertTrue("\($0)".contains("negative"), "\($0)")
        }
    }

    func testZeroStdWithEpsIsStillAccepted() throws {
        // A joint that never moved has std 0; LeRobot divides by std + eps, which is finite.
        let dir = try poisoned("policy_preprocessor_step", "observation.state.std", index: 2, value: 0)
        let s = try NormalizationStats.load(checkpointDirectory: dir)
        XCTAssertTrue(try s.normalizeState([Float](repeating: 0.25, count: 14)).allSatisfy(\.isFinite))
    }
}
