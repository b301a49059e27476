// `pi0 serve`: the openpi-compatible websocket policy server.
import ArgumentParser
import Foundation
import Logging
import PI0
import PI0Runtime
import PI0Server

struct ServeCommand: AsyncParsableCommand, GlobalOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the policy over openpi's websocket protocol (openpi-client's WebsocketClientPolicy connects unchanged).",
        discussion: """
        Layouts map openpi example observations onto the checkpoint: libero ("observation/image",
        "observation/wrist_image", "observation/state" 8-d, actions 7), aloha ("images": cam_high, cam_low,
        cam_left_wrist, cam_right_wrist as uint8 CHW, "state" 14-d, actions 14), droid (exterior/wrist images,
        joint_position + gripper_position, actions 8) and native (the checkpoint's own feature names).
        The camera each layout key feeds is logged at start.
        --host 127.0.0.1 (the default) accepts connections from this machine only; --host 0.0.0.0 binds every
        network interface, as openpi's serve_policy.py does: any machine that can reach this one can then use
        the policy (set --api-key on shared networks).
        The checkpoint's config, the tokenizer and the port are checked before the weights are read; the server
        refuses to start without a tokenizer (requests carry prompts). Each request is logged at
        --log-level debug. GET /healthz answers "OK". Stop with Ctrl-C (SIGINT) or SIGTERM.
        """)

    @Option(help: "Checkpoint folder or Hugging Face id in the local cache.") var checkpoint: String
    @Option(help: "Address to bind: 127.0.0.1 = this machine only; 0.0.0.0 = every interface (other machines can connect).")
    var host: String = "127.0.0.1"
    @Option(help: "Port (0: any free port, printed at start).") var port: Int = 8000
    @Option(help: "Observation layout: libero, aloha, droid or native.") var layout: String = "native"
    @Option(help: "Require `Authorization: Api-Key KEY` from clients.") var apiKey: String?
    @Option(help: "SentencePiece tokenizer.model (default: next to the checkpoint or PaliGemma's in the HF cache; `pi0 download --tokenizer` gets it).")
    var tokenizer: String?
    @Option(parsing: .unconditional, help: "Prompt used when an observation has none (may start with a minus sign).") var defaultPrompt: String?
    @Option(help: "float32 or bfloat16 (default: the config's dtype).") var precision: String?
    @Option(help: "Largest accepted message in bytes.") var maxMessageBytes: Int = 256 << 20
    @Option(help: "Use this noise seed for every request (reproducible answers); default: a new seed per request.")
    var seed: UInt64?
    @Option(help: """
        Connections open at once (keep below `ulimit -n`). At the cap the oldest connection still in its \
        handshake is dropped; when every slot holds an upgraded client a newcomer gets HTTP 503.
        """)
    var maxConnections: Int = 64
    @Option(help: "Seconds a connection may take to complete its WebSocket upgrade.") var handshakeTimeout: Double = 10
    @Option(help: "Seconds without any client frame before an idle connection is closed (0: never).")
    var idleTimeout: Double = 600
    @Flag(inversion: .prefixedNo, help: """
        Refuse observations the layout would reshape: wrong state length, a missing camera, float images outside [0, 1] \
        (default: on for libero, aloha, droid; off for native).
        """)
    var strictObservations: Bool?
    @Option(help: "Batching across clients: run requests that arrive while the model is busy as one batch of up to N rows (1: off).")
    var maxBatch: Int = 1
    @Option(help: "Batching: milliseconds an idle model waits for more requests before it starts (0: never waits).")
    var batchWaitMs: Double = 0
    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard ObservationLayout(rawValue: layout) != nil else {
            throw ValidationError("--layout must be one of \(ObservationLayout.allCases.map(\.rawValue).joined(separator: ", ")), got '\(layout)'")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535, got \(port)") }
        _ = try parsePrecision(precision)
        guard (1...64).contains(maxBatch) else { throw ValidationError("--max-batch must be between 1 and 64, got \(maxBatch)") }
        guard batchWaitMs.isFinite, (0...10_000).contains(batchWaitMs) else {
            throw ValidationError("--batch-wait-ms must be between 0 and 10000, got \(batchWaitMs)")
        }
    }

    func run() async throws {
        let layoutValue = ObservationLayout(rawValue: layout)!
        let prec = try parsePrecision(precision)
        var logger = Logger(label: "pi0.serve")
        logger.logLevel = Console.level
        // Checks before loading: checkpoint config, tokenizer, the port.
        let plan = try PolicyPreflight(checkpoint: checkpoint, tokenizer: tokenizer)
        let tokenizerPath: String
        do { tokenizerPath = try plan.requireTokenizer() } catch {
            throw CLIError("\(error)\n(pi0 serve refuses to start without one: every request carries a prompt to encode)")
        }
        if port != 0 { try PortCheck.available(host: host, port: port) }
        let mapper = ObservationMapper(layout: layoutValue, checkpointCameras: plan.cameraNames, stateDim: plan.stateDim)
        let mapping = mapper.cameraAssignments.map { "\($0.layoutKey) → \($0.checkpointCamera ?? "(not used)")" }.joined(separator: ", ")
        logger.info("camera mapping", metadata: ["layout": "\(layout)", "cameras": "\(mapping)"])
        let backend = try backendOptions.make()
        let (policy, _) = try Loading.run("weights") { progress in
            try PI0Policy(checkpoint: plan.directory, tokenizer: tokenizerPath, precision: prec, backend: backend,
                          graph: backendOptions.graph, loadProgress: progress)
        }
        let service = PI0PolicyService(policy: policy, layout: layoutValue, defaultPrompt: defaultPrompt, fixedSeed: seed,
                                       strictObservations: strictObservations, maxBatch: maxBatch, batchWait: batchWaitMs / 1000)
        var config = PolicyServerConfiguration(host: host, port: port, apiKey: apiKey)
        config.maxMessageBytes = maxMessageBytes
        config.maxConnections = maxConnections
        config.handshakeTimeoutSeconds = handshakeTimeout
        config.idleTimeoutSeconds = idleTimeout
        config.maxConcurrentInferences = maxBatch   // with batching, up to a batch of requests reach the service
        let server = PolicyServer(service: service, configuration: config, logger: logger)
        let bound: Int
        do { bound = try await server.start() } catch {
            if PortCheck.isAddressInUse(error) { throw CLIError(PortCheck.inUseMessage(host: host, port: port)) }
            throw error
        }
        logger.info("serving π0", metadata: ["url": "ws://\(host):\(bound)", "layout": "\(layout)",
                                             "cameras": "\(policy.cameraNames.joined(separator: ","))",
                                             "backend": "\(policy.model.backend.name)"])
        try await server.runUntilSignal {
            FileHandle.standardOutput.write("listening on ws://\(host):\(bound)\n".data(using: .utf8)!)
        }
    }
}

/// Is the port free? Checked before the load (binding the same way the server will: SO_REUSEADDR).
enum PortCheck {
    static func inUseMessage(host: String, port: Int) -> String {
        "port \(port) on \(host) is already in use (another `pi0 serve` or server?); stop it, pick another with --port N, "
            + "or use --port 0 for any free port"
    }

    static func isAddressInUse(_ error: Error) -> Bool {
        let text = "\(error)"
        return text.contains("Address already in use") || text.contains("errno: \(EADDRINUSE)")
    }

    static func available(host: String, port: Int) throws {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let ai = res else {
            throw ValidationError("--host '\(host)' is not an address of this machine")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }   // cannot test; the server's own bind reports problems
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) != 0 {
            let e = errno
            if e == EADDRINUSE { throw CLIError(inUseMessage(host: host, port: port)) }
            if e == EACCES { throw CLIError("port \(port) needs privileges on this system; use a port above 1023") }
            if e == EADDRNOTAVAIL { throw ValidationError("--host '\(host)' is not an address of this machine") }
            throw CLIError("cannot bind \(host):\(port): \(String(cString: strerror(e)))")
        }
    }
}
