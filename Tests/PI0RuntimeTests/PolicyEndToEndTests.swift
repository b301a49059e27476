// The policy end to end against LeRobot's own pipeline (Fixtures/end_to_end): a raw
// observation (two cameras of different sizes, 14-d state) → preprocessing → π0 → un-normalised actions.
import Foundation
import XCTest
import ImageIO
import PI0
@testable import PI0Runtime
import PI0Tensor
import SafeTensors

final class PolicyEndToEndTests: XCTestCase {
    var dir: String { Bundle.module.resourcePath! + "/Fixtures/end_to_end" }

    static func observation(_ io: SafeTensorsFile) throws -> Observation {
        let top = CameraFrame(height: 480, width: 640, layout: .chw, pixels: .uint8(Array(try io.rawBytes("image_top_u8"))))
        let wrist = CameraFrame(height: 240, width: 320, layout: .chw, pixels: .float32(try io.floats("image_wrist_raw")))
        let ids = try io.int64s("lang_tokens").map(Int.init), mask = try io.bools("lang_masks")
        let n = mask.filter { $0 }.count
        return Observation(images: ["top": top, "observation.images.wrist": wrist], state: try io.floats("state_raw"),
                           prompt: "pick up the red cube and place it in the blue bowl",
                           tokens: (Array(ids.prefix(n)), Array(mask.prefix(n))))
    }

    func testRawObservationToActionsMatchesLeRobot() throws {
        let io = try SafeTensorsFile(path: dir + "/io.safetensors")
        for backend in [try Backends.cpu(threads: 2)] {   // the reference backend is covered by the model fixtures
            let policy = try PI0Policy(checkpoint: dir, backend: backend)
            XCTAssertEqual(policy.cameraNames, ["observation.images.top", "observation.images.wrist"])
            XCTAssertEqual(policy.stateDim, 14); XCTAssertEqual(policy.actionDim, 14)
            let obs = try Self.observation(io)
            let inputs = try policy.preprocess(obs)
            XCTAssertEqual(inputs.state, try io.floats("state_padded"))
            XCTAssertEqual(inputs.langTokens[0].map(Int64.init), try io.int64s("lang_tokens"))
            let chunk = try policy.predictActionChunk(obs, noise: try io.floats("noise"))
            XCTAssertEqual(chunk.horizon, 50); XCTAssertEqual(chunk.actionDim, 14)
            let r = ParityResult(name: "actions", actual: chunk.values, expected: try io.floats("actions"))
            XCTAssertTrue(r.passes(minPCC: 0.99999, maxRelL2: 2e-5), "\(backend.name): \(r)")
        }
    }

    func testBadObservationsGetClearErrors() throws {
        let io = try SafeTensorsFile(path: dir + "/io.safetensors")
        let policy = try PI0Policy(checkpoint: dir, backend: ReferenceBackend())
        let good = try Self.observation(io)
        var o = good; o.state = Array(o.state.prefix(13))
        XCTAssertThrowsError(try policy.preprocess(o)) { XCTAssertEqual($0 as? PolicyError, .badState(reason: "expected 14 values for this checkpoint, got 13")) }
        o = good; o.state[2] = .infinity
        XCTAssertThrowsError(try policy.preprocess(o)) { XCTAssertEqual($0 as? PolicyError, .badState(reason: "non-finite value at index 2")) }
        o = good; o.images["side"] = o.images["top"]
        XCTAssertThrowsError(try policy.preprocess(o)) {
            guard case .unknownCamera("side", _)? = $0 as? PolicyError else { return XCTFail("\($0)") }
        }
        o = good; o.images["top"] = CameraFrame(height: 480, width: 640, layout: .hwc, pixels: .uint8([UInt8](repeating: 0, count: 480 * 640)))
        XCTAssertThrowsError(try policy.preprocess(o)) {
            guard case .badImage("observation.images.top", _)? = $0 as? PolicyError else { return XCTFail("\($0)") }
        }
        o = good; o.images = [:]
        XCTAssertThrowsError(try policy.preprocess(o)) { guard case .noCameras? = $0 as? PolicyError else { return XCTFail("\($0)") } }
        o = good; o.tokens = nil   // no tokenizer ships with this checkpoint
        XCTAssertThrowsError(try policy.preprocess(o)) { guard case .noTokenizer? = $0 as? PolicyError else { return XCTFail("\($0)") } }
    }

    func testMissingCameraBecomesMaskedMinusOneImageAfterThePresentOnes() throws {
        let io = try SafeTensorsFile(path: dir + "/io.safetensors")
        let policy = try PI0Policy(checkpoint: dir, backend: ReferenceBackend())
        var o = try Self.observation(io)
        o.images["top"] = nil
        let inputs = try policy.preprocess(o)
        XCTAssertEqual(inputs.imageMasks, [[true], [false]])
        XCTAssertTrue(inputs.images[1].allSatisfy { $0 == -1 })
        XCTAssertEqual(inputs.images[0], try ImagePreprocessing.resizeWithPadToPM1(chw: try io.floats("image_wrist_raw"), height: 240, width: 320))
    }
}
