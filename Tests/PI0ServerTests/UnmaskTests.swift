// The server's word-at-a-time unmasking must agree with NIO's byte-wise `unmaskedData`.
import NIOCore
import NIOWebSocket
import XCTest
@testable import PI0Server

final class UnmaskTests: XCTestCase {
    func testMatchesNIOForEveryLengthAndOffset() throws {
        let key = try XCTUnwrap(WebSocketMaskingKey([0x9d, 0x02, 0x71, 0xe4]))
        for n in 0 ..< 40 {
            var data = ByteBuffer(bytes: (0 ..< n + 3).map { UInt8(truncatingIfNeeded: $0 &* 37) })
            data.moveReaderIndex(forwardBy: 3)  // a slice that does not start at offset 0 of its storage
            let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: data)
            XCTAssertEqual(payload(of: frame), frame.unmaskedData, "length \(n)")
        }
        let zero = WebSocketFrame(fin: true, opcode: .binary, maskKey: WebSocketMaskingKey([0, 0, 0, 0]), data: ByteBuffer(bytes: [1, 2, 3]))
        XCTAssertEqual(payload(of: zero), ByteBuffer(bytes: [1, 2, 3]))
    }
}
