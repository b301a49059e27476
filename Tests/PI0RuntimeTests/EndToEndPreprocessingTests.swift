// The preprocessing and postprocessing parts of fixtures/policy/end_to_end (a real checkpoint folder run
// through LeRobot 0.6.1's PI0Policy): camera images -> model images, state -> padded state, model actions
// -> final actions. The folder is 7 MB and not bundled, so these run only where /work/shared exists.
import Foundation
import ImageIO
import SafeTensors
import XCTest
@testable import PI0Runtime

final class EndToEndPreprocessingTests: XCTestCase {
    let dir = "/work/shared/fixtures/policy/end_to_end"

    func io() throws -> SafeTensorsFile {
        guard FileManager.default.fileExists(atPath: dir + "/io.safetensors") else { throw XCTSkip("\(dir) not present") }
        return try SafeTensorsFile(path: dir + "/io.safetensors")
    }

    func testCamerasMatchPreprocessImages() throws {
        let f = try io()
        for cam in ["top", "wrist"] {
            let shape = try f.info("image_\(cam)_raw").shape
            let got = try ImagePreprocessing.resizeWithPadToPM1(chw: try f.floats("image_\(cam)_raw"), height: shape[2], width: shape[3])
            let c = compare(got, try f.floats("image_\(cam)_pm1"))
            XCTAssertEqual(c.differing, 0, "\(cam): not bit-exact, max |diff| \(c.maxAbs)")
        }
    }

    func testUInt8FrameToModelInput() throws {
        // image_top_raw holds uint8/255 values: rebuild the uint8 frame and go through modelInput(from:).
        let f = try io()
        let chw = try f.floats("image_top_raw")
        let (h, w) = (480, 640)
        var px = [UInt8](repeating: 0, count: h * w * 3)
        for c in 0..<3 { for i in 0..<(h * w) { px[3 * i + c] = UInt8((chw[c * h * w + i] * 255).rounded()) } }
        let got = try ImagePreprocessing.modelInput(from: RGBImage(width: w, height: h, pixels: px))
        XCTAssertEqual(compare(got, try f.floats("image_top_pm1")).differing, 0)
    }

    func testStateAndActionsMatchProcessors() throws {
        let f = try io()
        let stats = try NormalizationStats.load(checkpointDirectory: dir)
        let state = try stats.normalizeState(try f.floats("state_raw"))
        XCTAssertEqual(compare(state, try f.floats("state_normalized")).differing, 0)
        XCTAssertEqual(compare(padVector(state, to: 32), try f.floats("state_padded")).differing, 0)
        let actions = try stats.unnormalizeActions(try f.floats("actions_normalized"), actionDim: stats.actionDim ?? 0)
        XCTAssertEqual(compare(actions, try f.floats("actions")).differing, 0)
    }
}
