// Plain HTTP on the policy port: what reaches this handler was not upgraded to a WebSocket.
// `GET /healthz` → 200 "OK\n" (openpi's health check); a refused upgrade because of a wrong or missing
// API key → 401; anything else → 400 (every other path is meant for WebSocket clients).
import NIOCore
import NIOHTTP1
import NIOWebSocket

final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let apiKey: String?
    private var head: HTTPRequestHead?

    init(apiKey: String?) {
        self.apiKey = apiKey
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break  // bodies are ignored (bounded by the HTTP decoder's own limits)
        case .end:
            guard let h = head else { return }
            head = nil
            respond(context: context, to: h)
        }
    }

    private func respond(context: ChannelHandlerContext, to request: HTTPRequestHead) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        if path == "/healthz" && (request.method == .GET || request.method == .HEAD) {
            send(context: context, status: .ok, body: "OK\n", headOnly: request.method == .HEAD)
        } else if apiKey != nil && !Self.authorized(request.headers, apiKey: apiKey) {
            send(context: context, status: .unauthorized, body: "Missing or wrong API key (send exactly one 'Authorization: Api-Key <key>' header).\n")
        } else {
            send(context: context, status: .badRequest, body: "This is an openpi policy server: connect with a WebSocket client (GET /healthz for health).\n")
        }
    }

    /// `Authorization: Api-Key <key>` exactly as openpi's WebsocketClientPolicy sends it. Exactly one
    /// Authorization header is considered: a request with several is refused, so one request cannot
    /// try many guesses.
    static func authorized(_ headers: HTTPHeaders, apiKey: String?) -> Bool {
        guard let apiKey else { return true }
        let values = headers["Authorization"]
        guard values.count == 1 else { return false }
        let v = values[0].trimmingCharacters()
        return v.hasPrefix("Api-Key ") && constantTimeEqual(Array(v.utf8.dropFirst(8)), Array(apiKey.utf8))
    }

    private func send(context: ChannelHandlerContext, status: HTTPResponseStatus, body: String, headOnly: Bool = false) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !headOnly {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A refused upgrade (bad key, bad headers) is reported here before the request itself
        // arrives; the request is answered above. Anything else ends the connection.
        if error is NIOWebSocketUpgradeError { return }
        context.close(promise: nil)
    }
}

/// Comparison whose time does not depend on where the first difference is.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for (x, y) in zip(a, b) { diff |= x ^ y }
    return diff == 0
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
