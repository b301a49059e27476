// What the server serves: a policy that turns one observation into an action chunk, and the
// server's settings. The real π0 policy (PI0Runtime) conforms to PolicyService elsewhere; tests use
// fakes. Protocol facts: docs/PROTOCOL.md.
import MessagePack

/// A policy behind the websocket server.
///
/// `infer` is called from a Swift concurrency task, never on a networking thread, and at most
/// `PolicyServerConfiguration.maxConcurrentInferences` calls run at once. An implementation that does
/// seconds of blocking compute should still prefer to run it on its own thread (or call
/// `Task.yield()` between steps) so it does not hold a cooperative-pool thread for that long.
public protocol PolicyService: Sendable {
    /// Sent msgpack-encoded as the first binary message on every connection (openpi clients block
    /// on it). Usually a map, possibly empty.
    var metadata: MessagePackValue { get }

    /// One observation (decoded numpy tree) → actions `[horizon, actionDim]`, unnormalised.
    func infer(_ observation: NumpyValue) async throws -> NDArray

    /// Like `infer`, with optional extra result keys and the policy's own timing. The default
    /// implementation wraps `infer`.
    func inferOutput(_ observation: NumpyValue) async throws -> PolicyOutput
}

extension PolicyService {
    public func inferOutput(_ observation: NumpyValue) async throws -> PolicyOutput {
        PolicyOutput(actions: try await infer(observation))
    }
}

/// One inference result as the server sends it.
public struct PolicyOutput: Sendable {
    /// `result["actions"]`.
    public var actions: NDArray
    /// More result keys (openpi policies may return e.g. `"state"`), written after `"actions"`.
    public var extra: [(String, NumpyValue)]
    /// `policy_timing.infer_ms`; when nil the server reports the time `infer` took.
    public var policyInferMs: Double?

    public init(actions: NDArray, extra: [(String, NumpyValue)] = [], policyInferMs: Double? = nil) {
        self.actions = actions
        self.extra = extra
        self.policyInferMs = policyInferMs
    }
}

public struct PolicyServerConfiguration: Sendable {
    /// Address to bind; "0.0.0.0" serves every interface (openpi's default).
    public var host: String
    /// 0 asks the OS for a free port (`start()` returns the bound one). openpi's default is 8000.
    public var port: Int
    /// When set, websocket upgrades must carry `Authorization: Api-Key <key>`; others get 401.
    public var apiKey: String?
    /// Largest accepted observation message (after reassembling fragments). Larger ones are refused
    /// with close code 1009 (message too big). At most UInt32.max (a WebSocket frame limit in NIO).
    public var maxMessageBytes: Int
    /// Inferences running at once across all connections; further requests wait in one FIFO queue.
    public var maxConcurrentInferences: Int
    /// Messages a client may send ahead of its answer (openpi clients send one at a time). A client
    /// that pipelines more gets an error and is disconnected, which bounds memory per connection to
    /// (1 + maxPipelinedRequests) messages.
    public var maxPipelinedRequests: Int
    /// How long `shutdown()` lets in-flight requests finish before closing connections anyway.
    public var shutdownGraceSeconds: Double

    public init(host: String = "0.0.0.0", port: Int = 8000, apiKey: String? = nil,
                maxMessageBytes: Int = 256 << 20, maxConcurrentInferences: Int = 1,
                maxPipelinedRequests: Int = 1, shutdownGraceSeconds: Double = 30) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.maxMessageBytes = maxMessageBytes
        self.maxConcurrentInferences = maxConcurrentInferences
        self.maxPipelinedRequests = maxPipelinedRequests
        self.shutdownGraceSeconds = shutdownGraceSeconds
    }
}

/// Server start-up failures.
public enum PolicyServerError: Error, CustomStringConvertible {
    case invalidConfiguration(String)
    case alreadyStarted
    case stopped

    public var description: String {
        switch self {
        case .invalidConfiguration(let why): return "PolicyServer: invalid configuration: \(why)"
        case .alreadyStarted: return "PolicyServer: start() was already called"
        case .stopped: return "PolicyServer: this server was shut down; create a new one"
        }
    }
}
