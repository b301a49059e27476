// `pi0 demo aloha|libero` through the built executable: the action summary and the picture it writes.
// The picture code lives in the executable target (not importable), so it is checked from the outside:
// the PNG decodes, holds each bundled camera frame pixel for pixel, and has one plotted curve per dimension.
import Foundation
import XCTest
import ImageIO
import PI0TestSupport

final class DemoCommandLineTests: XCTestCase {
    /// The bundled sample frames in the source tree (the executable bundles the same folder).
    var sampleFrames: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/pi0/Resources/SampleFrames").path
    }

    func tmpDir() throws -> String {
        let tmp = NSTemporaryDirectory() + "pi0-demo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        return tmp
    }

    /// Where `needle` occurs pixel-exactly inside `hay` (first match), scanning only the top-left pixel's candidates.
    func locate(_ needle: RGBImage, in hay: RGBImage) -> (x: Int, y: Int)? {
        guard needle.width <= hay.width, needle.height <= hay.height else { return nil }
        let p0 = needle.pixel(x: 0, y: 0)
        for y in 0...(hay.height - needle.height) { for x in 0...(hay.width - needle.width) where hay.pixel(x: x, y: y) == p0 {
            var same = true
            rows: for yy in 0..<needle.height {
                let a = ((y + yy) * hay.width + x) * 3, b = yy * needle.width * 3
                if hay.pixels[a..<(a + needle.width * 3)] != needle.pixels[b..<(b + needle.width * 3)] { same = false; break rows }
            }
            if same { return (x, y) }
        } }
        return nil
    }

    func runScene(_ scene: String, cameras: [String], dims: Int) throws {
        let tmp = try tmpDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let out = tmp + "/demo.png"
        let r = try CLI.run(["demo", scene, "--output", out, "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        // Text summary: one sparkline line per robot action dimension, then the first action.
        let dimLines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("  dim ") }
        XCTAssertEqual(dimLines.count, dims, r.stdout)
        XCTAssertTrue(r.stdout.contains("[50 steps × 14 dims]"), r.stdout)
        XCTAssertTrue(r.stdout.contains("RANDOM weights"), r.stdout)
        XCTAssertTrue(r.stdout.contains("picture     \(out)"), r.stdout)
        for line in dimLines {   // "  dim  3  ▁▂…  -0.123 … +0.456": a finite, ordered range
            let nums = line.split(separator: " ").compactMap { Float($0) }
            XCTAssertEqual(nums.count, 3, String(line))
            if nums.count == 3 { XCTAssertTrue(nums[1].isFinite && nums[2].isFinite && nums[1] <= nums[2], String(line)) }
        }

        let picture = try ImageDecoder.decode(path: out)
        XCTAssertGreaterThanOrEqual(picture.width, cameras.count * 224)
        XCTAssertGreaterThanOrEqual(picture.height, 224 + 2 * 100)
        // Every camera frame of the first bundled step appears unscaled, side by side in order.
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(sampleFrames)/\(scene)/metadata.json"))) as! [String: Any]
        let frame0 = (meta["frames"] as! [[String: Any]])[0]["images"] as! [String: String]
        var lastX = -1
        for cam in cameras {
            let img = try ImageDecoder.decode(path: "\(sampleFrames)/\(scene)/\(frame0[cam]!)")
            XCTAssertEqual([img.width, img.height], [224, 224])
            guard let at = locate(img, in: picture) else { XCTFail("\(scene) camera \(cam) not found in the picture"); continue }
            XCTAssertGreaterThan(at.x, lastX, "cameras left to right in order")
            lastX = at.x
        }
        // One curve per dimension: the plot colour (33, 102, 172) appears in `dims` separate panels, i.e. in
        // that many distinct 176-pixel-wide column/row cells below the frames.
        var cells = Set<[Int]>()
        for y in 250..<picture.height { for x in 0..<picture.width where picture.pixel(x: x, y: y) == (33, 102, 172) {
            cells.insert([(x - 16) / 186, (y - 250) / 100])
        } }
        XCTAssertGreaterThanOrEqual(Set(cells.map { $0[0] }).count, min(dims, 7), "curves in every panel column")
        // Not blank: many colours (frames) and mostly light background.
        var colours = Set<Int>()
        for i in stride(from: 0, to: picture.pixels.count, by: 3) {
            colours.insert(Int(picture.pixels[i]) << 16 | Int(picture.pixels[i + 1]) << 8 | Int(picture.pixels[i + 2]))
        }
        XCTAssertGreaterThan(colours.count, 200)
    }

    func testDemoAlohaWritesPictureAndSummary() throws {
        try runScene("aloha", cameras: ["top", "left_wrist", "right_wrist"], dims: 14)
    }

    func testDemoLiberoWritesPictureAndSummary() throws {
        guard FileManager.default.fileExists(atPath: sampleFrames + "/libero/metadata.json") else {
            throw XCTSkip("no LIBERO sample frames bundled")
        }
        try runScene("libero", cameras: ["agentview", "eye_in_hand"], dims: 7)
    }

    func testUnknownSceneAndMisplacedOptionsAreRefused() throws {
        let r = try CLI.run(["demo", "mars"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("mars") && r.stderr.contains("aloha"), r.stderr)
        let r2 = try CLI.run(["demo", "--output", "/tmp/x.png"])
        XCTAssertNotEqual(r2.status, 0)
        XCTAssertTrue(r2.stderr.contains("scene"), r2.stderr)
        let r3 = try CLI.run(["demo", "aloha", "--frame", "99"])
        XCTAssertNotEqual(r3.status, 0)
        XCTAssertTrue(r3.stderr.contains("--frame"), r3.stderr)
    }
}
