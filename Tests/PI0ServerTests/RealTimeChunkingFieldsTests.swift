// The optional real-time chunking fields of an openpi observation (docs/SERVER.md, docs/RTC.md).
import XCTest
import MessagePack
@testable import PI0Server
import PI0Runtime

final class RealTimeChunkingFieldsTests: XCTestCase {
    let mapper = ObservationMapper(layout: .libero, checkpointCameras: ["observation.images.top"], stateDim: 2)

    func observation(_ extra: [(String, NumpyValue)]) -> NumpyValue {
        let image = NumpyValue.array(NDArray(uint8: [UInt8](repeating: 9, count: 4 * 4 * 3), shape: [4, 4, 3]))
        let base: [(String, NumpyValue)] = [("observation/image", image), ("observation/state", .array(NDArray(floats: [1, 2], shape: [2]))),
                                            ("prompt", .value(.string("go")))]
        return .map((base + extra).map { (.string($0.0), $0.1) })
    }

    func chunk(_ rows: Int, _ width: Int, _ value: (Int) -> Float = { Float($0) / 10 }) -> NumpyValue {
        .array(NDArray(floats: (0..<(rows * width)).map(value), shape: [rows, width]))
    }

    func testAbsentFieldsLeaveTheObservationAsBefore() throws {
        XCTAssertNil(try mapper.map(observation([])).previousChunk)
    }

    func testFieldsAreRead() throws {
        let o = try mapper.map(observation([("rtc_prev_chunk", chunk(6, 7)), ("rtc_inference_delay", .value(.int(2))),
                                            ("rtc_execution_horizon", .value(.int(5)))]))
        XCTAssertEqual(o.previousChunk, PreviousChunk(actions: (0..<42).map { Float($0) / 10 }, steps: 6, inferenceDelay: 2, executionHorizon: 5))
        // Nested lists (what a client sends without numpy) are accepted too; the horizon is optional.
        let rows = NumpyValue.list((0..<3).map { r in .list((0..<2).map { c in .value(.double(Double(r * 2 + c))) }) })
        let o2 = try mapper.map(observation([("rtc_prev_chunk", rows), ("rtc_inference_delay", .value(.int(0)))]))
        XCTAssertEqual(o2.previousChunk, PreviousChunk(actions: [0, 1, 2, 3, 4, 5], steps: 3, inferenceDelay: 0))
    }

    func testBadFieldsNameTheKey() {
        func expect(_ extra: [(String, NumpyValue)], _ key: String, line: UInt = #line) {
            XCTAssertThrowsError(try mapper.map(observation(extra)), line: line) { error in
                switch error as? ObservationError {
                case .badValue(let k, _)?, .missingKey(let k)?: XCTAssertEqual(k, key, line: line)
                default: XCTFail("\(error)", line: line)
                }
            }
        }
        expect([("rtc_inference_delay", .value(.int(2)))], "rtc_inference_delay")
        expect([("rtc_prev_chunk", chunk(4, 7))], "rtc_inference_delay")
        expect([("rtc_prev_chunk", chunk(4, 7, { $0 == 9 ? .nan : 1 })), ("rtc_inference_delay", .value(.int(1)))], "rtc_prev_chunk")
        expect([("rtc_prev_chunk", .array(NDArray(floats: [1, 2, 3], shape: [3]))), ("rtc_inference_delay", .value(.int(1)))], "rtc_prev_chunk")
        expect([("rtc_prev_chunk", chunk(4, 7)), ("rtc_inference_delay", .value(.int(-1)))], "rtc_inference_delay")
        expect([("rtc_prev_chunk", chunk(4, 7)), ("rtc_inference_delay", .value(.double(1.5)))], "rtc_inference_delay")
        expect([("rtc_prev_chunk", chunk(4, 7)), ("rtc_inference_delay", .value(.int(1))), ("rtc_execution_horizon", .value(.string("x")))],
               "rtc_execution_horizon")
    }
}
