// ImagePreprocessing against LeRobot 0.6.1's resize_with_pad_torch / PI0Policy._preprocess_images outputs
// (fixtures/policy/resize_with_pad; subset copied by tools/imageio/make_runtime_fixtures.py).
import Foundation
import ImageIO
import SafeTensors
import XCTest
@testable import PI0Runtime

enum RuntimeFixtures {
    static var dir: URL { Bundle.module.resourceURL!.appendingPathComponent("Fixtures") }
    static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    static let sharedResize = "/work/shared/fixtures/policy/resize_with_pad/cases.safetensors"
}

/// max |a - b| and how many elements differ at all (bit-level).
func compare(_ a: [Float], _ b: [Float]) -> (maxAbs: Float, differing: Int) {
    precondition(a.count == b.count)
    var m: Float = 0, n = 0
    for i in a.indices where a[i].bitPattern != b[i].bitPattern { n += 1; m = max(m, abs(a[i] - b[i])) }
    return (m, n)
}

final class ResizeWithPadTests: XCTestCase {
    /// Runs case K of a cases file: `out_K` (always) and `out_pm1_K` (when present). Tolerance 1e-6 abs
    /// (the README's figure for the fma / float64 source index form); we expect and report bit-exactness.
    func runCase(_ f: SafeTensorsFile, _ k: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let shape = try f.info("in_\(k)").shape           // [1, 3, H, W]
        let (h, w) = (shape[2], shape[3])
        let input = try f.floats("in_\(k)")
        if f.contains("out_\(k)") {
            let got = try ImagePreprocessing.resizeWithPad(chw: input, height: h, width: w)
            let c = compare(got, try f.floats("out_\(k)"))
            XCTAssertLessThanOrEqual(c.maxAbs, 1e-6, "case \(k) out: \(c.differing) values differ", file: file, line: line)
            XCTAssertEqual(c.differing, 0, "case \(k) (\(h)x\(w)) not bit-exact, max |diff| \(c.maxAbs)", file: file, line: line)
        }
        if f.contains("out_pm1_\(k)") {
            let got = try ImagePreprocessing.resizeWithPadToPM1(chw: input, height: h, width: w)
            let c = compare(got, try f.floats("out_pm1_\(k)"))
            XCTAssertLessThanOrEqual(c.maxAbs, 1e-6, "case \(k) pm1: \(c.differing) values differ", file: file, line: line)
            XCTAssertEqual(c.differing, 0, "case \(k) pm1 not bit-exact, max |diff| \(c.maxAbs)", file: file, line: line)
        }
    }

    func testBundledCases() throws {
        let f = try SafeTensorsFile(path: RuntimeFixtures.path("resize_cases.safetensors"))
        for k in [3, 4, 6, 7] { try runCase(f, k) }
    }

    /// All eight cases of the full fixture file (16.5 MB, not bundled); skipped on a clone without /work/shared.
    func testAllSharedCases() throws {
        guard FileManager.default.fileExists(atPath: RuntimeFixtures.sharedResize) else {
            throw XCTSkip("\(RuntimeFixtures.sharedResize) not present")
        }
        let f = try SafeTensorsFile(path: RuntimeFixtures.sharedResize)
        for k in 0..<8 { try runCase(f, k) }
    }

    func testTruncationQuirkPadsLongSide() throws {
        // 123x457: 457/(457/224) = 223.99999999999997 -> 223 columns, so column 223 is padding (0 / -1).
        let input = [Float](repeating: 0.5, count: 3 * 123 * 457)
        let out = try ImagePreprocessing.resizeWithPadToPM1(chw: input, height: 123, width: 457)
        XCTAssertEqual(out[82 * 224 + 222], 0)          // 0.5 -> 0 in [-1,1], inside the image
        XCTAssertEqual(out[82 * 224 + 223], -1)         // padded column
        XCTAssertEqual(out[81 * 224 + 100], -1)         // padded row (82 on top)
    }

    func testAlreadyTargetSizeSkipsResizeAndClamp() throws {
        // LeRobot only maps x*2-1 when the image is already 224x224: out-of-range values are NOT clamped.
        var input = [Float](repeating: 0.25, count: 3 * 224 * 224)
        input[5] = 1.5
        let out = try ImagePreprocessing.resizeWithPadToPM1(chw: input, height: 224, width: 224)
        XCTAssertEqual(out[5], 2)
        XCTAssertEqual(out[6], -0.5)
    }

    func testFloatCHWIsUInt8Over255() throws {
        // in_3 was made in Python as uint8 / 255 (float32); rebuild the uint8 HWC image and compare bit-exactly.
        let f = try SafeTensorsFile(path: RuntimeFixtures.path("resize_cases.safetensors"))
        let chw = try f.floats("in_3")
        let (h, w) = (100, 300)
        var px = [UInt8](repeating: 0, count: h * w * 3)
        for c in 0..<3 { for i in 0..<(h * w) { px[3 * i + c] = UInt8((chw[c * h * w + i] * 255).rounded()) } }
        let img = RGBImage(width: w, height: h, pixels: px)
        XCTAssertEqual(compare(try CameraFrame(img).floatCHW(camera: "in_3"), chw).differing, 0)
    }

    func testBadInputsThrow() {
        XCTAssertThrowsError(try ImagePreprocessing.resizeWithPadToPM1(chw: [], height: 0, width: 5)) {
            XCTAssertEqual($0 as? ImagePreprocessingError, .emptyImage(height: 0, width: 5))
        }
        XCTAssertThrowsError(try ImagePreprocessing.resizeWithPadToPM1(chw: [Float](repeating: 0, count: 10), height: 2, width: 2)) {
            XCTAssertEqual($0 as? ImagePreprocessingError, .bufferLength(expected: 12, got: 10, height: 2, width: 2))
        }
        // 3x1000: int(3 / (1000/224)) = 0 rows -> LeRobot's F.interpolate raises.
        XCTAssertThrowsError(try ImagePreprocessing.resizeWithPadToPM1(chw: [Float](repeating: 0, count: 9000), height: 3, width: 1000)) {
            XCTAssertEqual($0 as? ImagePreprocessingError, .degenerateResize(height: 3, width: 1000, resizedHeight: 0, resizedWidth: 224))
        }
        var nan = [Float](repeating: 0, count: 3 * 4 * 4)
        nan[17] = .nan
        XCTAssertThrowsError(try ImagePreprocessing.resizeWithPad(chw: nan, height: 4, width: 4)) {
            XCTAssertTrue("\($0)".contains("index 17"), "\($0)")
        }
    }
}
