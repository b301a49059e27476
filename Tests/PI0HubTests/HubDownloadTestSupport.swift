// Support for HubDownloadTests: the fake hub process, the served repos, Python hashes, event capture.
import Foundation
import XCTest
import PI0TestSupport
@testable import PI0Hub

/// tools/download/fake_hub.py running on 127.0.0.1 with an OS-chosen port. One serves all tests of the class
/// (Python starts slowly); each test sets its fault modes and log file through the control file.
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
