// What `pi0` checks before it reads a weight (docs/CLI.md "Checks before loading"), where it may write
// (docs/CLI.md "Output files") and `pi0 serve`'s start-up checks, through the built executable. A slowed
// loader (PI0_DEBUG_LOAD_DELAY_MS, debug builds) makes a load take minutes, so an error that arrives in
// seconds without a "loading weights" line was found before the load.
import Foundation
import XCTest
import PI0TestSupport
import SafeTensors

/// Paths and a scratch folder shared by the command-line UX tests.
struct UXFixtures {
    let fixtures = Bundle.module.resourcePath! + "/Fixtures"
    let tmp: String
    /// An empty Hugging Face cache, so no tokenizer is found there by accident.
    let emptyCache: String
    var endToEnd: String { fixtures + "/end_to_end" }   // processor files, no tokenizer
    var tokenizer: String { fixtures + "/tokenizer/demo_bpe.model" }
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/pi0/Resources")
    /// The bundled demo checkpoint (tokenizer, processor files, cameras top and wrist, state 14).
    var demo: String { Self.sources.appendingPathComponent("DemoCheckpoint").path }
    var frame: String { Self.sources.appendingPathComponent("SampleFrames/aloha/step000_top.png").path }
    let state = [String](repeating: "0.1", count: 14).joined(separator: ",")

    init() throws {
        tmp = NSTemporaryDirectory() + "pi0-ux-\(UUID().uuidString)"
        emptyCache = tmp + "/hf-cache"
        try FileManager.default.createDirectory(atPath: emptyCache, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: tmp) }

    var env: [String: String] { ["HF_HUB_CACHE": emptyCache, "PI0_PROGRESS": "plain"] }
    /// A loader so slow (1 s per tensor, ~90 s in all) that any error arriving quickly came before the load.
    var slowEnv: [String: String] { env.merging(["PI0_DEBUG_LOAD_DELAY_MS": "1000"]) { _, b in b } }

    func policyArgs(_ checkpoint: String? = nil, output: String? = nil, extra: [String] = []) -> [String] {
        ["run", "--checkpoint", checkpoint ?? demo, "--image", "top=" + frame, "--state", state, "--prompt", "pick up the cube",
         "--threads", "2"] + (output.map { ["--output", $0] } ?? []) + extra
    }
}

final class CommandLineChecksTests: XCTestCase {
    var f: UXFixtures!
    override func setUpWithError() throws { f = try UXFixtures() }
    override func tearDown() { f.remove() }

    /// Runs with the slowed loader and asserts a quick failure that never started loading.
    func assertFailsBeforeLoading(_ args: [String], status: Int32 = 64, mentions: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let t0 = Date()
        let r = try CLI.run(args, environment: f.slowEnv)
        let s = Date().timeIntervalSince(t0)
        XCTAssertEqual(r.status, status, r.stderr, file: file, line: line)
        XCTAssertLessThan(s, 20, "took \(s) s: the error came after loading", file: file, line: line)
        XCTAssertFalse(r.stderr.contains("loading weights"), r.stderr, file: file, line: line)
        for m in mentions { XCTAssertTrue(r.stderr.contains(m), "'\(m)' not in: \(r.stderr)", file: file, line: line) }
    }

    func testArgumentProblemsAreFoundBeforeLoading() throws {
        let out = f.tmp + "/a.json"
        // Wrong output extension, state length, camera name; missing tokenizer; missing image.
        try assertFailsBeforeLoading(f.policyArgs(output: f.tmp + "/a.txt"), mentions: ["--output", ".json", "a.txt", "Usage: pi0 run"])
        var args = f.policyArgs(output: out)
        args[args.firstIndex(of: f.state)!] = "1,2,3"
        try assertFailsBeforeLoading(args, mentions: ["--state", "expected 14", "got 3"])
        try assertFailsBeforeLoading(f.policyArgs(output: out).map { $0 == "top=" + f.frame ? "side=" + f.frame : $0 },
                                     mentions: ["side", "observation.images.top"])
        try assertFailsBeforeLoading(f.policyArgs(f.endToEnd, output: out), status: 1, mentions: ["tokenizer", "pi0 download --tokenizer"])
        try assertFailsBeforeLoading(f.policyArgs(output: out).map { $0 == "top=" + f.frame ? "top=" + f.tmp + "/none.png" : $0 },
                                     status: 1, mentions: ["none.png"])
        try assertFailsBeforeLoading(["run", "--checkpoint", f.demo, "--inputs", f.frame, "--output", f.tmp + "/o.json"],
                                     mentions: [".safetensors"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// `--graph full|loop` needs a backend that captures work: refused on cpu before the weights load.
    func testGraphModesNeedACapturingBackendBeforeLoading() throws {
        for mode in ["full", "loop"] {
            try assertFailsBeforeLoading(["bench", "--checkpoint", f.demo, "--graph", mode],
                                         mentions: ["--graph \(mode)", "--backend cuda", "Usage: pi0 bench"])
            try assertFailsBeforeLoading(f.policyArgs(output: f.tmp + "/g.json") + ["--graph", mode], mentions: ["--graph \(mode)"])
        }
    }

    func testOutputFilesAreNeverLostOrClobbered() throws {
        let out = f.tmp + "/a.json"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: out))
        // An existing file needs --force; the old content stays until then.
        try assertFailsBeforeLoading(f.policyArgs(output: out), mentions: ["exists", "--force"])
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "keep me")
        let r = try CLI.run(f.policyArgs(output: out, extra: ["--force"]), environment: f.env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
        XCTAssertEqual(json?["shape"] as? [Int], [50, 14])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.tmp).sorted(), ["a.json", "hf-cache"], "no temporary file left")
        // The checkpoint's files and the inputs are never replaced, even with --force (also through a link).
        let checkpointCopy = f.tmp + "/ckpt"
        try FileManager.default.copyItem(atPath: f.demo, toPath: checkpointCopy)
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpointCopy + "/config.json"))
        try FileManager.default.createSymbolicLink(atPath: f.tmp + "/link", withDestinationPath: checkpointCopy)
        for target in [checkpointCopy + "/config.json", f.tmp + "/link/model.safetensors"] {
            try assertFailsBeforeLoading(f.policyArgs(checkpointCopy, output: target, extra: ["--force"]), mentions: ["inputs", "never replaced"])
        }
        try FileManager.default.linkItem(atPath: f.frame, toPath: f.tmp + "/frame.npy")
        try assertFailsBeforeLoading(f.policyArgs(output: f.tmp + "/frame.npy", extra: ["--force"]), mentions: ["inputs"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpointCopy + "/config.json")), before)
        // Not a regular file: a FIFO (which would block forever), a directory.
        XCTAssertEqual(mkfifo(f.tmp + "/fifo.json", 0o644), 0)
        try assertFailsBeforeLoading(f.policyArgs(output: f.tmp + "/fifo.json", extra: ["--force"]), mentions: ["FIFO"])
        try FileManager.default.createDirectory(atPath: f.tmp + "/dir.npy", withIntermediateDirectories: false)
        try assertFailsBeforeLoading(f.policyArgs(output: f.tmp + "/dir.npy", extra: ["--force"]), mentions: ["directory"])
        try assertFailsBeforeLoading(f.policyArgs(output: f.tmp + "/missing/a.json"), mentions: ["does not exist"])
    }

    func testInputsThatAreNotRegularFilesAreRefusedNotWaitedOn() throws {
        XCTAssertEqual(mkfifo(f.tmp + "/in.safetensors", 0o644), 0)
        try assertFailsBeforeLoading(["run", "--checkpoint", f.demo, "--inputs", f.tmp + "/in.safetensors", "--output", f.tmp + "/o.safetensors"],
                                     status: 1, mentions: ["--inputs", "not a regular file"])
        XCTAssertEqual(mkfifo(f.tmp + "/cam.png", 0o644), 0)
        try assertFailsBeforeLoading(f.policyArgs().map { $0 == "top=" + f.frame ? "top=" + f.tmp + "/cam.png" : $0 }, status: 1,
                                     mentions: ["cam.png", "not a regular file"])
    }

    func testOutputFormatFollowsTheExtension() throws {
        let out = f.tmp + "/a.safetensors"
        let r = try CLI.run(f.policyArgs(output: out), environment: f.env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let file = try SafeTensorsFile(path: out)
        XCTAssertEqual(try file.info("actions").shape, [50, 14])
        let r2 = try CLI.run(f.policyArgs(output: f.tmp + "/a.npy"), environment: f.env)
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: f.tmp + "/a.npy")).prefix(6)), [0x93] + Array("NUMPY".utf8))
        XCTAssertEqual(try SafeTensorsFile(path: out).floats("actions").count, 50 * 14)
    }

    func testAMissingFolderIsNotADownloadSuggestion() throws {
        let r = try CLI.run(f.policyArgs(f.tmp + "/nope"), environment: f.env)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("does not exist"), r.stderr)
        XCTAssertFalse(r.stderr.contains("pi0 download"), r.stderr)
        let r2 = try CLI.run(f.policyArgs("acme/missing"), environment: f.env)
        XCTAssertTrue(r2.stderr.contains("pi0 download acme/missing"), r2.stderr)
    }

    func testServeRefusesToStartWithoutATokenizer() throws {
        try assertFailsBeforeLoading(["serve", "--checkpoint", f.endToEnd, "--port", "0"], status: 1,
                                     mentions: ["tokenizer", "pi0 download --tokenizer", "refuses to start"])
    }

    func testServeReportsAPortInUseBeforeLoading() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        XCTAssertTrue(bound)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        try assertFailsBeforeLoading(["serve", "--checkpoint", f.demo, "--port", "\(port)"], status: 1,
                                     mentions: ["port \(port)", "already in use", "--port 0"])
    }

    func testServeLogsTheCameraMappingAtStart() throws {
        guard let exe = CLI.executable else { throw XCTSkip("pi0 executable not built; run `swift build` first") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["serve", "--checkpoint", f.demo, "--port", "0", "--layout", "aloha", "--threads", "2"]
        p.environment = ProcessInfo.processInfo.environment.merging(f.env) { _, b in b }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        while !text.contains("\n") && Date() < deadline {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        p.interrupt()
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertTrue(text.hasPrefix("listening on ws://127.0.0.1:"), text + e)
        XCTAssertTrue(e.contains("camera mapping"), e)
        for key in ["images/cam_high", "images/cam_left_wrist", "images/cam_right_wrist", "images/cam_low"] {
            XCTAssertTrue(e.contains(key + " → "), "\(key) missing from: \(e)")
        }
        XCTAssertTrue(e.contains("→ observation.images.top"), e)
    }

    func testDemoChecksThePictureFolderBeforeLoading() throws {
        try assertFailsBeforeLoading(["demo", "aloha", "--output", f.tmp + "/missing/d.png"], mentions: ["missing", "does not exist"])
        try assertFailsBeforeLoading(["demo", "aloha", "--output", f.tmp], mentions: ["directory"])
    }

    func testDemoWithARealCheckpointNeedsItsTokenizer() throws {
        let r = try CLI.run(["demo", "aloha", "--checkpoint", f.endToEnd, "--output", f.tmp + "/d.png"], environment: f.slowEnv)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("pi0 download --tokenizer"), r.stderr)
        XCTAssertFalse(r.stderr.contains("loading weights"), r.stderr)
        let r2 = try CLI.run(["demo", "aloha", "--checkpoint", f.endToEnd, "--tokenizer", f.tokenizer, "--output", f.tmp + "/d.png",
                              "--threads", "2"], environment: f.env)
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertFalse(r2.stdout.contains("placeholder"), r2.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.tmp + "/d.png"))
    }
}
