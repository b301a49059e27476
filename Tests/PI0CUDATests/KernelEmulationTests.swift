// Every CUDA kernel's arithmetic, checked without a GPU: `CUDABackend` runs on `EmulatedDevice` (the
// kernel source compiled as C++ by KernelEmulator, one host thread per CUDA thread) through the same
// launch code as on a device, and the op table compares it with `ReferenceBackend`. Checks the table
// marks exact (the reference's operations in its order) must be bit-identical here, where the math
// library is the same; the others (tree-reduced norm statistics) must meet the device tolerance.
// Skips only when no C++ compiler exists; a compile error in the kernels is a failure.
import Foundation
import XCTest
@testable import PI0CUDA
import PI0Tensor

final class KernelEmulationTests: XCTestCase {
    static func launcher() throws -> KernelEmulator.Launch {
        switch KernelEmulator.loaded {
        case let .success(l): return l
        case let .failure(e):
            if e.description.hasPrefix("no C++ compiler") { throw XCTSkip(e.description) }
            XCTFail(e.description)
            throw e
        }
    }

    static func backend(sharedLimit: Int = 48 * 1024) throws -> CUDABackend {
        try CUDABackend(device: EmulatedDevice(launcher: launcher(), attentionSharedLimit: sharedLimit))
    }

    func assertTable(_ checks: [CUDACheck], minimumCount: Int = 60, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertGreaterThanOrEqual(checks.count, minimumCount, "checks run", file: file, line: line)
        for c in checks {
            XCTAssertTrue(c.passed, "\(c)", file: file, line: line)
            if c.exact { XCTAssertEqual(c.relL2, 0, "\(c.op): not bit-identical to the reference", file: file, line: line) }
        }
    }

    func testOpTableOnTheEmulatedKernels() throws {
        let checks = try CUDASelfTest.run(try Self.backend())
        assertTable(checks)
        // Every protocol operation appears in the table.
        let ops = Set(checks.map { String($0.op.prefix { $0 != " " }) })
        for op in ["linear", "attention", "layerNorm", "rmsNorm", "rmsNormLinear", "adaptiveModulate", "gatedAdd", "geluTanh", "geluTanhMul",
                   "silu", "add", "addPeriodic", "scale", "roundToBF16", "applyRoPE", "copy", "embed", "patchify",
                   "timeEmbedding", "eulerStep", "guideVelocity", "checkFinite"] {
            XCTAssertTrue(ops.contains(op), "op table misses \(op)")
        }
        XCTAssertEqual(checks.filter { $0.op.hasPrefix("graph:") }.count, 3, "eager vs captured and replayed")
    }

    func testOpTableThroughTheCUBLASPath() throws {
        // The cuBLAS code path (row-major y = x·Wᵀ as column-major yᵀ = op_T(W)·xᵀ, leading dimensions, bf16
        // conversion of the inputs, bias after the GEMM, bf16 weights widened for float inputs) with
        // FakeCUBLAS's index-order GEMM in place of cuBLAS: bit-identical to the reference, also when a bf16
        // GEMM is captured in a graph and replayed.
        let device = EmulatedDevice(launcher: try Self.launcher())
        let be = try CUDABackend(device: device, cublas: try FakeCUBLAS.make(on: device))
        XCTAssertTrue(be.name.contains("cuBLAS"), be.name)
        // rmsNormLinear with bf16 inputs takes the fused path here (the norm writes the GEMM's bf16 operand):
        // its "= rmsNorm + linear" rows must be bit-identical to the unfused composition.
        let checks = try CUDASelfTest.run(be, seed: 3).filter { c in ["linear", "graph:", "rmsNormLinear"].contains { c.op.hasPrefix($0) } }
        XCTAssertEqual(checks.count, 30)
        assertTable(checks, minimumCount: 30)
        XCTAssertEqual(checks.filter { $0.op.hasSuffix("= rmsNorm + linear") }.count, 6)
    }

    func testAttentionTilingAtTheOptInSharedMemoryLimit() throws {
        // H100/H200 let a block opt into 227 KiB: 16-query tiles (the 48 KiB default gives smaller ones).
        XCTAssertEqual(CUDABackend.attentionQueryTile(queries: 816, keys: 866, headDim: 256, sharedLimit: 227 * 1024), 16)
        XCTAssertEqual(CUDABackend.attentionQueryTile(queries: 816, keys: 866, headDim: 256, sharedLimit: 48 * 1024), 7)
        XCTAssertEqual(CUDABackend.attentionQueryTile(queries: 3, keys: 866, headDim: 256, sharedLimit: 48 * 1024), 3)
        XCTAssertEqual(CUDABackend.attentionQueryTile(queries: 9, keys: 100_000, headDim: 256, sharedLimit: 48 * 1024), 0)
        let checks = try CUDASelfTest.run(try Self.backend(sharedLimit: 227 * 1024), seed: 5).filter { $0.op.hasPrefix("attention") }
        XCTAssertEqual(checks.count, 12)
        assertTable(checks, minimumCount: 12)
    }

    func testTheComparisonSeesAWrongKernel() throws {
        // Control: the same emulated backend with one kernel argument altered is caught by the table's check.
        let be = try Self.backend(), ref = ReferenceBackend()
        let x: [Float] = (0..<300).map { Float($0) * 0.01 - 1.3 }
        let a = DeviceTensor(shape: [300], uploading: x, backend: be), b = DeviceTensor(shape: [300], uploading: x, backend: ref)
        be.scale(a.ref, count: 300, by: 0.5, roundToBF16: false)
        ref.scale(b.ref, count: 300, by: 0.5, roundToBF16: false)
        XCTAssertEqual(be.download(a.ref, count: 300), ref.download(b.ref, count: 300))
        be.scale(a.ref, count: 299, by: 2.0, roundToBF16: true)   // differs from the reference below
        ref.scale(b.ref, count: 300, by: 2.0, roundToBF16: false)
        XCTAssertGreaterThan(CUDASelfTest.relL2(be.download(a.ref, count: 300), ref.download(b.ref, count: 300)), 1e-4)
    }
}
