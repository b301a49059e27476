// Support for HubDownloadTests: the fake hub process, the served repos, Python hashes, event capture.
import Foundation
import XCTest
@testable import PI0Hub

/// tools/download/fake_hub.py running on 127.0.0.1 with an OS-chosen port. One serves all tests of the class
/// (Python starts slowly); each test sets its fault modes and log file through the control file.
final class FakeHub: @unchecked Sendable {
    let process = Process()
    let stdin = Pipe()
    let port: Int
    let root: URL
    let controlPath: String
    /// Python hashlib's digests of the served files, by path under the root ("org/pi0/model.safetensors").
    let hashes: [String: (sha256: String, gitSHA1: String)]
    var endpoint: String { "http://127.0.0.1:\(port)" }

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/download/fake_hub.py").path
    }

    init(root: URL, commit: String) throws {
        self.root = root
        controlPath = root.deletingLastPathComponent().appendingPathComponent("control.json").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script, "--root", root.path, "--control", controlPath, "--commit", commit]
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = stdin  // the hub exits when this closes
        try process.run()
        // "FILE path sha256 gitsha1" lines, then "PORT n".
        var text = ""
        while !(text.hasPrefix("PORT ") || text.contains("\nPORT ")) || !text.hasSuffix("\n") {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        var hashes: [String: (sha256: String, gitSHA1: String)] = [:], listening: Int?
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            if f.count == 4, f[0] == "FILE" { hashes[f[1]] = (f[2], f[3]) }
            if f.count == 2, f[0] == "PORT" { listening = Int(f[1]) }
        }
        self.hashes = hashes
        guard let p = listening else {
            try? stdin.fileHandleForWriting.close()
            process.terminate()
            throw FakeHubError(description: "tools/download/fake_hub.py did not start (output: '\(text)')")
        }
        port = p
    }

    /// Fault modes for the next requests; "id" makes --drop-once fire once per test.
    func configure(log: String, dropOnce: [String], ignoreRange: Bool, corrupt: [String]) throws {
        let control: [String: Any] = ["id": UUID().uuidString, "log": log, "drop_once": dropOnce,
                                      "ignore_range": ignoreRange, "corrupt": corrupt]
        try JSONSerialization.data(withJSONObject: control).write(to: URL(fileURLWithPath: controlPath), options: .atomic)
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: root.deletingLastPathComponent())
    }
}

struct FakeHubError: Error, CustomStringConvertible { let description: String }

/// Collects progress events from the download's callback (called from other threads).
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [HubDownloadEvent] = []
    func add(_ e: HubDownloadEvent) { lock.lock(); events.append(e); lock.unlock() }
    var all: [HubDownloadEvent] { lock.lock(); defer { lock.unlock() }; return events }
}

nonisolated(unsafe) private var pythonAvailable: Bool?
nonisolated(unsafe) var sharedHub: FakeHub?

extension HubDownloadTests {
    func requirePython() throws {
        if pythonAvailable == nil {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-c", "import hashlib, http.server"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            pythonAvailable = (try? p.run()) != nil && { p.waitUntilExit(); return p.terminationStatus == 0 }()
        }
        if pythonAvailable != true { throw XCTSkip("python3 is not available: the fake-hub and hashlib checks are skipped") }
    }

    /// Hex SHA-256 digests by Python's hashlib.
    func pythonSHA256(_ paths: [String]) throws -> [String] {
        try requirePython()
        let code = "import hashlib, sys\nfor p in sys.argv[1:]: print(hashlib.sha256(open(p, 'rb').read()).hexdigest())"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", code] + paths
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    static func randomData(_ n: Int) -> Data {
        var rng = SystemRandomNumberGenerator()
        var words = [UInt64](repeating: 0, count: (n + 7) / 8)
        for i in words.indices { words[i] = rng.next() }
        return words.withUnsafeBytes { Data($0.prefix(n)) }
    }

    /// The shared fake hub (started on first use; stopped in the class's tearDown) with this test's modes.
    /// It serves org/pi0 (a LeRobot-style π0 checkpoint without tokenizer.model, plus sub/dir/extra.safetensors
    /// and hop.safetensors, whose content URL redirects once more),
    /// gated/pi0 (needs the token) and org/evil (a processor naming a state file outside the snapshot).
    func startHub(dropOnce: [String] = [], ignoreRange: Bool = false, corrupt: [String] = []) throws -> FakeHub {
        try requirePython()
        if sharedHub == nil {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("fakehub-\(UUID().uuidString)/served")
            func put(_ relative: String, _ data: Data) throws {
                let url = root.appendingPathComponent(relative)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try data.write(to: url)
            }
            try put("org/pi0/config.json", Data((#"{"type": "pi0", "chunk_size": 50}"# + "\n").utf8))
            try put("org/pi0/policy_preprocessor.json", Data("""
                {"name": "policy_preprocessor", "steps": [{"registry_name": "rename_observations_processor", "config": {}},
                 {"registry_name": "normalizer_processor", "config": {"eps": 1e-08},
                  "state_file": "policy_preprocessor_step_3_normalizer_processor.safetensors"}]}
                """.utf8))
            try put("org/pi0/policy_postprocessor.json", Data("""
                {"name": "policy_postprocessor", "steps": [{"registry_name": "unnormalizer_processor", "config": {},
                  "state_file": "policy_postprocessor_step_0_unnormalizer_processor.safetensors"}, {"registry_name": "device_processor", "state_file": null}]}
                """.utf8))
            try put("org/pi0/policy_preprocessor_step_3_normalizer_processor.safetensors", Self.randomData(777))
            try put("org/pi0/policy_postprocessor_step_0_unnormalizer_processor.safetensors", Self.randomData(1234))
            try put("org/pi0/model.safetensors", Self.randomData(300_007))
            try put("org/pi0/sub/dir/extra.safetensors", Self.randomData(4096))
            try put("org/pi0/hop.safetensors", Self.randomData(100_003))
            try put("gated/pi0/config.json", Data("{}".utf8))
            try put("gated/pi0/model.safetensors", Self.randomData(1000))
            try put("org/evil/config.json", Data("{}".utf8))
            try put("org/evil/policy_preprocessor.json", Data(#"{"steps": [{"state_file": "../../escape.safetensors"}]}"#.utf8))
            sharedHub = try FakeHub(root: root, commit: Self.commit)
        }
        let hub = sharedHub!
        try hub.configure(log: hubLog, dropOnce: dropOnce, ignoreRange: ignoreRange, corrupt: corrupt)
        return hub
    }

    var hubLog: String { tmp.appendingPathComponent("hub.log").path }

    /// "METHOD PATH RANGE AUTH" per request this test made.
    func hubRequests() -> [String] {
        guard let s = try? String(contentsOfFile: hubLog, encoding: .utf8) else { return [] }
        return s.split(separator: "\n").map(String.init)
    }

    /// Runs `body` with $HF_HUB_CACHE set to `dir` (HubCache reads the environment), then restores it.
    func withHubCache(_ dir: String, _ body: () throws -> Void) rethrows {
        let old = ProcessInfo.processInfo.environment["HF_HUB_CACHE"]
        setenv("HF_HUB_CACHE", dir, 1)
        defer { if let old { setenv("HF_HUB_CACHE", old, 1) } else { unsetenv("HF_HUB_CACHE") } }
        try body()
    }
}
