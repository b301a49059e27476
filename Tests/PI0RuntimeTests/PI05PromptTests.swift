// π0.5's state prompt against LeRobot 0.6.1's Pi05PrepareStateTokenizerProcessorStep
// (Fixtures/pi05_prompt_state/cases.json, copied from the shared π0.5 fixtures): every recorded case,
// bit-exact float32 inputs, and the real normaliser → state step for QUANTILES and MEAN_STD.
import Foundation
import XCTest
@testable import PI0Runtime

final class PI05PromptTests: XCTestCase {
    lazy var root: [String: Any] = {
        let url = URL(fileURLWithPath: RuntimeFixtures.path("pi05_prompt_state/cases.json"))
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }()

    func floats(_ bits: Any?) -> [Float] { (bits as! [NSNumber]).map { Float(bitPattern: $0.uint32Value) } }
    func ints(_ v: Any?) -> [Int] { (v as! [NSNumber]).map(\.intValue) }

    func testEveryRecordedCase() throws {
        let cases = root["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 34)
        var refused = 0
        for c in cases {
            let task = c["task"] as! String, state = floats(c["state_f32_bits"])
            let expected = ints(c["discretized"]), prompt = c["prompt"] as! String
            // Every finite and infinite value bins as LeRobot's digitize does.
            for (i, x) in state.enumerated() where !x.isNaN {
                XCTAssertEqual(PI05Prompt.bin(x), expected[i], "case \(c["id"]!) value \(i) = \(x)")
            }
            if state.allSatisfy(\.isFinite) {
                XCTAssertEqual(try PI05Prompt.discretize(state), expected, "case \(c["id"]!)")
                XCTAssertEqual(try PI05Prompt.prompt(task: task, normalizedState: state), prompt, "case \(c["id"]!)")
            } else {
                // Deliberate difference: LeRobot writes 255 for NaN; we refuse non-finite states.
                refused += 1
                XCTAssertThrowsError(try PI05Prompt.prompt(task: task, normalizedState: state)) { e in
                    guard case .badState(let reason)? = e as? PolicyError else { return XCTFail("\(e)") }
                    XCTAssertTrue(reason.contains("index 0"), reason)
                }
            }
        }
        XCTAssertEqual(refused, 1)
    }

    func testNonFiniteStatesAreRefusedByIndex() {
        for bad: Float in [.nan, .infinity, -.infinity] {
            XCTAssertThrowsError(try PI05Prompt.discretize([0.1, 0.2, bad])) { e in
                guard case .badState(let reason)? = e as? PolicyError else { return XCTFail("\(e)") }
                XCTAssertTrue(reason.contains("index 2"), reason)
            }
        }
    }

    func testCleanTaskFollowsPythonStrip() {
        XCTAssertEqual(PI05Prompt.cleanTask("_a_"), " a ")
        XCTAssertEqual(PI05Prompt.cleanTask("a__b"), "a  b")
        XCTAssertEqual(PI05Prompt.cleanTask("\u{1C}x\u{1F}"), "x")            // Python isspace, not Unicode White_Space
        XCTAssertEqual(PI05Prompt.cleanTask("a\r\nb"), "a\r b")               // on scalars: "\r\n" is one Character
        XCTAssertEqual(PI05Prompt.cleanTask("\u{200B}x\u{200B}"), "\u{200B}x\u{200B}")
        XCTAssertEqual(PI05Prompt.cleanTask(" \t\n "), "")
    }

    /// LeRobot's own pre-processor (normaliser, then the state step) on raw states.
    func testNormalizerThenStateStep() throws {
        let n = root["normalizer_then_state_step"] as! [String: Any]
        let dim = (n["state_dim"] as! NSNumber).intValue
        let bits = n["dataset_stats_float32_bits"] as! [String: Any]
        var stats: [String: [Float]] = [:]
        for (k, v) in bits { stats[k] = floats(v) }
        let modes = n["modes"] as! [String: Any]
        XCTAssertEqual(Set(modes.keys), ["QUANTILES", "MEAN_STD"])
        for (modeName, m) in modes {
            let mode = try XCTUnwrap(NormalizationMode(rawValue: modeName))
            let feature = NormalizedFeature(key: "observation.state", type: "STATE", shape: [dim], mode: mode)
            let step = NormalizationStats.Step(jsonFile: "policy_preprocessor.json", statsFile: nil, eps: 1e-8,
                                               features: ["observation.state": feature], stats: ["observation.state": stats])
            let normalizer = NormalizationStats(pre: step, post: step)
            let cases = (m as! [String: Any])["cases"] as! [[String: Any]]
            XCTAssertEqual(cases.count, 5)
            for c in cases {
                let label = "\(modeName)/\(c["label"]!)"
                let normalized = try normalizer.normalizeState(floats(c["raw_state_f32_bits"]))
                XCTAssertEqual(normalized.map(\.bitPattern), floats(c["normalized_state_f32_bits"]).map(\.bitPattern), label)
                XCTAssertEqual(try PI05Prompt.discretize(normalized), ints(c["discretized"]), label)
                XCTAssertEqual(try PI05Prompt.prompt(task: c["task"] as! String, normalizedState: normalized), c["prompt"] as! String, label)
            }
        }
    }
}
