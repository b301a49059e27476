// `pi0 serve`: the openpi-compatible websocket policy server.
import ArgumentParser
import Foundation
import Logging
import PI0
import PI0Runtime
import PI0Server

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the policy over openpi's websocket protocol (openpi-client's WebsocketClientPolicy connects unchanged).",
        discussion: """
        Layouts map openpi example observations onto the checkpoint: libero ("observation/image",
        "observation/wrist_image", "observation/state" 8-d, actions 7), aloha ("images": cam_high, cam_low,
        cam_left_wrist, cam_right_wrist as uint8 CHW, "state" 14-d, actions 14), droid (exterior/wrist images,
        joint_position + gripper_position, actions 8) and native (the checkpoint's own feature names).
        GET /healthz answers "OK". Stop with Ctrl-C (SIGINT) or SIGTERM.
        """)

    @Option(help: "Checkpoint folder or Hugging Face id in the local cache.") var checkpoint: String
    @Option(help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(help: "Port (0: any free port, printed at start).") var port: Int = 8000
    @Option(help: "Observation layout: libero, aloha, droid or native.") var layout: String = "native"
    @Option(help: "Require `Authorization: Api-Key KEY` from clients.") var apiKey: String?
    @Option(help: "SentencePiece tokenizer.model (default: next to the checkpoint or PaliGemma's in the HF cache).")
    var tokenizer: String?
    @Option(help: "Prompt used when an observation has none.") var defaultPrompt: String?
    @Option(help: "float32 or bfloat16 (default: the config's dtype).") var precision: String?
    @Option(help: "Largest accepted message in bytes.") var maxMessageBytes: Int = 256 << 20
    @Option(help: "Use this noise seed for every request (reproducible answers); default: a new seed per request.")
    var seed: UInt64?
    @Option(help: "Batching across clients: run requests that arrive while the model is busy as one batch of up to N rows (1: off).")
    var maxBatch: Int = 1
    @Option(help: "Batching: milliseconds an idle model waits for more requests before it starts (0: never waits).")
    var batchWaitMs: Double = 0
    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard (1...64).contains(maxBatch) else { throw ValidationError("--max-batch must be between 1 and 64, got \(maxBatch)") }
        guard batchWaitMs.isFinite, (0...10_000).contains(batchWaitMs) else {
            throw ValidationError("--batch-wait-ms must be between 0 and 10000, got \(batchWaitMs)")
        }
    }

    func run() async throws {
        guard let layoutValue = ObservationLayout(rawValue: layout) else {
            throw ValidationError("--layout must be one of \(ObservationLayout.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let prec = try precision.map { p -> Precision in
            guard let v = Precision(rawValue: p) else { throw ValidationError("--precision must be float32 or bfloat16") }
            return v
        }
        var logger = Logger(label: "pi0.serve")
        logger.logLevel = .info
        let policy = try PI0Policy(checkpoint: checkpoint, tokenizer: tokenizer, precision: prec, backend: try backendOptions.make())
        let service = PI0PolicyService(policy: policy, layout: layoutValue, defaultPrompt: defaultPrompt, fixedSeed: seed,
                                       maxBatch: maxBatch, batchWait: batchWaitMs / 1000)
        var config = PolicyServerConfiguration(host: host, port: port, apiKey: apiKey)
        config.maxMessageBytes = maxMessageBytes
        config.maxConcurrentInferences = maxBatch   // with batching, up to a batch of requests reach the service
        let server = PolicyServer(service: service, configuration: config, logger: logger)
        let bound = try await server.start()
        logger.info("serving π0", metadata: ["url": "ws://\(host):\(bound)", "layout": "\(layout)",
                                             "cameras": "\(policy.cameraNames.joined(separator: ","))",
                                             "backend": "\(policy.model.backend.name)"])
        FileHandle.standardOutput.write("listening on ws://\(host):\(bound)\n".data(using: .utf8)!)
        try await server.runUntilSignal()
    }
}
