// Load, size limits, dead clients and queue fairness. Figures printed here are the ones quoted in
// docs/SERVER.md (run with `swift test --filter ServerRobustnessTests`).
import Foundation
import MessagePack
import XCTest
@testable import PI0Server

final class ServerRobustnessTests: XCTestCase {
    /// 8 clients × 50 requests, each client with its own states: every answer must be its own.
    func testEightConcurrentClientsFiftyRequestsEach() throws {
        let clients = 8, requests = 50
        let latencies = Locked<[Double]>([])
        let failures = Locked<[String]>([])
        let rssBefore = residentMiB()
        try withServer { port in
            let group = DispatchGroup()
            let start = Date()
            for c in 0 ..< clients {
                group.enter()
                let thread = Thread {
                    defer { group.leave() }
                    do {
                        let client = try connectedClient(port: port)
                        for r in 0 ..< requests {
                            let state: [Float] = [Float(c), Float(r), Float(c * 1000 + r) / 7]
                            let t0 = Date()
                            let result = try request(client, state: state)
                            let ms = Date().timeIntervalSince(t0) * 1000
                            let got = try result["actions"]?.ndarray?.floats()
                            latencies.with { $0.append(ms) }
                            if got != expectedActions(state: state) {
                                failures.with { $0.append("client \(c) request \(r): \(String(describing: got))") }
                            }
                        }
                    } catch {
                        failures.with { $0.append("client \(c): \(error)") }
                    }
                }
                thread.start()
            }
            XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
            let seconds = Date().timeIntervalSince(start)
            let latencies = latencies.with { $0 }
            XCTAssertEqual(failures.with { $0 }, [])
            XCTAssertEqual(latencies.count, clients * requests)
            if !latencies.isEmpty {
                print(String(format: "[server figures] 8x50 requests: %.2f s, %.0f req/s, latency p50 %.2f ms p95 %.2f ms max %.2f ms",
                             seconds, Double(latencies.count) / seconds, percentile(latencies, 0.5),
                             percentile(latencies, 0.95), latencies.max()!))
            }
        }
        if let a = rssBefore, let b = residentMiB() { print(String(format: "[server figures] RSS %.1f → %.1f MiB over 400 requests", a, b)) }
    }

    /// 100 MB observations are within the default 256 MB limit: accepted and answered correctly.
    func testHundredMegabyteObservationIsAccepted() throws {
        let image = NDArray(uint8: [UInt8](repeating: 3, count: 100_000_000), shape: [100, 1000, 1000])
        let bytes = observationBytes(state: [1, 2], extra: [("big", .array(image))])
        XCTAssertGreaterThan(bytes.count, 100_000_000)
        let rssBefore = residentMiB()
        try withServer { port in
            let client = try connectedClient(port: port)
            for round in 0 ..< 2 {
                let t0 = Date()
                try client.sendBinary(bytes, zeroMask: true)
                let result = try NumpyMsgpack.unpack(try client.readBinary())
                XCTAssertEqual(try result["actions"]?.ndarray?.floats(), expectedActions(state: [1, 2]))
                print(String(format: "[server figures] 100 MB observation round %d: %.0f ms round trip, RSS %.0f MiB",
                             round, Date().timeIntervalSince(t0) * 1000, residentMiB() ?? -1))
            }
            // The server is still responsive for small requests afterwards.
            XCTAssertEqual(try request(client, state: [0])["actions"]?.ndarray?.floats(), [0, 1, 2, 3])
        }
        if let a = rssBefore, let b = residentMiB() { print(String(format: "[server figures] RSS %.0f → %.0f MiB after two 100 MB requests", a, b)) }
    }

    /// Over the configured limit: one oversized frame is refused by the frame decoder with close 1009,
    /// an oversized fragmented message with a text frame and close 1009. The server keeps serving.
    func testOversizedMessagesAreRefusedCleanly() throws {
        try withServer(configuration: .init(maxMessageBytes: 1 << 20)) { port in
            // Only the header of a 2 MiB frame: the decoder refuses it from the declared length alone
            // (sending the payload too would race the server's close and fail with EPIPE).
            let single = try connectedClient(port: port)
            try single.sendAll([0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x20, 0, 0, 1, 2, 3, 4])
            XCTAssertEqual(try single.readMessage(), .close(code: 1009, reason: ""))

            let pieces = try connectedClient(port: port)
            try pieces.sendFrame(opcode: 0x2, payload: [UInt8](repeating: 0, count: 600_000), fin: false, zeroMask: true)
            try pieces.sendFrame(opcode: 0x0, payload: [UInt8](repeating: 0, count: 600_000), fin: false, zeroMask: true)
            guard case .text(let text) = try pieces.readMessage() else { return XCTFail("expected text") }
            XCTAssertTrue(text.contains("larger than the limit of 1048576 bytes"), text)
            guard case .close(let code, _) = try pieces.readMessage() else { return XCTFail("expected close") }
            XCTAssertEqual(code, 1009)

            XCTAssertEqual(try request(try connectedClient(port: port), state: [1])["actions"]?.ndarray?.count, 4)
        }
    }

    func testContinuationWithoutStartIsAProtocolError() throws {
        try withServer { port in
            let client = try connectedClient(port: port)
            try client.sendFrame(opcode: 0x0, payload: [1, 2, 3])
            guard case .close(let code, _) = try client.readMessage() else { return XCTFail("expected close") }
            XCTAssertEqual(code, 1002)
        }
    }

    /// A client that dies mid-request: its running inference is cancelled, its queued request never
    /// runs, and the next client is served.
    func testClientDisconnectingMidRequestDoesNotStallOthers() throws {
        let policy = FakePolicy()
        try withServer(policy) { port in
            let running = try connectedClient(port: port)
            let queued = try connectedClient(port: port)
            try running.sendBinary(observationBytes(state: [1], extra: [("sleep_ms", .value(.int(800)))]))
            Thread.sleep(forTimeInterval: 0.2)
            try queued.sendBinary(observationBytes(state: [2]))
            Thread.sleep(forTimeInterval: 0.1)
            queued.abort()
            running.abort()
            Thread.sleep(forTimeInterval: 0.1)

            let t0 = Date()
            let next = try connectedClient(port: port)
            XCTAssertEqual(try request(next, state: [3])["actions"]?.ndarray?.floats(), [3, 7, 11, 15])
            XCTAssertLessThan(Date().timeIntervalSince(t0), 0.5, "the dead client's sleeping inference was cancelled")
            let (calls, completed) = try runBlocking { (await policy.counter.calls, await policy.counter.completed) }
            XCTAssertEqual(calls, 2, "the queued request of the dead client never ran")
            XCTAssertEqual(completed, 1)
        }
    }

    /// With one inference slot, requests from different clients are served in arrival order.
    func testQueueIsFirstInFirstOut() throws {
        try withServer { port in
            let clients = try (0 ..< 3).map { _ in try connectedClient(port: port) }
            let order = Locked<[Int]>([])
            let group = DispatchGroup()
            for (i, client) in clients.enumerated() {
                group.enter()
                Thread {
                    defer { group.leave() }
                    _ = try? request(client, state: [Float(i)], extra: [("sleep_ms", .value(.int(150)))])
                    order.with { $0.append(i) }
                }.start()
                Thread.sleep(forTimeInterval: 0.05)  // arrival order 0, 1, 2
            }
            XCTAssertEqual(group.wait(timeout: .now() + 10), .success)
            XCTAssertEqual(order.with { $0 }, [0, 1, 2])
        }
    }
}
