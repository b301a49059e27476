// What `pi0` says on standard error: --quiet / --log-level for every command, and progress for
// anything that takes more than a second or two (a bar on a terminal, plain lines in CI and logs;
// docs/CLI.md). Results go to standard output and are never affected by these options.
import ArgumentParser
import Dispatch
import Foundation
import Logging

/// Options every command takes (docs/CLI.md "Output and log level").
struct GlobalOptions: ParsableArguments {
    @Flag(name: [.customShort("q"), .long], help: "Only errors and warnings on standard error (no progress, no notes).")
    var quiet = false
    @Option(help: "Standard-error detail: trace, debug, info (default), notice, warning, error or critical. `serve` logs each request at debug.")
    var logLevel: String?

    func validate() throws {
        if let l = logLevel, Logger.Level(rawValue: l) == nil {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got '\(l)'")
        }
        if quiet, logLevel != nil { throw ValidationError("give --quiet or --log-level, not both") }
    }

    var level: Logger.Level { quiet ? .warning : logLevel.flatMap(Logger.Level.init(rawValue:)) ?? .info }
}

/// A command that takes the global options.
protocol GlobalOptionsCommand { var global: GlobalOptions { get } }

/// The process-wide standard-error policy, set once from the global options before a command runs.
enum Console {
    nonisolated(unsafe) static var level: Logger.Level = .info
    /// Progress displays draw a bar when standard error is a terminal (PI0_PROGRESS=plain|bar overrides).
    static var interactive: Bool {
        switch ProcessInfo.processInfo.environment["PI0_PROGRESS"] {
        case "plain": return false
        case "bar": return true
        default: return isatty(2) != 0
        }
    }
    static let lock = NSLock()
    /// True while a progress bar occupies the current terminal line (a note must clear it first).
    nonisolated(unsafe) static var barOpen = false

    static func shows(_ l: Logger.Level) -> Bool { l >= level }

    static func write(_ s: String) {
        lock.lock(); defer { lock.unlock() }
        FileHandle.standardError.write((barOpen ? "\r\u{1B}[K" : "") + s + "\n")
        barOpen = false
    }
}

extension FileHandle {
    func write(_ s: String) { write(s.data(using: .utf8)!) }
}

/// A note on standard error (progress, facts about the run), shown at log level info.
func note(_ s: String) { if Console.shows(.info) { Console.write(s) } }
/// Detail shown at log level debug.
func debugNote(_ s: String) { if Console.shows(.debug) { Console.write(s) } }
/// A warning, shown unless the log level is error or higher.
func warn(_ s: String) { if Console.shows(.warning) { Console.write("warning: " + s) } }

/// Progress of one task on standard error. On a terminal one line is redrawn (a bar, rate and ETA when the
/// total is known); otherwise a plain line is printed at most every `plainInterval` seconds. A timer redraws
/// or prints a heartbeat at least every few seconds even when no update arrives, so a long step never
/// leaves the user in silence (docs/CLI.md). Thread-safe.
final class Progress: @unchecked Sendable {
    enum Unit { case bytes, count }
    private let label: String
    private let unit: Unit
    private var total: Int64?
    private var done: Int64 = 0
    private var detail = ""
    private let start = DispatchTime.now().uptimeNanoseconds
    private var lastPrinted: UInt64 = 0
    private let lock = NSLock()
    private let enabled: Bool
    private let bar: Bool
    private var timer: DispatchSourceTimer?
    private var finished = false
    /// Seconds between plain lines (CI, logs); the timer checks every second, so silence stays under ~4 s.
    static let plainInterval = 2.5
    /// Nothing is shown for tasks shorter than this.
    static let quietStart = 1.0

    init(_ label: String, total: Int64? = nil, unit: Unit = .count) {
        self.label = label; self.total = total; self.unit = unit
        enabled = Console.shows(.info)
        bar = Console.interactive
        guard enabled else { return }
        let t = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        t.schedule(deadline: .now() + Self.quietStart, repeating: bar ? 0.25 : 1.0)
        t.setEventHandler { [weak self] in self?.tick() }
        t.resume()
        timer = t
    }

    deinit { timer?.cancel() }

    private var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    func update(done: Int64, total: Int64? = nil, detail: String? = nil) {
        lock.lock()
        self.done = done
        if let total { self.total = total }
        if let detail { self.detail = detail }
        lock.unlock()
        if bar { draw() } else { emitPlain(force: false) }
    }

    /// Ends the display: clears the bar and prints `message` (at info) when given.
    func finish(_ message: String? = nil) {
        lock.lock()
        let already = finished
        finished = true
        lock.unlock()
        timer?.cancel()
        guard !already, enabled else { return }
        if let message {
            Console.write(message)
        } else {
            Console.lock.lock()
            if Console.barOpen { FileHandle.standardError.write("\r\u{1B}[K"); Console.barOpen = false }
            Console.lock.unlock()
        }
    }

    private func tick() {
        lock.lock(); let f = finished; lock.unlock()
        guard !f else { return }
        if bar { draw() } else { emitPlain(force: false) }
    }

    private func text(barWidth: Int) -> String {
        lock.lock(); defer { lock.unlock() }
        let t = elapsed
        var s = label
        if let total, total > 0 {
            let frac = min(1, Double(done) / Double(total))
            if barWidth > 0 {
                let filled = Int(frac * Double(barWidth))
                s += " [" + String(repeating: "█", count: filled) + String(repeating: "·", count: barWidth - filled) + "]"
            }
            s += String(format: " %3.0f%%", 100 * frac) + " " + Self.amount(done, unit) + "/" + Self.amount(total, unit)
            if t > 0.5, done > 0 {
                let rate = Double(done) / t
                s += " · " + Self.amount(Int64(rate), unit) + "/s"
                if done < total { s += String(format: " · ETA %@", Self.duration(Double(total - done) / rate)) }
            }
        } else if done > 0 {
            s += " " + Self.amount(done, unit)
        }
        if !detail.isEmpty { s += " · " + detail }
        s += " · " + Self.duration(t)
        return s
    }

    private func draw() {
        guard enabled, elapsed >= Self.quietStart else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        guard now - lastPrinted >= 100_000_000 else { lock.unlock(); return }   // at most 10 redraws a second
        lastPrinted = now
        lock.unlock()
        let line = text(barWidth: 24)
        Console.lock.lock(); defer { Console.lock.unlock() }
        lock.lock(); let f = finished; lock.unlock()
        guard !f else { return }
        FileHandle.standardError.write("\r\u{1B}[K" + line)
        Console.barOpen = true
    }

    private func emitPlain(force: Bool) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        guard !finished, elapsed >= Self.quietStart, force || lastPrinted == 0 || Double(now - lastPrinted) / 1e9 >= Self.plainInterval else {
            lock.unlock(); return
        }
        lastPrinted = now
        lock.unlock()
        Console.write(text(barWidth: 0))
    }

    static func amount(_ n: Int64, _ unit: Unit) -> String {
        guard unit == .bytes else { return "\(n)" }
        let d = Double(n)
        if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
        if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
        if d >= 1e3 { return String(format: "%.1f kB", d / 1e3) }
        return "\(n) B"
    }

    static func duration(_ s: Double) -> String {
        s < 60 ? String(format: "%.0f s", s) : String(format: "%d min %02d s", Int(s) / 60, Int(s) % 60)
    }
}
