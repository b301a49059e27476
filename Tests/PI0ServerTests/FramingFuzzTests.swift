// Seeded, time-bounded fuzzing of the WebSocket framing and message handling of a live server on
// loopback (Tests/PI0TestSupport/Fuzz.swift, docs/RELIABILITY.md). Each case upgrades a connection,
// sends mutated frame bytes and, if nothing comes back within 30 ms (the server waits for the rest of
// a frame), half-closes; the server must answer or close within the socket
// timeout (never hang), any answer must carry finite actions, and a valid client is served between
// cases whatever the previous ones sent.
import Foundation
import MessagePack
import PI0TestSupport
import XCTest
@testable import PI0Server

/// One client frame, masked with a fixed key.
func clientFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true) -> [UInt8] {
    var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
    let n = payload.count
    if n < 126 { out.append(0x80 | UInt8(n)) } else if n <= 0xffff { out += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xff)] } else {
        out.append(0x80 | 127)
        out += (0 ..< 8).reversed().map { UInt8(truncatingIfNeeded: UInt64(n) >> (8 * UInt64($0))) }
    }
    let key: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]
    out += key
    out += payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
    return out
}

final class FramingFuzzTests: XCTestCase {
    func testFuzzFramesAgainstALiveServer() throws {
        let obs = observationBytes(state: [1, 2, 3])
        let half = obs.count / 2
        let seeds: [[UInt8]] = [
            clientFrame(opcode: 0x2, payload: obs),
            clientFrame(opcode: 0x9, payload: Array("ping".utf8)) + clientFrame(opcode: 0x2, payload: obs),
            clientFrame(opcode: 0x2, payload: Array(obs[..<half]), fin: false) + clientFrame(opcode: 0x0, payload: Array(obs[half...])),
            clientFrame(opcode: 0x8, payload: [0x03, 0xE8]),
            clientFrame(opcode: 0x1, payload: Array("hello".utf8)),
        ]
        var config = PolicyServerConfiguration()
        config.maxMessageBytes = 1 << 20
        try withServer(configuration: config) { port in
            var served = 0
            let report = Fuzz.run("websocket", seeds: seeds, ciCases: 1000, seed: 0x3E85_0C, hangSeconds: 10) { bytes in
                do {
                    // Liveness: a valid client between cases.
                    if bytes.count % 50 == 0 {
                        let r = try request(try connectedClient(port: port), state: [4, 5])
                        guard try r["actions"]?.ndarray?.floats() == expectedActions(state: [4, 5]) else { return .wrong("valid client got a wrong answer") }
                        served += 1
                    }
                    let client = try TestWebSocketClient(port: port, timeoutSeconds: 5)
                    guard try client.upgrade().status == 101 else { return .wrong("upgrade refused") }
                    _ = try client.readBinary()
                    try? client.sendAll(bytes)
                    // A complete request is answered within milliseconds; a server still waiting for
                    // the rest of a frame (or for more frames) gets EOF instead.
                    var halfClosed = false
                    while true {
                        if !halfClosed && !client.readable(withinMilliseconds: 30) { client.finishSending(); halfClosed = true }
                        let f: TestWebSocketClient.Frame
                        do { f = try client.readFrame() } catch let e as TestClientError where e.description == "EOF" || e.description.contains("errno 104") {
                            return .rejected   // closed (or reset) by the server
                        }
                        switch f.opcode {
                        case 0x2:
                            let tree = try NumpyMsgpack.unpack(f.payload)
                            guard let a = try tree["actions"]?.ndarray?.floats(), a.allSatisfy(\.isFinite) else {
                                return .wrong("answer without finite actions")
                            }
                            return .accepted   // the connection stays open for the next request
                        case 0x8: return .rejected
                        default: continue      // pong, error text before the close
                        }
                    }
                } catch {
                    return .wrong("no answer and no close: \(error)")
                }
            }
            XCTAssertEqual(report.wrong, 0)
            XCTAssertGreaterThan(report.rejected, 0)
            XCTAssertGreaterThan(served, 0)
            // Finally a valid client is still served.
            XCTAssertEqual(try request(try connectedClient(port: port), state: [7])["actions"]?.ndarray?.floats(), expectedActions(state: [7]))
        }
    }
}
