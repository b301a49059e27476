// Mapping openpi observations onto a checkpoint's cameras and state.
import XCTest
import MessagePack
@testable import PI0Server
import PI0Runtime

final class ObservationLayoutTests: XCTestCase {
    let cams = ["observation.images.top", "observation.images.wrist"]

    func image(_ shape: [Int], value: UInt8 = 7) -> NumpyValue {
        .array(NDArray(uint8: [UInt8](repeating: value, count: shape.reduce(1, *)), shape: shape))
    }
    func floats(_ v: [Float]) -> NumpyValue { .array(NDArray(floats: v, shape: [v.count])) }
    func map(_ pairs: [(String, NumpyValue)]) -> NumpyValue { .map(pairs.map { (.string($0.0), $0.1) }) }

    func testAlohaMapsTopViewFirstAndPadsState() throws {
        let m = ObservationMapper(layout: .aloha, checkpointCameras: cams, stateDim: 16, strict: false)
        let obs = map([("state", floats((0..<14).map(Float.init))),
                       ("images", map([("cam_high", image([3, 10, 12], value: 1)), ("cam_left_wrist", image([3, 10, 12], value: 2)),
                                       ("cam_low", image([3, 10, 12], value: 3))])),
                       ("prompt", .value(.string("fold")))])
        let o = try m.map(obs)
        XCTAssertEqual(Set(o.images.keys), Set(cams))                  // cam_low has no slot and is not used
        guard case .uint8(let top)? = o.images["observation.images.top"]?.pixels else { return XCTFail() }
        XCTAssertEqual(top.first, 1)
        XCTAssertEqual(o.images["observation.images.top"]?.layout, .chw)
        XCTAssertEqual(o.state, (0..<14).map(Float.init) + [0, 0])
        XCTAssertEqual(o.prompt, "fold")
    }

    func testLiberoCutsStateAndConvertsFloatImages() throws {
        let m = ObservationMapper(layout: .libero, checkpointCameras: cams, stateDim: 4, strict: false)
        let f = NDArray(floats: [Float](repeating: 0.5, count: 5 * 6 * 3), shape: [5, 6, 3])
        let o = try m.map(map([("observation/image", .array(f)), ("observation/state", floats([1, 2, 3, 4, 5, 6, 7, 8])),
                               ("prompt", .value(.string("go")))]))
        XCTAssertEqual(o.state, [1, 2, 3, 4])
        guard case .uint8(let px)? = o.images["observation.images.top"]?.pixels else { return XCTFail() }
        XCTAssertEqual(px.first, 127)                                 // uint8(255·0.5), as openpi
        XCTAssertEqual(o.images["observation.images.top"]?.layout, .hwc)
    }

    func testErrorsNameTheKey() {
        let m = ObservationMapper(layout: .libero, checkpointCameras: cams, stateDim: 8)
        XCTAssertThrowsError(try m.map(map([("observation/image", image([4, 4, 3])), ("prompt", .value(.string("x")))]))) {
            XCTAssertEqual($0 as? ObservationError, .missingKey("observation/state"))
        }
        XCTAssertThrowsError(try m.map(map([("observation/image", image([4, 4, 3])), ("observation/state", floats([1])),
                                            ("prompt", .value(.string("x"))), ("extra", .value(.int(1)))]))) {
            XCTAssertEqual($0 as? ObservationError, .unexpectedKey("extra"))
        }
        XCTAssertThrowsError(try m.map(map([("observation/image", image([4, 4, 2])), ("observation/state", floats([1])),
                                            ("prompt", .value(.string("x")))]))) {
            guard case .badValue("observation/image", _)? = $0 as? ObservationError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try m.map(map([("observation/state", floats([1])), ("prompt", .value(.string("x")))]))) {
            guard case .missingKey? = $0 as? ObservationError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try m.map(map([("observation/image", image([4, 4, 3])), ("observation/state", floats([.nan]))]))) {
            guard case .badValue? = $0 as? ObservationError else { return XCTFail("\($0)") }
        }
    }

    func testNativeUsesCheckpointNames() throws {
        let m = ObservationMapper(layout: .native, checkpointCameras: cams, stateDim: 2, defaultPrompt: "default")
        let o = try m.map(map([("observation.images.wrist", image([3, 4, 4])), ("observation.state", floats([1, 2]))]))
        XCTAssertEqual(Array(o.images.keys), ["observation.images.wrist"])
        XCTAssertEqual(o.prompt, "default")
        XCTAssertThrowsError(try m.map(map([("observation.images.side", image([3, 4, 4])), ("observation.state", floats([1, 2]))]))) {
            XCTAssertEqual($0 as? ObservationError, .unexpectedKey("observation.images.side"))
        }
    }

    // Issue 13: what lenient mapping silently reshaped is an error naming the key under strict checking.
    func testStrictIsTheDefaultForNamedLayoutsAndNamesTheKey() throws {
        let m = ObservationMapper(layout: .libero, checkpointCameras: cams, stateDim: 8)
        XCTAssertTrue(m.strict)
        XCTAssertFalse(ObservationMapper(layout: .native, checkpointCameras: cams, stateDim: 8).strict)
        let both = [("observation/image", image([4, 4, 3])), ("observation/wrist_image", image([4, 4, 3])),
                    ("prompt", NumpyValue.value(.string("x")))]
        XCTAssertEqual(try m.map(map(both + [("observation/state", floats([Float](repeating: 1, count: 8)))])).state.count, 8)
        // Wrong state length (7 and 9): neither padded nor cut.
        for n in [7, 9] {
            XCTAssertThrowsError(try m.map(map(both + [("observation/state", floats([Float](repeating: 1, count: n)))]))) {
                guard case .badValue("observation/state", let why)? = $0 as? ObservationError else { return XCTFail("\($0)") }
                XCTAssertTrue(why.contains("expected 8") && why.contains("got \(n)"), why)
            }
        }
        // A missing camera the checkpoint uses is not silently masked.
        XCTAssertThrowsError(try m.map(map([("observation/image", image([4, 4, 3])), ("prompt", .value(.string("x"))),
                                            ("observation/state", floats([Float](repeating: 1, count: 8)))]))) {
            XCTAssertEqual($0 as? ObservationError, .missingKey("observation/wrist_image"))
        }
        // A float image in 0..255 instead of 0..1.
        let f255 = NDArray(floats: [Float](repeating: 200, count: 4 * 4 * 3), shape: [4, 4, 3])
        XCTAssertThrowsError(try m.map(map([("observation/image", .array(f255)), ("observation/wrist_image", image([4, 4, 3])),
                                            ("prompt", .value(.string("x"))), ("observation/state", floats([Float](repeating: 1, count: 8)))]))) {
            guard case .badValue("observation/image", let why)? = $0 as? ObservationError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("outside [0, 1]"), why)
        }
        // Native with strict: a checkpoint camera that is absent is named.
        let n = ObservationMapper(layout: .native, checkpointCameras: cams, stateDim: 2, defaultPrompt: "p", strict: true)
        XCTAssertThrowsError(try n.map(map([("observation.images.wrist", image([3, 4, 4])), ("observation.state", floats([1, 2]))]))) {
            XCTAssertEqual($0 as? ObservationError, .missingKey("observation.images.top"))
        }
    }
}
