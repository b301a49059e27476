// `pi0 run` in policy mode and `pi0 tokenize`, through the built executable.
import Foundation
import XCTest
import ImageIO
import PI0TestSupport
@testable import PI0Runtime
import PI0
import SafeTensors
import SentencePiece

final class PolicyCommandLineTests: XCTestCase {
    var fixtures: String { Bundle.module.resourcePath! + "/Fixtures" }

    func testPolicyModeFromPNGFilesMatchesTheLibrary() throws {
        let tmp = NSTemporaryDirectory() + "pi0-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        // A 60×80 gradient frame for "top"; "wrist" is left out (a masked −1 image).
        var px = [UInt8]()
        for y in 0..<60 { for x in 0..<80 { px += [UInt8(x * 3), UInt8(y * 4), UInt8((x + y) % 256)] } }
        let frame = RGBImage(width: 80, height: 60, pixels: px)
        try Data(PNG.encode(frame)).write(to: URL(fileURLWithPath: tmp + "/top.png"))
        let state = (0..<14).map { Float($0) * 0.05 - 0.3 }
        let tokenizer = fixtures + "/tokenizer/test_bpe.model"
        let r = try CLI.run(["run", "--checkpoint", fixtures + "/end_to_end", "--image", "top=" + tmp + "/top.png",
                             "--state", state.map { "\($0)" }.joined(separator: ","), "--prompt", "pick up the cube",
                             "--tokenizer", tokenizer, "--output", tmp + "/a.json", "--seed", "3", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tmp + "/a.json"))) as! [String: Any]
        XCTAssertEqual(json["shape"] as? [Int], [50, 14])
        let cli = (json["actions"] as! [[Double]]).flatMap { $0 }.map(Float.init)
        let policy = try PI0Policy(checkpoint: fixtures + "/end_to_end", tokenizer: tokenizer, backend: try Backends.cpu(threads: 2))
        let lib = try policy.predictActionChunk(Observation(images: ["top": CameraFrame(frame)], state: state, prompt: "pick up the cube"), seed: 3)
        XCTAssertEqual(cli.count, lib.values.count)
        XCTAssertTrue(ParityResult(name: "cli", actual: cli, expected: lib.values).passes(minPCC: 0.999999, maxRelL2: 1e-6))
        // .npy output: header + 50·14 float32.
        let r2 = try CLI.run(["run", "--checkpoint", fixtures + "/end_to_end", "--image", "top=" + tmp + "/top.png",
                              "--state", state.map { "\($0)" }.joined(separator: ","), "--prompt", "pick up the cube",
                              "--tokenizer", tokenizer, "--output", tmp + "/a.npy", "--threads", "2"])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let npy = try Data(contentsOf: URL(fileURLWithPath: tmp + "/a.npy"))
        XCTAssertEqual(Array(npy.prefix(6)), [0x93] + Array("NUMPY".utf8))
        XCTAssertEqual(npy.count % 64 == 0 ? 0 : (npy.count - 50 * 14 * 4) % 64, 0)
    }

    func testPolicyModeErrorsNameTheProblem() throws {
        let r = try CLI.run(["run", "--checkpoint", fixtures + "/end_to_end", "--image", "side=/nonexistent.png",
                             "--state", "1,2", "--prompt", "x"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("/nonexistent.png"), r.stderr)
    }

    func testTokenizeCommand() throws {
        let tok = fixtures + "/tokenizer/test_bpe.model"
        let proc = try SentencePieceProcessor(modelPath: tok)
        let sp = proc.encode("pick up the cube")
        let r = try CLI.run(["tokenize", "--tokenizer", tok, "--raw", "pick up the cube"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [Int], sp)
        let r2 = try CLI.run(["tokenize", "--tokenizer", tok], stdin: "[\"pick up the cube\", \"\"]")
        let arrays = try JSONSerialization.jsonObject(with: Data(r2.stdout.utf8)) as? [[Int]]
        XCTAssertEqual(arrays?.count, 2)
        XCTAssertEqual(arrays?[0].count, 48)
        let withNewline = [2] + proc.encode("pick up the cube\n")
        XCTAssertEqual(Array(arrays![0].prefix(withNewline.count)), withNewline)
        XCTAssertTrue(arrays![0].dropFirst(withNewline.count).allSatisfy { $0 == 0 })
        XCTAssertEqual(arrays?[1].filter { $0 != 0 }.count, 2)   // BOS + "\n"
    }
}
