// On a machine with an NVIDIA GPU: the op table against the reference backend, and the fixture models
// end to end (eager, whole sample as one graph, denoise loop as one graph) against LeRobot's numbers.
// Elsewhere these skip with "no CUDA device" (tools/cuda/device_check.sh runs the same checks through
// `pi0 cuda-check` and `pi0 bench --backend cuda` on a GPU machine without a Swift toolchain).
import Foundation
import XCTest
import PI0
import PI0CUDA
import PI0Tensor

final class GPUTests: XCTestCase {
    func gpu(cublas: Bool = true) throws -> CUDABackend {
        do { return try CUDABackend(device: 0, useCUBLAS: cublas) } catch {
            throw XCTSkip("no CUDA device: \(error)")
        }
    }

    func testOpTableMatchesReference() throws {
        let backend = try gpu()
        print("backend:", backend.name, backend.cublasNote ?? "")
        for check in try CUDASelfTest.run(backend) { XCTAssertTrue(check.passed, "\(check)") }
    }

    func testOpTableMatchesReferenceWithFallbackGEMM() throws {
        for check in try CUDASelfTest.run(try gpu(cublas: false)) { XCTAssertTrue(check.passed, "\(check)") }
    }

    func testFixturesEndToEndInEveryGraphMode() throws {
        let backend = try gpu()
        for name in FixtureRun.names {
            for mode in GraphMode.allCases {
                let r = try FixtureRun.run(name, backend: backend, mode: mode, replays: 2)
                XCTAssertLessThanOrEqual(r.relL2, r.tolerance, "\(name) graph \(mode)")
            }
        }
    }
}
