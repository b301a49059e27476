// Issue 13: an 8000×8000 PNG of 200 KB must not take a gigabyte to become a 224×224 model input.
// Opt-in measurement (peak RSS needs a process of its own): PI0_LARGE_IMAGE=/path/to/big.png
// swift test --filter LargeImageMemoryTests prints the peak resident memory the decode and the
// preprocessing added and their time; docs/RELIABILITY.md records the figures.
import Foundation
import XCTest
import ImageIO
@testable import PI0Runtime

final class LargeImageMemoryTests: XCTestCase {
    /// Resident memory now (Linux /proc/self/statm), MiB.
    func currentRSSMiB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return 0 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1048576
    }

    /// Highest resident memory of this process so far, MiB.
    func peakRSSMiB() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_maxrss) / 1024   // kB on Linux
    }

    func testPeakMemoryOfALargeImage() throws {
        guard let path = ProcessInfo.processInfo.environment["PI0_LARGE_IMAGE"] else {
            throw XCTSkip("set PI0_LARGE_IMAGE to a large PNG/JPEG (e.g. 8000x8000) to measure its decode's peak memory")
        }
        let before = currentRSSMiB()
        let t0 = Date()
        let frame = try CameraFrame.load(path: path)
        let decoded = peakRSSMiB()
        let input = try frame.modelInput(camera: "cam", side: 224)
        let seconds = Date().timeIntervalSince(t0)
        let after = peakRSSMiB()
        XCTAssertEqual(input.count, 3 * 224 * 224)
        print(String(format: "large image %dx%d: peak RSS %.0f MiB above the %.0f MiB resident before, after decoding; %.0f MiB after preprocessing; %.2f s",
                     frame.width, frame.height, decoded - before, before, after - before, seconds))
    }
}
