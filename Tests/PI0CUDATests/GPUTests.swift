// On a machine with an NVIDIA GPU: the op table against the CPU definitions, and the fixture models
// end to end against LeRobot's numbers. Elsewhere these skip with "no CUDA device".
import Foundation
import XCTest
import PI0
import PI0CUDA
import PI0Tensor
import SafeTensors

final class GPUTests: XCTestCase {
    func gpu(cublas: Bool = true) throws -> CUDABackend {
        do { return try CUDABackend(device: 0, useCUBLAS: cublas) } catch {
            throw XCTSkip("no CUDA device: \(error)")
        }
    }

    func testOpTableMatchesReference() throws {
        let backend = try gpu()
        print("backend:", backend.name, backend.cublasNote ?? "")
        for check in try CUDASelfTest.run(backend) {
            XCTAssertTrue(check.passed, "\(check)")
        }
    }

    func testOpTableMatchesReferenceWithFallbackGEMM() throws {
        for check in try CUDASelfTest.run(try gpu(cublas: false)) where check.op.hasPrefix("linear") {
            XCTAssertTrue(check.passed, "\(check)")
        }
    }

    func testFixturesEndToEnd() throws {
        let backend = try gpu()
        let root = Bundle.module.resourcePath! + "/Fixtures"
        for name in ["tiny_1cam", "tiny_3cam_bf16"] {
            let dir = root + "/" + name
            let ckpt = try Checkpoint(directory: dir)
            let model = try PI0Model(checkpoint: ckpt, precision: nil, backend: backend)
            let inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: dir + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
            let outputs = try SafeTensorsFile(path: dir + "/outputs.safetensors")
            let steps = outputs.contains("timesteps") ? try outputs.info("timesteps").shape[0] : nil
            let actions = try model.sampleActions(inputs, steps: steps)
            let expected = try outputs.floats("actions")
            // Tolerances as PI0Tests/FixtureParityTests: float32 rel-L2 ≤ 2e-5, bf16 ≤ 1e-2.
            let tol = ckpt.config.precision == .bfloat16 ? 1e-2 : 2e-5
            XCTAssertLessThanOrEqual(CUDASelfTest.relL2(actions.array, expected), tol, name)
        }
    }
}
