// The `pi0` tools on a π0.5 checkpoint, run as a user runs them (subprocesses on the tiny LeRobot
// fixture): run (raw inputs), inspect, bench, demo --checkpoint, prompt, write-random-checkpoint --list.
import Foundation
import XCTest
@testable import PI0
import SafeTensors
import PI0TestSupport

final class PI05CommandLineTests: XCTestCase {
    var dir: String { Fixtures.path("pi05_tiny_1cam") }

    func testRunRawInputsMatchesLeRobot() throws {
        let out = NSTemporaryDirectory() + "pi05-run-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["run", "--checkpoint", dir, "--inputs", dir + "/inputs.safetensors", "--output", out,
                             "--dump-intermediates", "--backend", "cpu"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ours = try SafeTensorsFile(path: out), golden = try SafeTensorsFile(path: dir + "/outputs.safetensors")
        for name in ["actions", "adarms_cond_all", "suffix_out_all", "expert_layer0_step0_out"] {
            let p = ParityResult(name: name, actual: try ours.floats(name), expected: try golden.floats(name))
            XCTAssertTrue(p.passes(minPCC: 0.99999, maxRelL2: 2e-5), "\(p)")
        }
    }

    func testInspectBenchAndDemoAcceptPI05() throws {
        let inspect = try CLI.run(["inspect", dir])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("config      pi05 (π0.5)"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("adaptive RMSNorm"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("all expected tensors present"), inspect.stdout)
        let bench = try CLI.run(["bench", "--checkpoint", dir, "--runs", "2", "--steps", "2", "--json", "--pipeline"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any]
        XCTAssertNotNil(obj, bench.stdout)
        let pipelined = try XCTUnwrap(obj?["pipelined"] as? [String: Any], "bench --pipeline reports the pipelined runs: \(bench.stdout)")
        XCTAssertEqual(pipelined["observations"] as? Int, 2)
        XCTAssertGreaterThan(try XCTUnwrap(pipelined["per_observation_s"] as? Double), 0)
        let demo = try CLI.run(["demo", "--checkpoint", dir, "--steps", "2"])
        XCTAssertEqual(demo.status, 0, demo.stderr)
        XCTAssertTrue(demo.stdout.contains("π0.5 demo"), demo.stdout)
    }

    func testPromptCommand() throws {
        let r = try CLI.run(["prompt", "--model", "pi05", "--task", " pick_up the cube\n", "--normalized-state", "0.1,-0.5,1,-1.5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "Task: pick up the cube, State: 140 64 255 -1;\nAction: \n")
        let j = try CLI.run(["prompt", "--model", "pi05", "--task", "fold", "--normalized-state", "-0.0,0.9921875", "--json"])
        XCTAssertEqual(j.status, 0, j.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["prompt"] as? String, "Task: fold, State: 128 255;\nAction: ")
        XCTAssertEqual(obj["bins"] as? [Int], [128, 255])
        // NaN and Inf are refused, naming the index.
        for bad in ["nan", "inf", "-inf"] {
            let e = try CLI.run(["prompt", "--model", "pi05", "--task", "x", "--normalized-state", "0.5,\(bad)"])
            XCTAssertNotEqual(e.status, 0)
            XCTAssertTrue(e.stderr.contains("index 1") && e.stderr.contains("not finite"), e.stderr)
            XCTAssertTrue(e.stdout.isEmpty, e.stdout)
        }
        // With a checkpoint: its state width is checked; without processor files the state is used as given.
        let wrong = try CLI.run(["prompt", "--checkpoint", dir, "--task", "x", "--state", "0.1,0.2"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains("32"), wrong.stderr)
        let state = (0..<32).map { i in String(Float(i) / 16 - 1) }.joined(separator: ",")
        let ok = try CLI.run(["prompt", "--checkpoint", dir, "--task", "x", "--state", state])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stderr.contains("no policy_preprocessor.json"), ok.stderr)
        XCTAssertEqual(ok.stdout, "Task: x, State: \((0..<32).map { String($0 * 8) }.joined(separator: " "));\nAction: \n")
        // π0 checkpoints do not put the state into the prompt.
        let pi0 = try CLI.run(["prompt", "--checkpoint", Fixtures.path("tiny_1cam"), "--task", "x", "--state", "0"])
        XCTAssertNotEqual(pi0.status, 0)
        XCTAssertTrue(pi0.stderr.contains("pi0"), pi0.stderr)
    }

    func testPromptTaskMayStartWithADashAndOutOfRangeNumbersAreNamed() throws {
        // A task starting with "-" (or spelled like a flag) is the task, as LeRobot takes any string.
        for task in ["-lift the cube", "--json"] {
            let r = try CLI.run(["prompt", "--model", "pi05", "--task", task, "--normalized-state", "-1,0.5"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(r.stdout, "Task: \(task), State: 0 192;\nAction: \n")
        }
        // 1e39 is finite text beyond float32: refused as out of range, not reported as "inf".
        let big = try CLI.run(["prompt", "--model", "pi05", "--task", "x", "--normalized-state", "0.5,-1e39"])
        XCTAssertNotEqual(big.status, 0)
        XCTAssertTrue(big.stderr.contains("value 1 '-1e39' is outside the float32 range"), big.stderr)
    }

    func testWriteRandomCheckpointListsLeRobotsFullSizePI05Tensors() throws {
        let r = try CLI.run(["write-random-checkpoint", "--model", "pi05", "--list", NSTemporaryDirectory() + "never-written"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: NSTemporaryDirectory() + "never-written"))
        let listed = r.stdout.split(separator: "\n").map(String.init)
        let expected = try PI05LayoutReference.fullSize().map { "\($0.name) \($0.shape)" }
        XCTAssertEqual(listed, expected)
    }
}

/// LeRobot 0.6.1's full-size PI05Pytorch state dict (tools/reference/pi05_full_size_keys.py), minus the
/// token embedding, which checkpoints store only as the tied `paligemma.lm_head.weight`.
enum PI05LayoutReference {
    static func fullSize() throws -> [(name: String, shape: [Int])] {
        let url = URL(fileURLWithPath: Fixtures.path("pi05_full_size_keys.json"))
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [[Any]])
        return rows.map { (name: $0[0] as! String, shape: ($0[1] as! [NSNumber]).map(\.intValue)) }
            .filter { !$0.name.hasSuffix("language_model.embed_tokens.weight") }
    }
}
