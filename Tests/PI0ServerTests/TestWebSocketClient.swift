// A deliberately small, blocking WebSocket client over a raw TCP socket with hand-written frames
// (RFC 6455 §5), so the tests control every byte: fragments, pings, garbage, abrupt disconnects.
// Every read has a socket timeout, so a misbehaving server fails a test instead of hanging it.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct TestClientError: Error, CustomStringConvertible {
    let description: String
}

/// Used by one thread at a time (handed to a client thread whole), hence @unchecked.
final class TestWebSocketClient: @unchecked Sendable {
    struct Frame {
        var fin: Bool
        var opcode: UInt8
        var payload: [UInt8]
    }

    enum Message: Equatable {
        case binary([UInt8])
        case text(String)
        case close(code: UInt16?, reason: String)
    }

    private let fd: Int32
    private var buffer: [UInt8] = []
    private var offset = 0

    /// Opens a TCP connection to 127.0.0.1:port.
    init(port: Int, timeoutSeconds: Int = 30) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestClientError(description: "socket() failed") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        guard connectLoopback(fd, port: port) else {
            close(fd)
            throw TestClientError(description: "connect to port \(port) failed: errno \(errno)")
        }
    }

    deinit { close(fd) }

    /// True when bytes (or EOF) can be read within `milliseconds`.
    func readable(withinMilliseconds ms: Int32) -> Bool {
        if offset < buffer.count { return true }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, ms) > 0
    }

    /// Half-closes: the server sees EOF, this side can still read its answer.
    func finishSending() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes the TCP connection at once (no close handshake): a client that dies.
    func abort() {
        shutdown(fd, Int32(SHUT_RDWR))
    }

    // MARK: HTTP

    /// Sends the upgrade request; returns the HTTP status (101 on success) and the response body.
    @discardableResult
    func upgrade(path: String = "/", headers: [String: String] = [:]) throws -> (status: Int, body: String) {
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for (k, v) in headers { request += "\(k): \(v)\r\n" }
        try sendAll(Array((request + "\r\n").utf8))
        return try readHTTPResponse()
    }

    /// A plain HTTP GET (connection closed by the server afterwards).
    func get(_ path: String) throws -> (status: Int, body: String) {
        try sendAll(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        return try readHTTPResponse()
    }

    /// The status of the HTTP response to a request sent by hand.
    func readResponseStatus() throws -> Int { try readHTTPResponse().status }

    private func readHTTPResponse() throws -> (status: Int, body: String) {
        let end: [UInt8] = [13, 10, 13, 10]
        while true {
            if let r = findSubsequence(end) {
                let head = String(decoding: buffer[offset ..< r], as: UTF8.self)
                offset = r + 4
                let lines = head.components(separatedBy: "\r\n")
                let parts = lines[0].split(separator: " ")
                guard parts.count >= 2, let status = Int(parts[1]) else { throw TestClientError(description: "bad status line \(lines[0])") }
                var length = 0
                for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
                    length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
                let body = try read(length)
                return (status, String(decoding: body, as: UTF8.self))
            }
            try fill()
        }
    }

    private func findSubsequence(_ pattern: [UInt8]) -> Int? {
        guard buffer.count - offset >= pattern.count else { return nil }
        for i in offset ... buffer.count - pattern.count where buffer[i] == pattern[0] {
            if Array(buffer[i ..< i + pattern.count]) == pattern { return i }
        }
        return nil
    }

    // MARK: frames

    /// Sends one frame, masked as RFC 6455 requires of clients. A zero masking key (legal, and
    /// XOR with zero is the identity) keeps 100 MB test messages cheap to send.
    func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, zeroMask: Bool = false) throws {
        var header: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let n = payload.count
        if n < 126 {
            header.append(0x80 | UInt8(n))
        } else if n <= 0xffff {
            header += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xff)]
        } else {
            header.append(0x80 | 127)
            header += (0 ..< 8).reversed().map { UInt8(truncatingIfNeeded: UInt64(n) >> (8 * UInt64($0))) }
        }
        if zeroMask {
            header += [0, 0, 0, 0]
            try sendAll(header)
            try sendAll(payload)
        } else {
            let key: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]
            header += key
            var masked = payload
            for i in masked.indices { masked[i] ^= key[i & 3] }
            try sendAll(header + masked)
        }
    }

    func sendBinary(_ payload: [UInt8], zeroMask: Bool = false) throws {
        try sendFrame(opcode: 0x2, payload: payload, zeroMask: zeroMask)
    }

    func readFrame() throws -> Frame {
        let b0 = try read(1)[0], b1 = try read(1)[0]
        guard b1 & 0x80 == 0 else { throw TestClientError(description: "server frames must not be masked") }
        var n = UInt64(b1 & 0x7f)
        if n == 126 {
            n = try read(2).reduce(0) { $0 << 8 | UInt64($1) }
        } else if n == 127 {
            n = try read(8).reduce(0) { $0 << 8 | UInt64($1) }
        }
        return Frame(fin: b0 & 0x80 != 0, opcode: b0 & 0x0f, payload: try read(Int(n)))
    }

    /// The next data or close message, reassembling fragments; pongs are skipped.
    func readMessage() throws -> Message {
        var data: [UInt8] = []
        var opcode: UInt8?
        while true {
            let f = try readFrame()
            switch f.opcode {
            case 0x8:
                let code = f.payload.count >= 2 ? UInt16(f.payload[0]) << 8 | UInt16(f.payload[1]) : nil
                return .close(code: code, reason: String(decoding: f.payload.dropFirst(2), as: UTF8.self))
            case 0x9, 0xa: continue
            case 0x0: data += f.payload
            default: opcode = f.opcode; data = f.payload
            }
            if f.fin {
                return opcode == 0x1 ? .text(String(decoding: data, as: UTF8.self)) : .binary(data)
            }
        }
    }

    func readBinary() throws -> [UInt8] {
        let m = try readMessage()
        guard case .binary(let bytes) = m else { throw TestClientError(description: "expected a binary message, got \(m)") }
        return bytes
    }

    /// True when the server has closed the TCP connection (EOF), waiting up to the socket timeout.
    func serverClosedConnection() -> Bool {
        do {
            while true { _ = try readFrame() }
        } catch let e as TestClientError {
            return e.description == "EOF"
        } catch {
            return false
        }
    }

    // MARK: raw I/O

    func sendAll(_ bytes: [UInt8]) throws {
        var sent = 0
        try bytes.withUnsafeBytes { raw in
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                guard n > 0 else { throw TestClientError(description: "send failed: errno \(errno)") }
                sent += n
            }
        }
    }

    private func read(_ count: Int) throws -> [UInt8] {
        while buffer.count - offset < count { try fill() }
        let out = Array(buffer[offset ..< offset + count])
        offset += count
        if offset > 1 << 20 && offset == buffer.count {
            buffer.removeAll(keepingCapacity: false)
            offset = 0
        }
        return out
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { throw TestClientError(description: "EOF") }
        guard n > 0 else { throw TestClientError(description: "recv failed: errno \(errno)") }
        buffer += chunk[0 ..< n]
    }
}

/// Connects socket `fd` to 127.0.0.1:port; true on success.
func connectLoopback(_ fd: Int32, port: Int) -> Bool {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return rc == 0
}
