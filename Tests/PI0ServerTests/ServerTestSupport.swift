// A fake policy whose actions are a known function of the state, and helpers to run a server
// from synchronous tests (the test clients block on sockets, so they must not sit on Swift's
// cooperative thread pool, which the server's inference tasks need).
import Dispatch
import Foundation
import Logging
import MessagePack
import XCTest
@testable import PI0Server

enum FakePolicyError: Error, CustomStringConvertible {
    case requested
    case missingState

    var description: String {
        switch self {
        case .requested: return "FakePolicy failure requested by the observation"
        case .missingState: return "observation/state missing"
        }
    }
}

actor CallCounter {
    private(set) var calls = 0
    private(set) var completed = 0
    func started() { calls += 1 }
    func finished() { completed += 1 }
}

/// actions[t][i] = state[i] * (t + 1) + t, horizon 4. Observation keys "fail" (throw), "reject" (a
/// client-input error: the connection stays open) and
/// "sleep_ms" (int, a slow inference that honours cancellation) steer it.
struct FakePolicy: PolicyService {
    static let horizon = 4
    let counter = CallCounter()

    var metadata: MessagePackValue {
        .map([(.string("reset_pose"), .array([.double(0.5), .double(-1)])), (.string("action_horizon"), .int(4))])
    }

    func infer(_ observation: NumpyValue) async throws -> NDArray {
        await counter.started()
        if case .value(let v)? = observation["sleep_ms"], let ms = v.intValue {
            try await Task.sleep(nanoseconds: UInt64(ms) * 1_000_000)
        }
        if observation["fail"] != nil { throw FakePolicyError.requested }
        if observation["reject"] != nil { throw ObservationError.badValue(key: "reject", reason: "rejected as the observation asked") }
        // LIBERO/DROID-style "observation/state" or ALOHA-style "state".
        guard let state = try (observation["observation/state"] ?? observation["state"])?.ndarray?.floats() else {
            throw FakePolicyError.missingState
        }
        await counter.finished()
        return NDArray(floats: expectedActions(state: state), shape: [Self.horizon, state.count])
    }
}

/// The fake policy's contract, written out independently of its implementation's loop.
func expectedActions(state: [Float]) -> [Float] {
    var out: [Float] = []
    for t in 0 ..< FakePolicy.horizon { out += state.map { $0 * Float(t + 1) + Float(t) } }
    return out
}

/// A LIBERO-like observation (small images) as the Python client would pack it.
func observationBytes(state: [Float], extra: [(String, NumpyValue)] = []) -> [UInt8] {
    var pairs: [(MessagePackValue, NumpyValue)] = [
        (.string("observation/image"), .array(NDArray(uint8: [UInt8](repeating: 7, count: 8 * 8 * 3), shape: [8, 8, 3]))),
        (.string("observation/state"), .array(NDArray(floats: state, shape: [state.count]))),
        (.string("prompt"), .value(.string("pick up the cube"))),
    ]
    pairs += extra.map { (.string($0.0), $0.1) }
    return NumpyMsgpack.pack(.map(pairs))
}

/// Runs async work from a synchronous test and waits for it (at most `timeout` seconds, so a hang
/// fails the test instead of the whole run).
func runBlocking<T: Sendable>(timeout: Double = 60, _ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = Locked<Result<T, Error>?>(nil)
    let semaphore = DispatchSemaphore(value: 0)
    Task {
        let r: Result<T, Error>
        do { r = .success(try await body()) } catch { r = .failure(error) }
        result.with { $0 = r }
        semaphore.signal()
    }
    guard semaphore.wait(timeout: .now() + timeout) == .success, let r = result.with({ $0 }) else {
        throw TestClientError(description: "async operation did not finish within \(timeout) s")
    }
    return try r.get()
}

func quietLogger() -> Logger {
    var logger = Logger(label: "pi0.server.test")
    logger.logLevel = ProcessInfo.processInfo.environment["PI0_SERVER_TEST_LOG"] != nil ? .info : .error
    return logger
}

/// Starts a server on an ephemeral port, runs `body`, shuts the server down.
func withServer(_ policy: any PolicyService = FakePolicy(), configuration: PolicyServerConfiguration = .init(),
                _ body: (Int) throws -> Void) throws {
    var configuration = configuration
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.shutdownGraceSeconds = 5
    let server = PolicyServer(service: policy, configuration: configuration, logger: quietLogger())
    let port = try runBlocking { try await server.start() }
    defer { try? runBlocking { try await server.shutdown() } }
    try body(port)
}

/// Connects, upgrades and consumes the metadata message.
func connectedClient(port: Int, headers: [String: String] = [:]) throws -> TestWebSocketClient {
    let client = try TestWebSocketClient(port: port)
    let (status, body) = try client.upgrade(headers: headers)
    guard status == 101 else { throw TestClientError(description: "upgrade refused: \(status) \(body)") }
    _ = try client.readBinary()
    return client
}

/// Sends one observation and returns the decoded result tree.
func request(_ client: TestWebSocketClient, state: [Float], extra: [(String, NumpyValue)] = []) throws -> NumpyValue {
    try client.sendBinary(observationBytes(state: state, extra: extra))
    return try NumpyMsgpack.unpack(try client.readBinary())
}

/// Resident set size of this process in MiB (Linux; nil elsewhere).
func residentMiB() -> Double? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
    return kb / 1024
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

/// Test-only shared state for client threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func with<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
