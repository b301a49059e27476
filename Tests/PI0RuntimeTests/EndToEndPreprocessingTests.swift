// The pre- and post-processing of LeRobot's end-to-end case (a real checkpoint folder run through
// LeRobot 0.6.1's PI0Policy, Fixtures/end_to_end) through the path `PI0Policy` itself takes:
// `preprocess` (camera frame → CHW float → resize-with-pad → [-1, 1]; state normalised and padded) and
// `postprocess` (padded model actions → the robot's dimensions, un-normalised), compared bit for bit.
// `images_pm1.safetensors` holds LeRobot's model images for this case (`image_top_pm1`, `image_wrist_pm1`).
import Foundation
import ImageIO
import PI0Tensor
import SafeTensors
import XCTest
@testable import PI0Runtime

final class EndToEndPreprocessingTests: XCTestCase {
    var dir: String { Bundle.module.resourcePath! + "/Fixtures/end_to_end" }

    func fixtures() throws -> (io: SafeTensorsFile, images: SafeTensorsFile, policy: PI0Policy) {
        (try SafeTensorsFile(path: dir + "/io.safetensors"), try SafeTensorsFile(path: dir + "/images_pm1.safetensors"),
         try PI0Policy(checkpoint: dir, backend: ReferenceBackend()))
    }

    /// The 480×640 top camera as uint8 CHW (what LeRobot got) and as uint8 HWC (what a decoded file or an
    /// openpi client gives); the 240×320 wrist camera as float CHW in [0, 1].
    func observation(_ io: SafeTensorsFile, topAsHWC: Bool) throws -> Observation {
        let (h, w) = (480, 640)
        let chw = Array(try io.rawBytes("image_top_u8"))
        var top = CameraFrame(height: h, width: w, layout: .chw, pixels: .uint8(chw))
        if topAsHWC {
            var hwc = [UInt8](repeating: 0, count: chw.count)
            for c in 0..<3 { for i in 0..<(h * w) { hwc[3 * i + c] = chw[c * h * w + i] } }
            top = CameraFrame(RGBImage(width: w, height: h, pixels: hwc))
        }
        let wrist = CameraFrame(height: 240, width: 320, layout: .chw, pixels: .float32(try io.floats("image_wrist_raw")))
        let ids = try io.int64s("lang_tokens").map(Int.init), mask = try io.bools("lang_masks")
        let n = mask.filter { $0 }.count
        return Observation(images: ["top": top, "wrist": wrist], state: try io.floats("state_raw"), prompt: "",
                           tokens: (Array(ids.prefix(n)), Array(mask.prefix(n))))
    }

    func testPolicyPreprocessMatchesLeRobotBitForBit() throws {
        let (io, images, policy) = try fixtures()
        for hwc in [false, true] {
            let inputs = try policy.preprocess(try observation(io, topAsHWC: hwc))
            XCTAssertEqual(inputs.imageMasks, [[true], [true]])
            for (i, name) in ["top", "wrist"].enumerated() {
                let c = compare(inputs.images[i], try images.floats("image_\(name)_pm1"))
                XCTAssertEqual(c.differing, 0, "\(name) (top given as \(hwc ? "HWC" : "CHW")): not bit-exact, max |diff| \(c.maxAbs)")
            }
            XCTAssertEqual(inputs.state, try io.floats("state_padded"))
        }
        let stats = try XCTUnwrap(policy.stats)
        XCTAssertEqual(try stats.normalizeState(try io.floats("state_raw")), try io.floats("state_normalized"))
    }

    func testPolicyPostprocessMatchesLeRobotBitForBit() throws {
        let (io, _, policy) = try fixtures()
        let chunk = try policy.postprocess(try io.floats("actions_model_padded"))
        XCTAssertEqual(chunk.horizon, 50)
        XCTAssertEqual(chunk.actionDim, 14)
        XCTAssertEqual(compare(chunk.values, try io.floats("actions")).differing, 0)
        // A server layout of another width: the first dimensions of the same actions, zeros beyond the checkpoint's.
        let actions = try io.floats("actions")
        for width in [7, 16] {
            let c = try policy.postprocess(try io.floats("actions_model_padded"), width: width)
            XCTAssertEqual(c.actionDim, width)
            XCTAssertEqual(c.values.count, 50 * width)
            for t in 0..<50 {
                XCTAssertEqual(Array(c[t]), Array(actions[(t * 14)..<(t * 14 + min(width, 14))]) + [Float](repeating: 0, count: max(0, width - 14)))
            }
        }
    }

    /// One non-finite check on the way in, and its error names the camera.
    func testNonFinitePixelIsRejectedWithTheCameraName() throws {
        let (io, _, policy) = try fixtures()
        var obs = try observation(io, topAsHWC: false)
        var wrist = try io.floats("image_wrist_raw")
        wrist[1234] = .nan
        obs.images["wrist"] = CameraFrame(height: 240, width: 320, layout: .chw, pixels: .float32(wrist))
        XCTAssertThrowsError(try policy.preprocess(obs)) {
            XCTAssertEqual($0 as? PolicyError, .badImage(camera: "observation.images.wrist",
                                                         reason: "image value at CHW index 1234 is nan; pixels must be finite"))
        }
    }
}
