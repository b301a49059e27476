// Issue 13's server findings as regression tests (loopback only, counts bounded, every wait limited):
// a flood of idle connections must not starve a valid client, slow handshakes and idle clients are
// timed out, several Authorization headers are refused, unmasked frames and RSV bits fail the
// connection with 1002, and non-finite actions never reach a client.
import Foundation
import MessagePack
import XCTest
@testable import PI0Server
#if canImport(Glibc)
import Glibc
#endif

/// A raw TCP connection to 127.0.0.1:port that never speaks (the flood).
func idleSocket(port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    if !connectLoopback(fd, port: port) { close(fd); return nil }
    return fd
}

/// Raises the soft descriptor limit to at least `n` if the hard limit allows; false otherwise.
func ensureDescriptors(_ n: Int) -> Bool {
    var lim = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0 else { return false }
    if lim.rlim_cur >= rlim_t(n) { return true }
    guard lim.rlim_max >= rlim_t(n) else { return false }
    lim.rlim_cur = rlim_t(n)
    return setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0
}

final class ServerHardeningTests: XCTestCase {
    func closeCode(_ client: TestWebSocketClient) throws -> UInt16? {
        while true {
            if case .close(let code, _) = try client.readMessage() { return code }
        }
    }

    func testFloodOfIdleConnectionsDoesNotStarveAValidClient() throws {
        let flood = 1100
        guard ensureDescriptors(flood + 400) else { throw XCTSkip("needs \(flood + 400) file descriptors (ulimit -n)") }
        var config = PolicyServerConfiguration()
        config.maxConnections = 64
        var counts: PolicyServer.ConnectionCounts?
        var waitMs: Double = 0
        let server = PolicyServer(service: FakePolicy(), configuration: {
            var c = config; c.host = "127.0.0.1"; c.port = 0; c.shutdownGraceSeconds = 5; return c }(), logger: quietLogger())
        let port = try runBlocking { try await server.start() }
        defer { try? runBlocking { try await server.shutdown() } }
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        for _ in 0..<flood { if let fd = idleSocket(port: port) { fds.append(fd) } }
        XCTAssertEqual(fds.count, flood)
        let t0 = Date()
        let client = try connectedClient(port: port)
        let r = try request(client, state: [1, 2])
        waitMs = Date().timeIntervalSince(t0) * 1000
        XCTAssertEqual(try r["actions"]?.ndarray?.floats(), expectedActions(state: [1, 2]))
        counts = try runBlocking { try await server.connectionCounts() }
        XCTAssertLessThanOrEqual(counts!.open, 64)
        XCTAssertGreaterThanOrEqual(counts!.evicted, flood - 64)
        print("flood: \(flood) idle connections, valid client answered after \(String(format: "%.1f", waitMs)) ms; \(counts!)")
    }

    func testAllSlotsUpgradedRefusesWith503() throws {
        var config = PolicyServerConfiguration()
        config.maxConnections = 2
        try withServer(configuration: config) { port in
            let a = try connectedClient(port: port), b = try connectedClient(port: port)
            let c = try TestWebSocketClient(port: port, timeoutSeconds: 5)
            let (status, body) = try c.upgrade()
            XCTAssertEqual(status, 503)
            XCTAssertTrue(body.contains("Too many connections"), body)
            // The upgraded clients are still served.
            XCTAssertEqual(try request(a, state: [3])["actions"]?.ndarray?.floats(), expectedActions(state: [3]))
            XCTAssertEqual(try request(b, state: [4])["actions"]?.ndarray?.floats(), expectedActions(state: [4]))
        }
    }

    func testSlowHandshakeIsTimedOut() throws {
        var config = PolicyServerConfiguration()
        config.handshakeTimeoutSeconds = 0.3
        try withServer(configuration: config) { port in
            let slow = try TestWebSocketClient(port: port, timeoutSeconds: 5)
            try slow.sendAll(Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: web".utf8))   // never finished
            let t0 = Date()
            XCTAssertTrue(slow.serverClosedConnection())
            XCTAssertLessThan(Date().timeIntervalSince(t0), 4)
            // An upgraded client outlives the handshake timeout.
            let ok = try connectedClient(port: port)
            Thread.sleep(forTimeInterval: 0.5)
            XCTAssertEqual(try request(ok, state: [1])["actions"]?.ndarray?.floats(), expectedActions(state: [1]))
        }
    }

    func testIdleConnectionIsClosedWith1001() throws {
        var config = PolicyServerConfiguration()
        config.idleTimeoutSeconds = 0.3
        try withServer(configuration: config) { port in
            let client = try connectedClient(port: port)
            XCTAssertEqual(try closeCode(client), 1001)
        }
    }

    func testSeveralAuthorizationHeadersAreRefused() throws {
        var config = PolicyServerConfiguration()
        config.apiKey = "secret"
        try withServer(configuration: config) { port in
            let c = try TestWebSocketClient(port: port, timeoutSeconds: 5)
            var req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            req += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            req += "Authorization: Api-Key wrong\r\nAuthorization: Api-Key secret\r\n\r\n"
            try c.sendAll(Array(req.utf8))
            XCTAssertEqual(try c.readResponseStatus(), 401)
            // One correct header still works.
            XCTAssertNoThrow(try connectedClient(port: port, headers: ["Authorization": "Api-Key secret"]))
        }
        XCTAssertFalse(HTTPHandler.authorized(["Authorization": "Api-Key a", "authorization": "Api-Key b"], apiKey: "b"))
        XCTAssertTrue(HTTPHandler.authorized(["Authorization": "Api-Key b"], apiKey: "b"))
    }

    func testUnmaskedFramesAndRSVBitsFailWith1002() throws {
        try withServer { port in
            let unmasked = try connectedClient(port: port)
            try unmasked.sendAll([0x82, 0x03, 1, 2, 3])   // FIN + binary, mask bit clear
            XCTAssertEqual(try closeCode(unmasked), 1002)
            for rsv: UInt8 in [0x40, 0x20, 0x10] {
                let c = try connectedClient(port: port)
                try c.sendAll([0x80 | rsv | 0x02, 0x80 | 3, 9, 9, 9, 9, 1, 2, 3])
                XCTAssertEqual(try closeCode(c), 1002, "rsv \(rsv)")
            }
            // Others are still served.
            XCTAssertEqual(try request(try connectedClient(port: port), state: [2])["actions"]?.ndarray?.floats(), expectedActions(state: [2]))
        }
    }

    func testNonFiniteActionsNeverReachTheClient() throws {
        try withServer { port in
            let client = try connectedClient(port: port)
            // FakePolicy's actions are state·(t+1) + t: 3e38·2 overflows to +inf.
            try client.sendBinary(observationBytes(state: [3e38]))
            guard case .text(let text) = try client.readMessage() else { return XCTFail("expected an error text frame") }
            XCTAssertTrue(text.contains("non-finite"), text)
            XCTAssertEqual(try closeCode(client), 1011)
            XCTAssertEqual(try request(try connectedClient(port: port), state: [5])["actions"]?.ndarray?.floats(), expectedActions(state: [5]))
        }
    }
}
