// A deterministic, seeded, time-bounded mutation fuzzer shared by the parser test targets
// (docs/RELIABILITY.md). Every run with the same seed tries the same inputs. Each case either parses
// (and must then satisfy the caller's invariants: a broken one is a "silent wrong answer") or throws a
// typed error; a crash ends the test process (the printed seed and case index reproduce it) and a
// case that does not return within `hangSeconds` is reported as a hang without stalling the run.
//
//   PI0_FUZZ_CASES=N     cases per parser (default: each test's CI count, a few thousand)
//   PI0_FUZZ_SECONDS=S   time budget per parser (default 20 s; the CI counts take far less)
//   PI0_FUZZ_SEED=X      base seed (default: a fixed one per parser)
import Foundation
import XCTest

/// The fuzzer draws from the tests' one generator (SplitMix64.swift).
extension SplitMix64 {
    /// Uniform in 0..<n (0 when n ≤ 0), from the next value modulo n.
    public mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
}

public enum FuzzOutcome {
    /// The input parsed and every invariant held.
    case accepted
    /// The parser refused the input with a typed error.
    case rejected
    /// The input parsed but an invariant failed: a silent wrong answer.
    case wrong(String)
}

public struct FuzzReport: CustomStringConvertible {
    public var name: String
    public var seed: UInt64
    public var cases = 0, accepted = 0, rejected = 0, wrong = 0, hangs = 0
    public var slowestMs = 0.0
    public var seconds = 0.0

    public var description: String {
        "fuzz[\(name)] seed \(String(seed, radix: 16)): \(cases) cases (\(accepted) accepted, \(rejected) rejected), "
            + "0 crashes, \(hangs) hangs, \(wrong) silent-wrong, slowest case \(String(format: "%.1f", slowestMs)) ms, "
            + "\(String(format: "%.1f", seconds)) s"
    }
}

public enum Fuzz {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// Cases to run: PI0_FUZZ_CASES, else `ci`.
    public static func cases(ci: Int) -> Int { environment["PI0_FUZZ_CASES"].flatMap(Int.init) ?? ci }

    /// Mutates `input` with 1–4 of: bit flips, interesting bytes, random bytes, truncation, chunk
    /// deletion, duplication and insertion, and length-like fields set to extremes.
    public static func mutate(_ input: [UInt8], _ rng: inout SplitMix64, dictionary: [[UInt8]] = []) -> [UInt8] {
        var b = input
        let interesting: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x10, 0x20, 0x40]
        for _ in 0..<(1 + rng.below(4)) {
            if b.isEmpty { b = [UInt8(truncatingIfNeeded: rng.next())]; continue }
            let i = rng.below(b.count)
            switch rng.below(9) {
            case 0: b[i] ^= UInt8(1) << UInt8(rng.below(8))
            case 1: b[i] = interesting[rng.below(interesting.count)]
            case 2: b[i] = UInt8(truncatingIfNeeded: rng.next())
            case 3: b = Array(b.prefix(i))
            case 4: b.removeSubrange(i..<min(b.count, i + 1 + rng.below(32)))
            case 5:
                let chunk = Array(b[i..<min(b.count, i + 1 + rng.below(64))])
                let at = rng.below(b.count + 1)
                b.insert(contentsOf: chunk, at: at)
            case 6:
                let n = 1 + rng.below(16)
                b.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: i)
            case 7:   // a 2- or 4-byte field (length, size, count) set to an extreme
                let width = rng.below(2) == 0 ? 2 : 4
                let value: [UInt8] = [[0xFF, 0xFF, 0xFF, 0xFF], [0, 0, 0, 0], [0x7F, 0xFF, 0xFF, 0xFF], [0x80, 0, 0, 0]][rng.below(4)]
                for k in 0..<width where i + k < b.count { b[i + k] = value[k] }
            default:
                if !dictionary.isEmpty {
                    let token = dictionary[rng.below(dictionary.count)]
                    b.replaceSubrange(i..<min(b.count, i + token.count), with: token)
                } else {
                    b[i] = b[i] &+ UInt8(truncatingIfNeeded: rng.below(7)) &- 3
                }
            }
        }
        return b
    }

    /// Runs `cases` mutations of the `seeds` through `body` on a worker thread, within
    /// PI0_FUZZ_SECONDS (default 20 s); fails the test on any silent-wrong case or hang and prints the
    /// report. `body` must never crash; it returns the outcome of one input.
    @discardableResult
    public static func run(_ name: String, seeds: [[UInt8]], ciCases: Int, seed: UInt64,
                           hangSeconds: Double = 5, dictionary: [[UInt8]] = [],
                           file: StaticString = #filePath, line: UInt = #line,
                           _ body: @escaping ([UInt8]) -> FuzzOutcome) -> FuzzReport {
        let total = cases(ci: ciCases)
        let budget = environment["PI0_FUZZ_SECONDS"].flatMap(Double.init) ?? 20
        let baseSeed = environment["PI0_FUZZ_SEED"].flatMap { UInt64($0, radix: 16) } ?? seed
        precondition(!seeds.isEmpty)
        let state = FuzzState(name: name, seed: baseSeed)
        let done = DispatchSemaphore(value: 0)
        let box = UncheckedBox(body)   // used by the worker only, while this thread waits
        let worker = Thread {
            let body = box.value
            var rng = SplitMix64(seed: baseSeed)
            let start = Date()
            for i in 0..<total {
                if Date().timeIntervalSince(start) > budget { break }
                let input = i < seeds.count ? seeds[i] : mutate(seeds[rng.below(seeds.count)], &rng, dictionary: dictionary)
                state.begin(i)
                let t0 = Date()
                let outcome = body(input)
                state.end(outcome, ms: Date().timeIntervalSince(t0) * 1000, input: input)
            }
            state.finish(seconds: Date().timeIntervalSince(start))
            done.signal()
        }
        worker.stackSize = 8 << 20
        worker.start()
        var report: FuzzReport
        if done.wait(timeout: .now() + budget + hangSeconds) == .timedOut {
            report = state.snapshot()
            report.hangs += 1
            XCTFail("fuzz[\(name)]: case \(state.current) (seed \(String(baseSeed, radix: 16))) did not return within \(hangSeconds) s",
                    file: file, line: line)
        } else {
            report = state.snapshot()
        }
        for message in state.failures.prefix(5) { XCTFail(message, file: file, line: line) }
        print(report)
        return report
    }
}

final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Progress shared between the worker and the watchdog.
final class FuzzState: @unchecked Sendable {
    private let lock = NSLock()
    private var report: FuzzReport
    private(set) var current = -1
    private(set) var failures: [String] = []

    init(name: String, seed: UInt64) { report = FuzzReport(name: name, seed: seed) }

    func begin(_ i: Int) { lock.lock(); current = i; lock.unlock() }

    func end(_ outcome: FuzzOutcome, ms: Double, input: [UInt8]) {
        lock.lock(); defer { lock.unlock() }
        report.cases += 1
        report.slowestMs = max(report.slowestMs, ms)
        switch outcome {
        case .accepted: report.accepted += 1
        case .rejected: report.rejected += 1
        case .wrong(let why):
            report.wrong += 1
            failures.append("fuzz[\(report.name)] case \(current) (seed \(String(report.seed, radix: 16)), \(input.count) bytes): silent wrong answer: \(why)")
        }
    }

    func finish(seconds: Double) { lock.lock(); report.seconds = seconds; lock.unlock() }

    func snapshot() -> FuzzReport { lock.lock(); defer { lock.unlock() }; return report }
}
