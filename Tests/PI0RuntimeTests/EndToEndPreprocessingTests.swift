// The preprocessing and postprocessing parts of fixtures/policy/end_to_end (a real checkpoint folder run
// through LeRobot 0.6.1's PI0Policy): camera images -> model images, state -> padded state, model actions
// -> final actions. The folder is 7 MB and not bundled, so these run only where /work/shared exists.
import Foundation
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
