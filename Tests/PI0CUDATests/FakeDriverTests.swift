// The real driver path (`CUDABackend(device:)` → `CUDADriver` dlsym → `CUDAContext`) on a fake
// libcuda.so.1 that runs the kernels on the CPU (FakeLibcuda.swift): every entry point resolves with the
// declared C signature, the kernels load from the cache folder and are looked up by name, the attention
// kernel opts into the device's larger shared memory, launches carry their parameters, and stream
// capture / graph launch work through the driver calls. The op table (with its graph check) must match
// the reference exactly as on the emulated device.
import Foundation
import XCTest
@testable import PI0CUDA
import PI0Tensor

final class FakeDriverTests: XCTestCase {
    func testTheDriverPathOnAFakeLibcuda() throws {
        let dir: String
        switch FakeLibcuda.folder {
        case let .success(d): dir = d
        case let .failure(e):
            if e.description.hasPrefix("no C++ compiler") { throw XCTSkip(e.description) }
            return XCTFail(e.description)
        }
        // The kernels come from the cache folder (the fake ignores the image), so no NVRTC is needed.
        let cache = dir + "/cache"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        try Data([0x7F, 0x45, 0x4C, 0x46]).write(to: URL(fileURLWithPath: CUDAKernelCache.path(arch: "sm_90", cubin: true, in: cache)))
        let saved = ["PI0_CUDA_LIB_DIR", "PI0_CUDA_CACHE_DIR"].map { ($0, ProcessInfo.processInfo.environment[$0]) }
        setenv("PI0_CUDA_LIB_DIR", dir, 1); setenv("PI0_CUDA_CACHE_DIR", cache, 1)
        defer { for (k, v) in saved { if let v { setenv(k, v, 1) } else { unsetenv(k) } } }

        let be = try CUDABackend(device: 0, useCUBLAS: false)
        try? FileManager.default.removeItem(atPath: dir)   // loaded: the files are no longer needed
        XCTAssertEqual(be.name, "cuda (pi0 fake driver, sm_90, cubin kernels, fallback GEMM)")
        let ctx = try XCTUnwrap(be.device as? CUDAContext)
        XCTAssertEqual(ctx.driver.library.path, dir + "/libcuda.so.1")
        XCTAssertEqual(ctx.attentionSharedLimit, 232_448, "the attention kernel opted into the device's shared memory")
        typealias Count = @convention(c) (Int32) -> Int
        let count = try ctx.driver.library.symbol("pi0_fake_count", as: Count.self)
        XCTAssertEqual(count(5), 1, "cuFuncSetAttribute once, for pi0_attention")

        let checks = try CUDASelfTest.run(be, seed: 21)
        XCTAssertGreaterThan(checks.count, 60)
        for c in checks {
            XCTAssertTrue(c.passed, "\(c)")
            if c.exact { XCTAssertEqual(c.relL2, 0, "\(c.op): not bit-identical to the reference") }
        }
        XCTAssertEqual(checks.filter { $0.op.hasPrefix("graph:") }.count, 3)
        XCTAssertEqual(count(4), 1, "one stream capture")
        XCTAssertEqual(count(3), 2, "two graph launches")
        XCTAssertGreaterThan(count(2), 60, "kernel launches through cuLaunchKernel")
        XCTAssertGreaterThan(count(0), 100, "allocations through cuMemAlloc")

        // AsyncTransfers through the driver: pinned memory, a copy on the transfer stream, events across
        // the streams, an asynchronous download the host waits for.
        let pinned = be.allocatePinned(count: 6), back = be.allocatePinned(count: 6)
        XCTAssertEqual(count(6), 2, "cuMemHostAlloc")
        for i in 0..<6 { pinned.floats[i] = Float(i) * 1.5 - 2 }
        let t = DeviceTensor(shape: [6], backend: be)
        let uploaded = be.makeEvent(), done = be.makeEvent()
        be.uploadAsync(pinned, offset: 1, count: 5, to: t.ref)
        be.record(uploaded, on: .transfer)
        be.wait(.compute, for: uploaded)
        be.scale(t.ref, count: 6, by: 2, roundToBF16: false)
        be.downloadAsync(t.ref, count: 6, into: back, offset: 0)
        be.record(done, on: .compute)
        be.hostWait(done)
        XCTAssertEqual(Array(back.floats), [-1, 2, 5, 8, 11, 0])
    }
}
