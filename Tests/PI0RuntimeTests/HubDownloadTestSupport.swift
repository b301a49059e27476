// Support for HubDownloadTests: the fake hub process, the served repos, Python hashes, event capture.
import Foundation
import XCTest
@testable import PI0Runtime

/// tools/download/fake_hub.py running on 127.0.0.1 with an OS-chosen port.
final class FakeHub {
    let process = Process()
    let port: Int
    let logPath: String
    var endpoint: String { "http://127.0.0.1:\(port)" }

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/download/fake_hub.py").path
    }

    init(root: String, logPath: String, commit: String, extra: [String]) throws {
        self.logPath = logPath
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script, "--root", root, "--log", logPath, "--commit", commit] + extra
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // First line: "PORT n".
        var text = ""
        while !text.contains("\n") {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        guard text.hasPrefix("PORT "), let p = Int(text.dropFirst(5).prefix { $0.isNumber }) else {
            process.terminate()
            throw XCTSkip("fake hub did not start (output: \(text))")
        }
        port = p
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }

    /// "METHOD PATH RANGE AUTH" per request so far.
    func log() throws -> [String] {
        guard let s = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return s.split(separator: "\n").map(String.init)
    }
}

/// Collects progress events from the download's callback (called from other threads).
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [HubDownloadEvent] = []
    func add(_ e: HubDownloadEvent) { lock.lock(); events.append(e); lock.unlock() }
    var all: [HubDownloadEvent] { lock.lock(); defer { lock.unlock() }; return events }
}

nonisolated(unsafe) private var pythonAvailable: Bool?

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

    /// Hex digests by Python's hashlib: "sha256", or "gitsha1" (git's blob id, the hub's ETag of non-LFS files).
    func pythonHashes(_ paths: [String], kind: String) throws -> [String] {
        try requirePython()
        let code = """
        import hashlib, sys
        for p in sys.argv[2:]:
            d = open(p, 'rb').read()
            print(hashlib.sha256(d).hexdigest() if sys.argv[1] == 'sha256' else hashlib.sha1(b'blob %d\\0' % len(d) + d).hexdigest())
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", code, kind] + paths
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func write(_ relative: String, _ contents: String) throws {
        try write(relative, Data(contents.utf8))
    }

    func write(_ relative: String, _ data: Data) throws {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    static func randomData(_ n: Int) -> Data {
        var rng = SystemRandomNumberGenerator()
        var words = [UInt64](repeating: 0, count: (n + 7) / 8)
        for i in words.indices { words[i] = rng.next() }
        return words.withUnsafeBytes { Data($0.prefix(n)) }
    }

    /// Serves org/pi0 (a LeRobot-style π0 checkpoint without tokenizer.model, plus sub/dir/extra.safetensors)
    /// and gated/pi0 (needs the token), and starts the fake hub with `extra` flags.
    func startHub(_ extra: [String] = []) throws -> FakeHub {
        try requirePython()
        if !FileManager.default.fileExists(atPath: root.appendingPathComponent("org/pi0").path) {
            try write("org/pi0/config.json", #"{"type": "pi0", "chunk_size": 50}"# + "\n")
            try write("org/pi0/policy_preprocessor.json", """
                {"name": "policy_preprocessor", "steps": [{"registry_name": "rename_observations_processor", "config": {}},
                 {"registry_name": "normalizer_processor", "config": {"eps": 1e-08},
                  "state_file": "policy_preprocessor_step_3_normalizer_processor.safetensors"}]}
                """)
            try write("org/pi0/policy_postprocessor.json", """
                {"name": "policy_postprocessor", "steps": [{"registry_name": "unnormalizer_processor", "config": {},
                  "state_file": "policy_postprocessor_step_0_unnormalizer_processor.safetensors"}, {"registry_name": "device_processor", "state_file": null}]}
                """)
            try write("org/pi0/policy_preprocessor_step_3_normalizer_processor.safetensors", Self.randomData(777))
            try write("org/pi0/policy_postprocessor_step_0_unnormalizer_processor.safetensors", Self.randomData(1234))
            try write("org/pi0/model.safetensors", Self.randomData(2_000_003))
            try write("org/pi0/sub/dir/extra.safetensors", Self.randomData(4096))
            try write("gated/pi0/config.json", "{}")
            try write("gated/pi0/model.safetensors", Self.randomData(1000))
        }
        let hub = try FakeHub(root: root.path, logPath: tmp.appendingPathComponent("hub-\(hubs.count).log").path,
                              commit: Self.commit, extra: extra)
        hubs.append(hub)
        return hub
    }

    /// Runs `body` with $HF_HUB_CACHE set to `dir` (CheckpointLocator reads the environment), then restores it.
    func withHubCache(_ dir: String, _ body: () throws -> Void) rethrows {
        let old = ProcessInfo.processInfo.environment["HF_HUB_CACHE"]
        setenv("HF_HUB_CACHE", dir, 1)
        defer { if let old { setenv("HF_HUB_CACHE", old, 1) } else { unsetenv("HF_HUB_CACHE") } }
        try body()
    }
}
