// The 8-bit resize path (no float copy of the source, issue 13) must give exactly the values of the
// float path LeRobot's preprocessing is verified against (ResizeWithPadTests).
import Foundation
import XCTest
import ImageIO
@testable import PI0Runtime

final class ResizeFromBytesTests: XCTestCase {
    func testBytesPathIsBitIdenticalToTheFloatPath() throws {
        var seed: UInt64 = 0x1234
        func next() -> UInt8 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: seed >> 33) }
        for (h, w) in [(224, 224), (480, 640), (37, 29), (2, 300), (300, 2), (224, 225), (1000, 7)] {
            let hwc = (0..<(3 * h * w)).map { _ in next() }
            let frame = CameraFrame(height: h, width: w, layout: .hwc, pixels: .uint8(hwc))
            let viaFloats = try ImagePreprocessing.resizeWithPadToPM1(chw: try frame.floatCHW(camera: "c"), height: h, width: w)
            let viaBytes = try frame.modelInput(camera: "c", side: 224)
            XCTAssertEqual(viaBytes.count, viaFloats.count)
            XCTAssertTrue(zip(viaBytes, viaFloats).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(h)x\(w) HWC")
            // The same pixels channels-first.
            var chw = [UInt8](repeating: 0, count: hwc.count)
            for i in 0..<(h * w) { for c in 0..<3 { chw[c * h * w + i] = hwc[3 * i + c] } }
            let planar = CameraFrame(height: h, width: w, layout: .chw, pixels: .uint8(chw))
            XCTAssertTrue(zip(try planar.modelInput(camera: "c", side: 224), viaFloats).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(h)x\(w) CHW")
        }
    }

    func testExtremeAspectRatioIsAClearError() {
        // 4000×1: the resized height truncates to 0, where LeRobot's F.interpolate raises too.
        let frame = CameraFrame(height: 1, width: 4000, layout: .hwc, pixels: .uint8([UInt8](repeating: 9, count: 12000)))
        XCTAssertThrowsError(try frame.modelInput(camera: "c", side: 224)) {
            // The policy names the camera around ImagePreprocessing's own error.
            let inner = ImagePreprocessingError.degenerateResize(height: 1, width: 4000, resizedHeight: 0, resizedWidth: 224)
            XCTAssertEqual($0 as? PolicyError, .badImage(camera: "c", reason: inner.description))
            XCTAssertTrue("\($0)".contains("aspect ratio too extreme"))
        }
    }
}
