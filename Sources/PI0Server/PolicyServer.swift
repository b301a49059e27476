// The openpi-compatible policy server: one port, `GET /healthz` for health checks, every other path
// upgrades to the WebSocket protocol of docs/PROTOCOL.md.
//
// Networking runs on one NIO event loop (it only moves bytes; decoding, inference and encoding run
// in Swift tasks), which also keeps the connection registry single-threaded without locks.
import Dispatch
import Logging
import MessagePack
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

public final class PolicyServer: Sendable {
    private let shared: PolicyConnectionHandler.Shared
    private let group: MultiThreadedEventLoopGroup
    private let registry: NIOLoopBoundBox<Registry>
    private let lifecycle = Lifecycle()

    /// idle → running → stopped. Kept off the event loop: after shutdown the loop is gone, and NIO
    /// never completes work submitted to a loop that has shut down.
    private actor Lifecycle {
        enum Phase { case idle, running, stopped }
        private(set) var phase = Phase.idle

        func beginStart() throws {
            guard phase == .idle else { throw phase == .running ? PolicyServerError.alreadyStarted : PolicyServerError.stopped }
            phase = .running
        }

        /// True only for the first call.
        func beginStop() -> Bool {
            defer { phase = .stopped }
            return phase != .stopped
        }
    }

    /// Connections and the listening channel; touched only on `group`'s single event loop.
    private final class Registry {
        var serverChannel: Channel?
        var nextID: UInt64 = 0
        var channels: [UInt64: Channel] = [:]
        var handlers: [UInt64: PolicyConnectionHandler] = [:]
        var refused = 0
        var accepted = 0
        var evicted = 0
    }

    /// Connection counters for monitoring and tests: open now, accepted in all, evicted (closed while
    /// still in their handshake to make room at the cap) and refused (503: every slot upgraded).
    public struct ConnectionCounts: Sendable, Equatable {
        public var open: Int, accepted: Int, evicted: Int, refused: Int
    }

    public func connectionCounts() async throws -> ConnectionCounts {
        let registry = self.registry
        return try await loop.submit {
            let r = registry.value
            return ConnectionCounts(open: r.channels.count, accepted: r.accepted, evicted: r.evicted, refused: r.refused)
        }.get()
    }

    public init(service: any PolicyService, configuration: PolicyServerConfiguration = .init(),
                logger: Logger = Logger(label: "pi0.server")) {
        let metadata = MessagePack.encode(service.metadata)
        shared = .init(service: service, queue: InferenceQueue(limit: max(1, configuration.maxConcurrentInferences)),
                       metadata: metadata, configuration: configuration, logger: logger)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        registry = NIOLoopBoundBox.makeBoxSendingValue(Registry(), eventLoop: group.next())
    }

    private var loop: EventLoop { registry.eventLoop }

    /// Binds and starts serving; returns the bound port (useful with port 0).
    public func start() async throws -> Int {
        let configuration = shared.configuration
        guard configuration.maxMessageBytes > 0, configuration.maxMessageBytes <= Int(UInt32.max) else {
            throw PolicyServerError.invalidConfiguration("maxMessageBytes must be in 1...\(UInt32.max)")
        }
        guard configuration.maxConcurrentInferences >= 1 else {
            throw PolicyServerError.invalidConfiguration("maxConcurrentInferences must be at least 1")
        }
        guard configuration.maxConnections >= 1 else {
            throw PolicyServerError.invalidConfiguration("maxConnections must be at least 1")
        }
        guard configuration.handshakeTimeoutSeconds > 0, configuration.handshakeTimeoutSeconds.isFinite,
              configuration.idleTimeoutSeconds >= 0, configuration.idleTimeoutSeconds.isFinite else {
            throw PolicyServerError.invalidConfiguration("handshakeTimeoutSeconds must be > 0 and idleTimeoutSeconds >= 0 (0: off)")
        }
        try await lifecycle.beginStart()
        let registry = self.registry
        let shared = self.shared
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.initializeConnection(channel, shared: shared, registry: registry)
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        try await loop.submit { registry.value.serverChannel = channel }.get()
        let port = channel.localAddress?.port ?? configuration.port
        shared.logger.info("policy server listening", metadata: [
            "host": "\(configuration.host)", "port": "\(port)", "api_key": "\(configuration.apiKey == nil ? "off" : "on")",
            "max_message_bytes": "\(configuration.maxMessageBytes)",
            "max_concurrent_inferences": "\(configuration.maxConcurrentInferences)",
            "max_connections": "\(configuration.maxConnections)",
            "handshake_timeout_s": "\(configuration.handshakeTimeoutSeconds)", "idle_timeout_s": "\(configuration.idleTimeoutSeconds)",
        ])
        return port
    }

    private static func initializeConnection(_ channel: Channel, shared: PolicyConnectionHandler.Shared,
                                             registry: NIOLoopBoundBox<Registry>) throws {
        let reg = registry.value
        // At the cap, the oldest connection still in its handshake gives up its slot (a flood of idle
        // sockets cannot keep out a client that upgrades at once); only when every slot holds an
        // upgraded client is the newcomer refused.
        if reg.channels.count >= shared.configuration.maxConnections,
           let oldest = reg.channels.keys.filter({ reg.handlers[$0] == nil }).min(), let victim = reg.channels[oldest] {
            reg.channels[oldest] = nil
            reg.evicted += 1
            victim.close(promise: nil)
        }
        guard reg.channels.count < shared.configuration.maxConnections else {
            reg.refused += 1
            if reg.refused == 1 || reg.refused % 100 == 0 {
                shared.logger.warning("connection refused: at the connection cap", metadata: [
                    "max_connections": "\(shared.configuration.maxConnections)", "refused_so_far": "\(reg.refused)"])
            }
            try channel.pipeline.syncOperations.addHandler(RefusingHandler())
            return
        }
        reg.accepted += 1
        reg.nextID += 1
        let id = reg.nextID
        reg.channels[id] = channel
        // Slow or silent handshakes lose their slot (the upgrade handler registers `handlers[id]`).
        let handshake = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(shared.configuration.handshakeTimeoutSeconds * 1e9))) {
            if registry.value.handlers[id] == nil { channel.close(promise: nil) }
        }
        channel.closeFuture.whenComplete { _ in
            handshake.cancel()
            registry.value.channels[id] = nil
            registry.value.handlers[id] = nil
        }
        let apiKey = shared.configuration.apiKey
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: shared.configuration.maxMessageBytes,
            automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                // nil refuses the upgrade; the request then reaches HTTPHandler, which answers 401.
                let ok = HTTPHandler.authorized(head.headers, apiKey: apiKey)
                if !ok { shared.logger.warning("refused websocket upgrade: missing or wrong API key", metadata: ["conn": "\(id)"]) }
                return channel.eventLoop.makeSucceededFuture(ok ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let handler = PolicyConnectionHandler(shared: shared, id: id)
                    let idle = shared.configuration.idleTimeoutSeconds
                    if idle > 0 {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .nanoseconds(Int64(idle * 1e9))))
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                    registry.value.handlers[id] = handler
                }
            })
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                context.pipeline.syncOperations.removeHandler(name: "pi0.http", promise: nil)
            }))
        try channel.pipeline.syncOperations.addHandler(HTTPHandler(apiKey: apiKey), name: "pi0.http")
    }

    /// Stops accepting, lets in-flight requests finish (up to `shutdownGraceSeconds`), closes every
    /// connection (idle ones with close 1001) and releases the event loop. Safe to call twice.
    public func shutdown() async throws {
        guard await lifecycle.beginStop() else { return }
        let registry = self.registry
        let grace = TimeAmount.nanoseconds(Int64(shared.configuration.shutdownGraceSeconds * 1e9))
        let closed = try await loop.submit { () -> EventLoopFuture<Void> in
            let reg = registry.value
            let loop = registry.eventLoop
            reg.serverChannel?.close(promise: nil)
            reg.serverChannel = nil
            for (id, channel) in reg.channels {
                if let handler = reg.handlers[id] { handler.beginShutdown() } else { channel.close(promise: nil) }
            }
            let all = EventLoopFuture.andAllComplete(reg.channels.values.map(\.closeFuture), on: loop)
            let timeout = loop.scheduleTask(in: grace) {
                for channel in registry.value.channels.values { channel.close(promise: nil) }
            }
            return all.always { _ in timeout.cancel() }
        }.get()
        try? await closed.get()
        try await group.shutdownGracefully()
        shared.logger.info("policy server stopped")
    }

    /// Starts (if needed) and serves until SIGINT or SIGTERM, then shuts down gracefully.
    /// `onReady` runs once SIGINT/SIGTERM are being watched (announce the server there: a signal sent
    /// in reaction to the announcement is then never lost).
    public func runUntilSignal(onReady: () -> Void = {}) async throws {
        if await lifecycle.phase == .idle { _ = try await start() }

        let watch = SignalWatch([SIGINT, SIGTERM])   // armed before this line returns (SignalWatch.swift)
        onReady()
        for await sig in watch.signals {
            shared.logger.info("signal received, shutting down", metadata: ["signal": "\(sig == SIGINT ? "SIGINT" : "SIGTERM")"])
            break
        }
        watch.stop()
        try await shutdown()
    }
}
