// The conversation of docs/PROTOCOL.md, byte level, against a running server.
import MessagePack
import XCTest
@testable import PI0Server

final class PolicyServerTests: XCTestCase {
    func testHealthzAndPlainHTTP() throws {
        try withServer { port in
            let (status, body) = try TestWebSocketClient(port: port).get("/healthz")
            XCTAssertEqual(status, 200)
            XCTAssertEqual(body, "OK\n")
            let other = try TestWebSocketClient(port: port).get("/infer")
            XCTAssertEqual(other.status, 400, "a plain GET on a websocket path")
        }
    }

    func testMetadataFirstThenOneAnswerPerObservation() throws {
        let policy = FakePolicy()
        try withServer(policy) { port in
            let client = try TestWebSocketClient(port: port)
            XCTAssertEqual(try client.upgrade(path: "/any/path").status, 101)
            XCTAssertEqual(try client.readBinary(), MessagePack.encode(policy.metadata))

            let state: [Float] = [0.5, -1.25, 3]
            try client.sendBinary(observationBytes(state: state))
            let raw = try MessagePack.decode(try client.readBinary())
            // Key order and kinds exactly as openpi's server packs them.
            guard case .map(let pairs) = raw else { return XCTFail("result is not a map") }
            XCTAssertEqual(pairs.map(\.0), [.string("actions"), .string("policy_timing"), .string("server_timing")])
            guard case .map(let arrayPairs)? = raw["actions"] else { return XCTFail("actions is not a map") }
            XCTAssertEqual(arrayPairs.map(\.0), ["__ndarray__", "data", "dtype", "shape"].map { .binary(Array($0.utf8)) })
            guard case .double? = raw["policy_timing"]?["infer_ms"] else { return XCTFail("policy_timing.infer_ms must be float64") }
            guard case .map(let server1)? = raw["server_timing"] else { return XCTFail("server_timing missing") }
            XCTAssertEqual(server1.map(\.0), [.string("infer_ms")], "no prev_total_ms on the first request")

            let result = try NumpyMsgpack.decodeTree(raw)
            let actions = try XCTUnwrap(result["actions"]?.ndarray)
            XCTAssertEqual(actions.dtype, "<f4")
            XCTAssertEqual(actions.shape, [4, 3])
            XCTAssertEqual(try actions.floats(), [0.5, -1.25, 3, 2, -1.5, 7, 3.5, -1.75, 11, 5, -2, 15])

            let second = try request(client, state: [1])
            XCTAssertEqual(try second["actions"]?.ndarray?.floats(), [1, 3, 5, 7])
            guard case .map(let server2)? = second["server_timing"] else { return XCTFail("server_timing missing") }
            XCTAssertEqual(server2.map(\.0), [.string("infer_ms"), .string("prev_total_ms")])
            guard case .value(.double(let prev)) = server2[1].1 else { return XCTFail("prev_total_ms must be float64") }
            XCTAssertGreaterThan(prev, 0)
        }
    }

    func testPolicyErrorSendsTextThenClose1011AndServerKeepsServing() throws {
        try withServer { port in
            let client = try connectedClient(port: port)
            try client.sendBinary(observationBytes(state: [1], extra: [("fail", .value(.bool(true)))]))
            guard case .text(let text) = try client.readMessage() else { return XCTFail("expected a text frame") }
            XCTAssertTrue(text.contains("FakePolicy failure requested by the observation"), text)
            guard case .close(let code, _) = try client.readMessage() else { return XCTFail("expected a close frame") }
            XCTAssertEqual(code, 1011)
            XCTAssertTrue(client.serverClosedConnection())

            let other = try connectedClient(port: port)
            XCTAssertEqual(try request(other, state: [2])["actions"]?.ndarray?.floats(), [2, 5, 8, 11])
        }
    }

    /// A wrong observation (here FakePolicy's "reject": an ObservationError) is answered with the error text
    /// and the same connection serves the next, corrected observation.
    func testClientInputErrorKeepsTheConnectionUsable() throws {
        try withServer { port in
            let client = try connectedClient(port: port)
            try client.sendBinary(observationBytes(state: [1], extra: [("reject", .value(.bool(true)))]))
            guard case .text(let text) = try client.readMessage() else { return XCTFail("expected a text frame") }
            XCTAssertTrue(text.contains("observation 'reject'"), text)
            XCTAssertEqual(try request(client, state: [2])["actions"]?.ndarray?.floats(), [2, 5, 8, 11])
        }
    }

    func testInvalidMessagesAreAnsweredWithTextAnd1011() throws {
        let valid = observationBytes(state: [1, 2])
        let cases: [(String, (TestWebSocketClient) throws -> Void, String)] = [
            ("garbage", { try $0.sendBinary([0xc1, 0xff, 0x00, 0x13]) }, "invalid type byte 0xc1"),
            ("truncated", { try $0.sendBinary(Array(valid.prefix(valid.count - 5))) }, "MessagePack"),
            ("trailing", { try $0.sendBinary(valid + [0x00]) }, "trailing"),
            ("bad ndarray", { try $0.sendBinary(MessagePack.encode(.map([(.binary(Array("__ndarray__".utf8)), .bool(true))]))) }, "ndarray"),
            ("text frame", { try $0.sendFrame(opcode: 0x1, payload: Array("hello".utf8)) }, "text messages"),
            ("missing state", { try $0.sendBinary(MessagePack.encode(.map([]))) }, "observation/state missing"),
        ]
        try withServer { port in
            for (name, send, expected) in cases {
                let client = try connectedClient(port: port)
                try send(client)
                guard case .text(let text) = try client.readMessage() else { XCTFail("\(name): expected text"); continue }
                XCTAssertTrue(text.contains(expected), "\(name): \(text)")
                XCTAssertEqual(try client.readMessage(), .close(code: 1011, reason: "Internal server error. Details in previous frame."), name)
            }
            XCTAssertEqual(try request(try connectedClient(port: port), state: [0])["actions"]?.ndarray?.floats(), [0, 1, 2, 3])
        }
    }

    func testFragmentedMessageWithInterleavedPing() throws {
        try withServer { port in
            let client = try connectedClient(port: port)
            let bytes = observationBytes(state: [4, 5])
            let a = bytes.count / 3, b = 2 * bytes.count / 3
            try client.sendFrame(opcode: 0x2, payload: Array(bytes[..<a]), fin: false)
            try client.sendFrame(opcode: 0x9, payload: [1, 2, 3])  // control frames may interleave
            try client.sendFrame(opcode: 0x0, payload: Array(bytes[a ..< b]), fin: false)
            try client.sendFrame(opcode: 0x0, payload: Array(bytes[b...]), fin: true)
            let pong = try client.readFrame()
            XCTAssertEqual(pong.opcode, 0xa)
            XCTAssertEqual(pong.payload, [1, 2, 3])
            let result = try NumpyMsgpack.unpack(try client.readBinary())
            XCTAssertEqual(try result["actions"]?.ndarray?.floats(), [4, 5, 9, 11, 14, 17, 19, 23])
        }
    }

    /// One message may wait behind the one in flight (answered in order); a third is refused.
    func testPipelinedRequestsAreBounded() throws {
        try withServer { port in
            let client = try connectedClient(port: port)
            let slow: [(String, NumpyValue)] = [("sleep_ms", .value(.int(200)))]
            try client.sendBinary(observationBytes(state: [1], extra: slow))
            try client.sendBinary(observationBytes(state: [2]))
            XCTAssertEqual(try NumpyMsgpack.unpack(try client.readBinary())["actions"]?.ndarray?.floats(), [1, 3, 5, 7])
            XCTAssertEqual(try NumpyMsgpack.unpack(try client.readBinary())["actions"]?.ndarray?.floats(), [2, 5, 8, 11])

            try client.sendBinary(observationBytes(state: [1], extra: slow))
            try client.sendBinary(observationBytes(state: [2]))
            try client.sendBinary(observationBytes(state: [3]))
            guard case .text(let text) = try client.readMessage() else { return XCTFail("expected text") }
            XCTAssertTrue(text.contains("more than 1 requests sent ahead"), text)
            guard case .close(let code, _) = try client.readMessage() else { return XCTFail("expected close") }
            XCTAssertEqual(code, 1011)
        }
    }

    func testClientCloseIsEchoed() throws {
        try withServer { port in
            let client = try connectedClient(port: port)
            try client.sendFrame(opcode: 0x8, payload: [0x03, 0xe8])  // 1000 normal closure
            XCTAssertEqual(try client.readMessage(), .close(code: 1000, reason: ""))
            XCTAssertTrue(client.serverClosedConnection())
        }
    }

    func testAPIKey() throws {
        try withServer(configuration: .init(apiKey: "s3cret")) { port in
            XCTAssertEqual(try TestWebSocketClient(port: port).upgrade().status, 401)
            XCTAssertEqual(try TestWebSocketClient(port: port).upgrade(headers: ["Authorization": "Api-Key wrong"]).status, 401)
            XCTAssertEqual(try TestWebSocketClient(port: port).upgrade(headers: ["Authorization": "Bearer s3cret"]).status, 401)
            let client = try connectedClient(port: port, headers: ["Authorization": "Api-Key s3cret"])
            XCTAssertEqual(try request(client, state: [1])["actions"]?.ndarray?.shape, [4, 1])
            XCTAssertEqual(try TestWebSocketClient(port: port).get("/healthz").status, 200, "health checks need no key")
        }
    }

    func testShutdownClosesIdleConnectionsWithGoingAway() throws {
        var configuration = PolicyServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.shutdownGraceSeconds = 5
        let server = PolicyServer(service: FakePolicy(), configuration: configuration, logger: quietLogger())
        let port = try runBlocking { try await server.start() }
        let client = try connectedClient(port: port)
        try runBlocking { try await server.shutdown() }
        XCTAssertEqual(try client.readMessage(), .close(code: 1001, reason: "server shutting down"))
        XCTAssertThrowsError(try TestWebSocketClient(port: port), "no longer accepting")
        XCTAssertNoThrow(try runBlocking { try await server.shutdown() }, "a second shutdown is harmless")
    }
}
