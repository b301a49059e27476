// Running the built `pi0` executable from tests, as a user would.
import Foundation
import XCTest

public enum CLI {
    /// The built `pi0` executable next to the test bundle (swift test builds every product).
    public static var executable: String? {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = url.appendingPathComponent("pi0").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            url = url.deletingLastPathComponent()
        }
        return nil
    }

    /// Runs `pi0 ARGS`, optionally feeding `stdin`, with `environment` added to this process's;
    /// throws XCTSkip when the executable is not built.
    public static func run(_ args: [String], stdin: String? = nil, environment: [String: String] = [:]) throws
        -> (status: Int32, stdout: String, stderr: String) {
        guard let exe = executable else { throw XCTSkip("pi0 executable not built next to the tests; run `swift build` first") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out; p.standardError = err; p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(stdin.data(using: .utf8)!) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// One piece of standard error as it arrived: seconds since the start and the text (lines split at
    /// "\n" and at the "\r" a progress bar redraws with).
    public struct TimedLine: Sendable { public let seconds: Double; public let text: String }

    /// Runs `pi0 ARGS` and timestamps standard error as it arrives (for measuring silence). Standard input is
    /// empty; `environment` is added to this process's.
    public static func runTimed(_ args: [String], environment: [String: String] = [:]) throws
        -> (status: Int32, stdout: String, stderr: [TimedLine], seconds: Double) {
        guard let exe = executable else { throw XCTSkip("pi0 executable not built next to the tests; run `swift build` first") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err; p.standardInput = FileHandle.nullDevice
        let start = Date()
        try p.run()
        let collected = Collected()
        let reader = Thread {
            var pending = ""
            while true {
                let d = err.fileHandleForReading.availableData
                if d.isEmpty { break }
                let t = Date().timeIntervalSince(start)
                pending += String(decoding: d, as: UTF8.self)
                var parts = pending.components(separatedBy: CharacterSet(charactersIn: "\r\n"))
                pending = parts.removeLast()
                for part in parts where !part.isEmpty { collected.add(TimedLine(seconds: t, text: part)) }
            }
            if !pending.isEmpty { collected.add(TimedLine(seconds: Date().timeIntervalSince(start), text: pending)) }
            collected.done.signal()
        }
        reader.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        collected.done.wait()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), collected.lines, Date().timeIntervalSince(start))
    }

    private final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [TimedLine] = []
        let done = DispatchSemaphore(value: 0)
        func add(_ l: TimedLine) { lock.lock(); items.append(l); lock.unlock() }
        var lines: [TimedLine] { lock.lock(); defer { lock.unlock() }; return items }
    }
}
