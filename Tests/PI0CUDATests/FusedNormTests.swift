// RMSNorm fused into the following GEMMs (docs/CUDA.md, "Fusion"), without a GPU: the launches the
// fused call issues on the cuBLAS path (the norm writes the bf16 operand once, both GEMMs read it) and
// those it falls back to elsewhere, the capture retry when the operand scratch is short, and outputs
// bit-identical to the unfused composition. (The op table's "= rmsNorm + linear" rows check the values
// on more shapes; GraphCaptureTests' fixture runs check the model end to end through the fused path.)
import Foundation
import XCTest
@testable import PI0CUDA
import PI0Tensor

final class FusedNormTests: XCTestCase {
    struct Case {
        let be: CUDABackend
        let x: DeviceTensor, w: DeviceTensor, normed: DeviceTensor, y1: DeviceTensor, y2: DeviceTensor
        let p1: PreparedLinear, p2: PreparedLinear
        let rows: Int, width: Int, n1: Int, n2: Int

        init(_ be: CUDABackend, rows: Int = 50, width: Int = 64, bf16: Bool) throws {
            self.be = be; self.rows = rows; self.width = width; n1 = 24; n2 = 9
            var rng = CUDASelfTest.RNG(state: 17)
            let dtype: WeightDType = bf16 ? .bfloat16 : .float32
            p1 = try be.prepareLinear(WeightTensor(name: "kv", shape: [n1, width], floats: rng.array(n1 * width, 0.1), dtype: dtype),
                                      bias: WeightTensor(name: "b", shape: [n1], floats: rng.array(n1)), inputsAreBF16: bf16)
            p2 = try be.prepareLinear(WeightTensor(name: "q", shape: [n2, width], floats: rng.array(n2 * width, 0.1), dtype: dtype),
                                      bias: nil, inputsAreBF16: bf16)
            x = DeviceTensor(shape: [rows, width], uploading: rng.array(rows * width, 2), backend: be)
            w = DeviceTensor(shape: [width], uploading: rng.array(width, 0.5), backend: be)
            normed = DeviceTensor(shape: [rows, width], backend: be)
            y1 = DeviceTensor(shape: [rows, n1], backend: be); y2 = DeviceTensor(shape: [rows, n2], backend: be)
        }

        func fused(bf16: Bool) {
            be.rmsNormLinear(x.ref, rows: rows, width: width, weight: w.ref, eps: 1e-6, roundToBF16: bf16, normed: normed.ref,
                             NormedProduct(linear: p1, y: y1.ref, ldy: n1), NormedProduct(linear: p2, y: y2.ref, ldy: n2))
        }
        func composed(bf16: Bool) {
            be.rmsNorm(x.ref, rows: rows, width: width, weight: w.ref, eps: 1e-6, roundToBF16: bf16, out: normed.ref)
            be.linear(p1, x: normed.ref, rows: rows, ldx: width, y: y1.ref, ldy: n1)
            be.linear(p2, x: normed.ref, rows: rows, ldx: width, y: y2.ref, ldy: n2)
        }
        var outputs: [UInt32] {
            (be.download(normed.ref, count: rows * width) + be.download(y1.ref, count: rows * n1) + be.download(y2.ref, count: rows * n2))
                .map(\.bitPattern)
        }
    }

    func testTheCUBLASPathFusesTheNormIntoTheBF16Operand() throws {
        let emulated = EmulatedDevice(launcher: try KernelEmulationTests.launcher())
        let device = RecordingDevice(wrapping: emulated)
        let be = try CUDABackend(device: device, cublas: try FakeCUBLAS.make(on: emulated, recorder: device))
        let c = try Case(be, bf16: true)
        c.composed(bf16: true)   // grows the bf16 operand scratch
        _ = device.take()
        c.composed(bf16: true)
        XCTAssertEqual(device.take(), [
            "cuLaunchKernel pi0_rms_norm", "cuLaunchKernel pi0_f32_to_bf16", "cublasGemmEx", "cuLaunchKernel pi0_bias_add",
            "cuLaunchKernel pi0_f32_to_bf16", "cublasGemmEx",
        ])
        let unfused = c.outputs
        _ = device.take()
        c.fused(bf16: true)
        XCTAssertEqual(device.take(), ["cuLaunchKernel pi0_rms_norm_bf16", "cublasGemmEx", "cuLaunchKernel pi0_bias_add", "cublasGemmEx"],
                       "one norm launch writes the operand both GEMMs read")
        XCTAssertEqual(c.outputs, unfused, "fused = rmsNorm + linear, bit for bit (normed included)")

        // Captured with more rows than the operand scratch holds: the capture is redone after it grows.
        let big = try Case(be, rows: 9000, width: 64, bf16: true)   // 9000·64 bf16 values: over the 1 MiB scratch
        _ = device.take()
        let work = try be.capture { big.fused(bf16: true) }
        XCTAssertEqual(device.take(), [
            "cuStreamBeginCapture", "cuStreamEndCapture", "cuGraphDestroy",
            "cuStreamSynchronize", "cuMemFree", "cuMemAlloc", "cuMemsetD32Async",
            "cuStreamBeginCapture", "cuLaunchKernel pi0_rms_norm_bf16", "cublasGemmEx", "cuLaunchKernel pi0_bias_add", "cublasGemmEx",
            "cuStreamEndCapture", "cuGraphInstantiate", "cuGraphDestroy",
        ])
        try be.replay(work)
        let replayed = big.outputs
        big.composed(bf16: true)
        XCTAssertEqual(replayed, big.outputs, "the captured fused call computes what the composition does")
    }

    func testOtherPathsAreThePlainComposition() throws {
        let emulated = EmulatedDevice(launcher: try KernelEmulationTests.launcher())
        let device = RecordingDevice(wrapping: emulated)
        // float32 activations with cuBLAS: the GEMM reads the float32 rows; nothing to fuse.
        let cublas = try CUDABackend(device: device, cublas: try FakeCUBLAS.make(on: emulated, recorder: device))
        let f = try Case(cublas, bf16: false)
        _ = device.take()
        f.fused(bf16: false)
        XCTAssertEqual(device.take(), ["cuLaunchKernel pi0_rms_norm", "cublasGemmEx", "cuLaunchKernel pi0_bias_add", "cublasGemmEx"])
        // The fallback GEMM kernels (no cuBLAS): the norm, then each tiled product.
        let fallback = try CUDABackend(device: device)
        let g = try Case(fallback, bf16: true)
        _ = device.take()
        g.fused(bf16: true)
        XCTAssertEqual(device.take(), ["cuLaunchKernel pi0_rms_norm", "cuLaunchKernel pi0_linear_bf16w", "cuLaunchKernel pi0_linear_bf16w"])
        let fused = g.outputs
        g.composed(bf16: true)
        XCTAssertEqual(fused, g.outputs)
    }
}
