// One openpi client connection after the WebSocket upgrade (docs/PROTOCOL.md, "Conversation"):
// send msgpack(metadata) first, then answer every binary message msgpack(observation) with one
// binary message msgpack(result). Errors: a text frame describing the error, then close 1011,
// as openpi's websocket_policy_server.py does.
//
// Everything here runs on the channel's event loop. Decoding, inference and encoding run in a
// Task (never on the loop); the answer hops back with `eventLoop.execute`.
import Logging
import MessagePack
import PI0Runtime
import NIOCore
import NIOWebSocket

final class PolicyConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    struct Shared: Sendable {
        let service: any PolicyService
        let queue: InferenceQueue
        let metadata: [UInt8]
        let configuration: PolicyServerConfiguration
        let logger: Logger
    }

    private let shared: Shared
    private let id: UInt64
    private var logger: Logger
    private var context: ChannelHandlerContext?

    // Reassembly of fragmented messages.
    private var fragments: ByteBuffer?
    private var fragmentsAreText = false

    // Requests: the one in flight plus the ones a client pipelined behind it.
    private var pending: [ByteBuffer] = []
    private var inFlight: Task<Void, Never>?
    private var closing = false
    private var closeWhenIdle = false

    // openpi's server_timing.prev_total_ms: from when the server starts waiting for request N to
    // when answer N is sent, reported with answer N+1.
    private var waitStart = NIODeadline.now()
    private var prevTotalMs: Double?
    private var requests = 0

    init(shared: Shared, id: UInt64) {
        self.shared = shared
        self.id = id
        self.logger = shared.logger
        self.logger[metadataKey: "conn"] = "\(id)"
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        logger.info("client connected", metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
        var buffer = context.channel.allocator.buffer(capacity: shared.metadata.count)
        buffer.writeBytes(shared.metadata)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: buffer)), promise: nil)
        waitStart = .now()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A dead client: drop what it queued and cancel its running inference (a policy that ignores
        // cancellation runs to the end, and `finish` then discards the result).
        if inFlight != nil || !pending.isEmpty {
            logger.info("client gone with a request in flight; dropping it", metadata: ["pipelined": "\(pending.count)"])
        }
        inFlight?.cancel()
        inFlight = nil
        pending.removeAll()
        fragments = nil
        closing = true
        logger.info("client disconnected", metadata: ["requests": "\(requests)"])
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // No frame from the client for `idleTimeoutSeconds` (IdleStateHandler); a request being
        // answered is not idleness.
        if let e = event as? IdleStateHandler.IdleStateEvent, e == .read {
            if inFlight == nil && pending.isEmpty {
                logger.info("closing idle connection", metadata: ["idle_timeout_s": "\(shared.configuration.idleTimeoutSeconds)"])
                sendClose(code: .goingAway, reason: "idle timeout")
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Frame-level errors (oversized or malformed frames) were already answered with a close frame
        // by NIO's WebSocketProtocolErrorHandler; anything else ends the connection too.
        logger.warning("connection error", metadata: ["error": "\(error)"])
        closing = true
        inFlight?.cancel()
        if !(error is NIOWebSocketError) { context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if closing { return }
        // RFC 6455 §5.1: a server MUST fail the connection on an unmasked client frame; §5.2: RSV bits
        // MUST be 0 unless an extension defines them (none is negotiated here).
        guard frame.maskKey != nil else { return protocolError("unmasked client frame (RFC 6455 section 5.1)") }
        guard !frame.rsv1 && !frame.rsv2 && !frame.rsv3 else {
            return protocolError("reserved bits set without a negotiated extension (RFC 6455 section 5.2)")
        }
        switch frame.opcode {
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            break
        case .connectionClose:
            // Echo the client's close code, then close (RFC 6455 §5.5.1).
            closing = true
            var data = frame.unmaskedData
            let code = data.readSlice(length: 2) ?? ByteBuffer()
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: code)))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .binary, .text:
            guard fragments == nil else { return protocolError("a new message started inside a fragmented one") }
            if frame.fin {
                message(payload(of: frame), isText: frame.opcode == .text)
            } else {
                fragments = payload(of: frame)
                fragmentsAreText = frame.opcode == .text
            }
        case .continuation:
            guard var buffer = fragments else { return protocolError("continuation frame without a message") }
            fragments = nil  // avoid a copy-on-write of the growing buffer
            var part = payload(of: frame)
            guard buffer.readableBytes + part.readableBytes <= shared.configuration.maxMessageBytes else {
                return fail("message larger than the limit of \(shared.configuration.maxMessageBytes) bytes", code: .messageTooLarge)
            }
            buffer.writeBuffer(&part)
            if frame.fin {
                message(buffer, isText: fragmentsAreText)
            } else {
                fragments = buffer
            }
        default:
            protocolError("unknown opcode \(frame.opcode)")
        }
    }

    private func message(_ buffer: ByteBuffer, isText: Bool) {
        if isText {
            return fail("text messages are not part of the protocol: send msgpack observations as binary messages", code: .unexpectedServerError)
        }
        if inFlight == nil {
            start(buffer)
        } else if pending.count < shared.configuration.maxPipelinedRequests {
            pending.append(buffer)
        } else {
            fail("more than \(shared.configuration.maxPipelinedRequests) requests sent ahead of their answers", code: .unexpectedServerError)
        }
    }

    private func start(_ buffer: ByteBuffer) {
        guard let context else { return }
        requests += 1
        let request = requests
        let received = NIODeadline.now()
        let requestWaitStart = waitStart
        let prevTotalMs = self.prevTotalMs
        let shared = self.shared
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let bytesIn = buffer.readableBytes
        inFlight = Task {
            let outcome = await processRequest(buffer, shared: shared, prevTotalMs: prevTotalMs)
            eventLoop.execute {
                bound.value.finish(outcome, request: request, bytesIn: bytesIn,
                                   received: received, requestWaitStart: requestWaitStart)
            }
        }
    }

    struct TimedOutput: Sendable {
        var output: PolicyOutput
        var started: NIODeadline
        var ended: NIODeadline
    }

    enum Outcome: Sendable {
        case answer(ByteBuffer, queueMs: Double, inferMs: Double)
        case failure(String)
        /// The request's content was wrong (`ClientInputError`): error text, the connection stays open.
        case rejected(String)
        case cancelled
    }
}

/// Off the event loop: decode, wait for a slot, infer, encode.
private func processRequest(_ buffer: ByteBuffer, shared: PolicyConnectionHandler.Shared,
                            prevTotalMs: Double?) async -> PolicyConnectionHandler.Outcome {
    let observation: NumpyValue
    do {
        let value = try buffer.withUnsafeReadableBytes { try MessagePack.decode(buffer: $0) }
        observation = try NumpyMsgpack.decodeTree(value)
    } catch {
        return .failure("Invalid observation message: \(error)")
    }
    let queued = NIODeadline.now()
    do {
        let timed = try await shared.queue.run { () async throws -> PolicyConnectionHandler.TimedOutput in
            let t0 = NIODeadline.now()
            let out = try await shared.service.inferOutput(observation)
            return PolicyConnectionHandler.TimedOutput(output: out, started: t0, ended: .now())
        }
        let started = timed.started
        // Nothing non-finite reaches a robot, whatever the policy behind the server returns.
        if let values = try? timed.output.actions.floats(), let i = values.firstIndex(where: { !$0.isFinite }) {
            return .failure("Error in policy: the action chunk holds the non-finite value \(values[i]) at index \(i); no actions were sent")
        }
        let inferMs = milliseconds(timed.ended - started)
        let result = ResponseEncoding.result(timed.output, serverInferMs: inferMs, prevTotalMs: prevTotalMs)
        var out = ByteBuffer()
        out.writeBytes(MessagePack.encode(result))
        return .answer(out, queueMs: milliseconds(started - queued), inferMs: inferMs)
    } catch is CancellationError {
        return .cancelled
    } catch let error as ClientInputError {
        return .rejected("Error in policy: \(type(of: error)): \(error)")
    } catch {
        return .failure("Error in policy: \(type(of: error)): \(error)")
    }
}

extension PolicyConnectionHandler {
    private func finish(_ outcome: Outcome, request: Int, bytesIn: Int, received: NIODeadline, requestWaitStart: NIODeadline) {
        inFlight = nil
        guard let context, !closing, context.channel.isActive else { return }
        switch outcome {
        case .cancelled:
            return
        case .failure(let text):
            logger.warning("request failed", metadata: ["request": "\(request)", "error": "\(text)"])
            fail(text, code: .unexpectedServerError)
        case .rejected(let text):
            // A wrong observation (a missing key, a bad RTC field, a NaN): the client is told which and
            // may send a corrected one on the same connection (openpi-client raises on the text frame).
            logger.info("request rejected", metadata: ["request": "\(request)", "error": "\(text)"])
            var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
            buffer.writeString(text)
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: buffer)), promise: nil)
            waitStart = .now()
            if let next = pending.first {
                pending.removeFirst()
                start(next)
            } else if closeWhenIdle {
                goAway()
            }
        case .answer(let bytes, let queueMs, let inferMs):
            let bytesOut = bytes.readableBytes
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: bytes)))
                .assumeIsolated().whenSuccess { [self] in
                    let now = NIODeadline.now()
                    prevTotalMs = milliseconds(now - requestWaitStart)
                    waitStart = now
                    logger.debug("request answered", metadata: [
                        "request": "\(request)", "bytes_in": "\(bytesIn)", "bytes_out": "\(bytesOut)",
                        "queue_ms": "\(rounded(queueMs))", "infer_ms": "\(rounded(inferMs))",
                        "total_ms": "\(rounded(milliseconds(now - received)))",
                    ])
                }
            if let next = pending.first {
                pending.removeFirst()
                start(next)
            } else if closeWhenIdle {
                goAway()
            }
        }
    }

    /// Server shutdown: close now if idle, else after the answer in flight.
    func beginShutdown() {
        if inFlight == nil { goAway() } else { closeWhenIdle = true; pending.removeAll() }
    }

    private func goAway() {
        sendClose(code: .goingAway, reason: "server shutting down")
    }

    /// openpi's error path: the description as a text frame, then close 1011.
    private func fail(_ text: String, code: WebSocketErrorCode) {
        guard let context, !closing else { return }
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: buffer)), promise: nil)
        sendClose(code: code, reason: "Internal server error. Details in previous frame.")
    }

    private func protocolError(_ why: String) {
        logger.warning("websocket protocol error", metadata: ["error": "\(why)"])
        sendClose(code: .protocolError, reason: why)
    }

    private func sendClose(code: WebSocketErrorCode, reason: String) {
        guard let context, !closing else { return }
        closing = true
        inFlight?.cancel()
        pending.removeAll()
        fragments = nil
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(String(reason.utf8.prefix(120)) ?? "")  // control frames carry at most 125 bytes
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
            .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// A data frame's payload, unmasked. NIO's `unmaskedData` XORs byte by byte, which takes ~40 s for
/// 100 MB in a debug build; this XORs 8 bytes at a time and skips the all-zero key (legal in
/// RFC 6455, and XOR with zero is the identity).
func payload(of frame: WebSocketFrame) -> ByteBuffer {
    var data = frame.data
    guard let key = frame.maskKey, key != WebSocketMaskingKey([0, 0, 0, 0]) else { return data }
    let k = [key[0], key[1], key[2], key[3]]
    var word: UInt64 = 0
    withUnsafeMutableBytes(of: &word) { for i in 0 ..< 8 { $0[i] = k[i & 3] } }
    data.withUnsafeMutableReadableBytes { raw in
        let n = raw.count
        var i = 0
        while i + 8 <= n {
            let v = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            raw.storeBytes(of: v ^ word, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < n {
            raw[i] ^= k[i & 3]
            i += 1
        }
    }
    return data
}

func milliseconds(_ t: TimeAmount) -> Double { Double(t.nanoseconds) / 1e6 }

private func rounded(_ ms: Double) -> Double { (ms * 100).rounded() / 100 }
