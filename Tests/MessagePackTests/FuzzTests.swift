// Seeded, time-bounded fuzzing of the msgpack decoder and the numpy tree decoding
// (Tests/PI0TestSupport/Fuzz.swift, docs/RELIABILITY.md). A message that decodes must re-encode to
// bytes that decode to the same value (no silent change), and the numpy layer must not crash on it.
import Foundation
import PI0TestSupport
import XCTest
@testable import MessagePack

final class MessagePackFuzzTests: XCTestCase {
    func testFuzzDecoding() throws {
        let dir = Bundle.module.resourcePath! + "/Fixtures"
        let seeds = try ["aloha.msgpack", "droid.msgpack", "dtypes.msgpack", "libero.msgpack", "nested_obs.msgpack",
                         "plain.msgpack", "scalars.msgpack", "shapes.msgpack"].map {
            Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)))
        }
        let dictionary: [[UInt8]] = [[0xDD, 0xFF, 0xFF, 0xFF, 0xFF], [0xDF, 0x7F, 0xFF, 0xFF, 0xFF], [0xC6, 0xFF, 0xFF, 0xFF, 0xF0],
                                     [0xDB, 0x80, 0, 0, 0], [0x91, 0x91, 0x91, 0x91], [0xC1], [0xD9, 0xFF]]
        let report = Fuzz.run("msgpack", seeds: seeds, ciCases: 4000, seed: 0x3E55_A6E, dictionary: dictionary) { bytes in
            let value: MessagePackValue
            do { value = try MessagePack.decode(bytes) } catch { return .rejected }
            let encoded = MessagePack.encode(value)
            let again: MessagePackValue
            do { again = try MessagePack.decode(encoded) } catch {
                return .wrong("re-encoded value does not decode: \(error)")
            }
            // Compared as bytes, so that a NaN float (never equal to itself) compares equal.
            if MessagePack.encode(again) != encoded { return .wrong("re-encoding changed the value") }
            if let tree = try? NumpyMsgpack.decodeTree(value) {
                // Arrays that decode must hold as many elements as their shape says.
                if case .map(let items) = tree {
                    for (_, v) in items {
                        if case .array(let a) = v, let f = try? a.floats(), f.count != a.shape.reduce(1, *) {
                            return .wrong("ndarray with shape \(a.shape) has \(f.count) values")
                        }
                    }
                }
            }
            return .accepted
        }
        XCTAssertGreaterThan(report.rejected, 0)
        XCTAssertGreaterThan(report.accepted, 0)
    }
}
