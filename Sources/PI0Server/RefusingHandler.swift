// A connection beyond `PolicyServerConfiguration.maxConnections` when every slot holds an upgraded
// client (connections still in their handshake are evicted instead, see PolicyServer): answered with
// `503 Service Unavailable` and `Retry-After: 1` (a WebSocket client reports the status, e.g.
// openpi's `websockets` raises InvalidStatus 503), without parsing anything it sends. The output side
// is shut after the answer, what the client sends meanwhile is discarded, and the socket is closed
// after at most one second, so a flood cannot make refused connections pile up.
import NIOCore

final class RefusingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let body = "Too many connections: the server is at its connection cap; retry later.\n"
    static let response = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + "Retry-After: 1\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body

    private var answered = false

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { answer(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        answer(context)
        context.fireChannelActive()
    }

    private func answer(_ context: ChannelHandlerContext) {
        guard !answered else { return }
        answered = true
        let channel = context.channel
        let closer = context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in closer.cancel() }
        let buffer = channel.allocator.buffer(string: Self.response)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}   // discarded

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
