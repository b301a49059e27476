// The fake Hugging Face hub (tools/download/fake_hub.py) as a subprocess, for the download tests.
import Foundation
import XCTest

public final class FakeHub: @unchecked Sendable {
    let process = Process()
    let stdin = Pipe()
    public let port: Int
    public let root: URL
    let controlPath: String
    /// Python hashlib's digests of the served files, by path under the root ("org/pi0/model.safetensors").
    public let hashes: [String: (sha256: String, gitSHA1: String)]
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/download/fake_hub.py").path
    }

    public init(root: URL, commit: String) throws {
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
    public func configure(log: String, dropOnce: [String], ignoreRange: Bool, corrupt: [String]) throws {
        let control: [String: Any] = ["id": UUID().uuidString, "log": log, "drop_once": dropOnce,
                                      "ignore_range": ignoreRange, "corrupt": corrupt]
        try JSONSerialization.data(withJSONObject: control).write(to: URL(fileURLWithPath: controlPath), options: .atomic)
    }

    public func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: root.deletingLastPathComponent())
    }
}

public struct FakeHubError: Error, CustomStringConvertible { public let description: String }

/// Collects progress events from the download's callback (called from other threads).
