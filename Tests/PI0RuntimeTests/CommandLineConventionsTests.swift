// `pi0`'s conventions through the built executable (docs/CLI.md): progress during long work (measured on
// the demo checkpoint with a slowed loader), --quiet / --log-level, --version, --json, usage and exit codes,
// --checkpoint with hub ids everywhere, write-random-checkpoint's safety, `pi0 download --tokenizer`.
import Foundation
import XCTest
import PI0TestSupport

final class CommandLineConventionsTests: XCTestCase {
    var f: UXFixtures!
    override func setUpWithError() throws { f = try UXFixtures() }
    override func tearDown() { f.remove() }

    /// The longest stretch without a line on standard error, from the start to the exit.
    func longestSilence(_ lines: [CLI.TimedLine], total: Double) -> Double {
        let times = [0] + lines.map(\.seconds) + [total]
        return zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? total
    }

    func testLoadingIsNeverSilentInPlainOutput() throws {
        // 89 tensors × 80 ms ≈ 7 s of loading on the demo checkpoint; plain lines (not a terminal).
        let r = try CLI.runTimed(f.policyArgs(), environment: f.env.merging(["PI0_DEBUG_LOAD_DELAY_MS": "80"]) { _, b in b })
        XCTAssertEqual(r.status, 0, r.stderr.map(\.text).joined(separator: "\n"))
        guard r.seconds > 6 else { throw XCTSkip("the slowed loader is active only in debug builds (took \(r.seconds) s)") }
        let progress = r.stderr.filter { $0.text.hasPrefix("loading weights") }
        XCTAssertGreaterThanOrEqual(progress.count, 2, "\(r.stderr.map(\.text))")
        XCTAssertTrue(progress.allSatisfy { $0.text.contains("%") && ($0.text.contains("MB") || $0.text.contains("kB")) }, "\(progress.map(\.text))")
        XCTAssertTrue(progress.contains { $0.text.contains("ETA") && $0.text.contains("/s") }, "\(progress.map(\.text))")
        XCTAssertTrue(r.stderr.contains { $0.text.hasPrefix("loaded weights in") }, "\(r.stderr.map(\.text))")
        XCTAssertFalse(r.stderr.contains { $0.text.contains("\u{1B}[") }, "no terminal control codes in plain output")
        let silence = longestSilence(r.stderr, total: r.seconds)
        XCTAssertLessThan(silence, 5, "silent for \(silence) s: \(r.stderr.map { "\($0.seconds): \($0.text)" })")
        // Percentages only go up.
        let pcts = progress.compactMap { l in l.text.split(separator: " ").first { $0.hasSuffix("%") }.flatMap { Int($0.dropLast()) } }
        XCTAssertEqual(pcts, pcts.sorted())
    }

    func testProgressIsABarOnATerminal() throws {
        let r = try CLI.run(f.policyArgs(), environment: f.env.merging(["PI0_DEBUG_LOAD_DELAY_MS": "30", "PI0_PROGRESS": "bar"]) { _, b in b })
        XCTAssertEqual(r.status, 0, r.stderr)
        guard r.stderr.contains("loading weights") else { throw XCTSkip("the slowed loader is active only in debug builds") }
        XCTAssertTrue(r.stderr.contains("\r\u{1B}[Kloading weights ["), r.stderr)
        XCTAssertTrue(r.stderr.contains("█"), r.stderr)
    }

    func testQuietAndLogLevel() throws {
        let r = try CLI.run(f.policyArgs(extra: ["--quiet"]), environment: f.env.merging(["PI0_DEBUG_LOAD_DELAY_MS": "30"]) { _, b in b })
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")
        XCTAssertEqual(r.stdout.split(separator: "\n").count, 50, "the actions still go to standard output")
        let r2 = try CLI.run(f.policyArgs(extra: ["--log-level", "loud"]), environment: f.env)
        XCTAssertEqual(r2.status, 64)
        XCTAssertTrue(r2.stderr.contains("--log-level") && r2.stderr.contains("debug"), r2.stderr)
        for sub in ["demo", "run", "serve", "inspect", "bench", "download", "tokenize", "write-random-checkpoint", "cuda-check"] {
            let h = try CLI.run([sub, "--help"])
            XCTAssertTrue(h.stdout.contains("--quiet") && h.stdout.contains("--log-level"), "\(sub): \(h.stdout)")
        }
    }

    func testVersionUsageAndExitCodes() throws {
        let v = try CLI.run(["--version"])
        XCTAssertEqual(v.status, 0)
        XCTAssertNotNil(v.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression), v.stdout)
        // A validation error prints the subcommand's usage and exits 64.
        let r = try CLI.run(["run", "--checkpoint", f.demo], environment: f.env)
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("Usage: pi0 run"), r.stderr)
        let b = try CLI.run(["bench", "--checkpoint", f.demo, "--cameras", "0"])
        XCTAssertEqual(b.status, 64)
        XCTAssertTrue(b.stderr.contains("Usage: pi0 bench") && b.stderr.contains("1-8"), b.stderr)
        XCTAssertEqual(try CLI.run(["bench", "--checkpoint", f.demo, "--cameras", "9"]).status, 64)
        XCTAssertTrue(try CLI.run(["bench", "--help"]).stdout.contains("1-8"))
        // A failure while working exits 1 (a file that is not a checkpoint).
        XCTAssertEqual(try CLI.run(["inspect", "--checkpoint", f.tmp], environment: f.env).status, 1)
        // The exit codes are documented in the help.
        XCTAssertTrue(try CLI.run(["--help"]).stdout.replacingOccurrences(of: "\n", with: " ").contains("64 invalid arguments"))
    }

    func testJSONOutput() throws {
        let r = try CLI.run(f.policyArgs(extra: ["--json"]), environment: f.env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(obj?["shape"] as? [Int], [50, 14])
        XCTAssertEqual((obj?["actions"] as? [[Double]])?.count, 50)
        let i = try CLI.run(["inspect", "--checkpoint", f.demo, "--json"])
        XCTAssertEqual(i.status, 0, i.stderr)
        let info = try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(info?["keys_ok"] as? Bool, true)
        XCTAssertEqual(info?["tensors"] as? Int, 89)
        XCTAssertEqual(info?["cameras"] as? [String], ["observation.images.top", "observation.images.wrist"])
    }

    func testHubIdsWorkForEveryCommand() throws {
        // A hub cache holding acme/pi0_test (snapshot files are links, as huggingface_hub makes them).
        let cache = f.tmp + "/cache"
        let snap = cache + "/models--acme--pi0_test/snapshots/abc123"
        try FileManager.default.createDirectory(atPath: snap, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: cache + "/models--acme--pi0_test/refs", withIntermediateDirectories: true)
        try Data("abc123".utf8).write(to: URL(fileURLWithPath: cache + "/models--acme--pi0_test/refs/main"))
        for file in try FileManager.default.contentsOfDirectory(atPath: f.demo) {
            try FileManager.default.createSymbolicLink(atPath: snap + "/" + file, withDestinationPath: f.demo + "/" + file)
        }
        let env = ["HF_HUB_CACHE": cache]
        let i = try CLI.run(["inspect", "--checkpoint", "acme/pi0_test"], environment: env)
        XCTAssertEqual(i.status, 0, i.stderr)
        XCTAssertTrue(i.stdout.contains("all expected tensors present"), i.stdout)
        let old = try CLI.run(["inspect", f.demo])   // the older positional form still works
        XCTAssertEqual(old.status, 0, old.stderr)
        let b = try CLI.run(["bench", "--checkpoint", "acme/pi0_test", "--runs", "1", "--steps", "1", "--json", "--threads", "2",
                             "--peak-gflops", "100"], environment: env)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as? [String: Any])
        let r = try CLI.run(f.policyArgs("acme/pi0_test"), environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func testWriteRandomCheckpointRefusesToOverwriteAndChecksSpace() throws {
        let dir = f.tmp + "/ckpt"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let r = try CLI.run(["write-random-checkpoint", dir])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("--force") && r.stderr.contains("config.json"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: dir + "/config.json", encoding: .utf8), "{}")
        let space = try CLI.run(["write-random-checkpoint", f.tmp + "/new", "--precision", "float32"], environment: ["PI0_DEBUG_FREE_BYTES": "1000000"])
        guard space.stderr.contains("free space") else { throw XCTSkip("PI0_DEBUG_FREE_BYTES works in debug builds only") }
        XCTAssertEqual(space.status, 1)
        XCTAssertTrue(space.stderr.contains("14."), "float32 needs ~14 GB: \(space.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.tmp + "/new/model.safetensors"))
        let dtype = try CLI.run(["write-random-checkpoint", f.tmp + "/new", "--dtype", "float16"])
        XCTAssertEqual(dtype.status, 64)
        XCTAssertTrue(dtype.stderr.contains("--dtype must be float32 or bfloat16"), dtype.stderr)
        XCTAssertFalse(try CLI.run(["write-random-checkpoint", "--help"]).stdout.contains("--dtype"), "--dtype is a hidden alias")
    }

    func testWriteRandomCheckpointRemovesItsTemporaryFileWhenInterrupted() throws {
        guard let exe = CLI.executable else { throw XCTSkip("pi0 executable not built; run `swift build` first") }
        let dir = f.tmp + "/ckpt"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["write-random-checkpoint", dir]
        p.environment = ProcessInfo.processInfo.environment.merging(["PI0_DEBUG_FREE_BYTES": "100000000000000"]) { _, b in b }
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(30)
        var sawTemp = false
        while Date() < deadline && p.isRunning {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            if let t = files.first(where: { $0.hasPrefix("model.safetensors.tmp-") }),
               ((try? FileManager.default.attributesOfItem(atPath: dir + "/" + t)[.size] as? Int) ?? 0) > 1 << 20 {
                sawTemp = true; break
            }
            usleep(20_000)
        }
        p.interrupt()
        p.waitUntilExit()
        XCTAssertTrue(sawTemp, "the writer's temporary file never appeared")
        XCTAssertEqual(p.terminationStatus, 130)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [], [], "nothing left behind")
    }

    func testBackendAutoNoteIsOneShortLine() throws {
        let r = try CLI.run(f.policyArgs(extra: ["--backend", "auto"]), environment: f.env)
        XCTAssertEqual(r.status, 0, r.stderr)
        guard let line = r.stderr.split(separator: "\n").first(where: { $0.contains("CUDA") }) else {
            throw XCTSkip("a CUDA GPU was used: no note to check")
        }
        XCTAssertLessThan(line.count, 100, String(line))
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.contains("CUDA") }.count, 1, r.stderr)
    }

    func testDownloadTokenizerFromTheHubAndUseIt() throws {
        // The fake hub (tools/download/fake_hub.py) serves google/paligemma-3b-pt-224/tokenizer.model.
        let root = URL(fileURLWithPath: f.tmp + "/hub/served")
        let repo = root.appendingPathComponent("google/paligemma-3b-pt-224")
        try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: f.tokenizer, toPath: repo.appendingPathComponent("tokenizer.model").path)
        let hub: FakeHub
        do { hub = try FakeHub(root: root, commit: String(repeating: "ab", count: 20)) } catch {
            throw XCTSkip("python3 fake hub unavailable: \(error)")
        }
        defer { hub.stop() }
        let cache = f.tmp + "/cache"
        let r = try CLI.run(["download", "--tokenizer", "--endpoint", hub.endpoint, "--cache", cache])
        XCTAssertEqual(r.status, 0, r.stderr)
        let path = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(path.hasSuffix("/tokenizer.model"), path)
        XCTAssertEqual(FileManager.default.contents(atPath: path), FileManager.default.contents(atPath: f.tokenizer))
        // run and serve now find it in the cache: the checkpoint without a tokenizer runs.
        let run = try CLI.run(f.policyArgs(f.endToEnd), environment: ["HF_HUB_CACHE": cache])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stdout.split(separator: "\n").count, 50)
    }

    func testTokenizerInOpenPIsCacheIsFound() throws {
        let home = f.tmp + "/openpi"
        try FileManager.default.createDirectory(atPath: home + "/big_vision", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: f.tokenizer, toPath: home + "/big_vision/paligemma_tokenizer.model")
        let run = try CLI.run(f.policyArgs(f.endToEnd), environment: f.env.merging(["OPENPI_DATA_HOME": home]) { _, b in b })
        XCTAssertEqual(run.status, 0, run.stderr)
        let tok = try CLI.run(["tokenize", "pick up the cube"], environment: f.env.merging(["OPENPI_DATA_HOME": home]) { _, b in b })
        XCTAssertEqual(tok.status, 0, tok.stderr)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(tok.stdout.utf8)) as? [Int])?.first, 2, "BOS first")
    }
}
