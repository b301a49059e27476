// CUDA graph capture without a GPU. With a fake driver that records every call: a sequence of
// operations is captured once (cuStreamBeginCapture … cuStreamEndCapture, cuGraphInstantiate) as
// exactly the kernel launches an eager run issues, and each replay is one cuGraphLaunch: no
// cuMemAlloc, no copy, no synchronisation during capture or replay. With the emulated kernels: the
// fixture models sampled eagerly, as one captured graph and with only the denoise loop captured give
// bit-identical actions within the fixtures' tolerance of LeRobot's.
import Foundation
import XCTest
@testable import PI0CUDA
import PI0Tensor

final class GraphCaptureTests: XCTestCase {
    /// A small denoise-like sequence: linear, RMSNorm, attention, gated MLP, residual, Euler step.
    struct Step {
        let be: CUDABackend
        let w: PreparedLinear, x: DeviceTensor, h: DeviceTensor, a: DeviceTensor, v: DeviceTensor
        init(_ be: CUDABackend) throws {
            self.be = be
            let vals = (0..<(8 * 8)).map { Float($0 % 7) * 0.05 - 0.1 }
            w = try be.prepareLinear(WeightTensor(name: "w", shape: [8, 8], floats: vals), bias: nil)
            x = DeviceTensor(shape: [4, 8], uploading: (0..<32).map { Float($0) * 0.03 - 0.4 }, backend: be)
            h = DeviceTensor(shape: [4, 8], backend: be); a = DeviceTensor(shape: [4, 8], backend: be)
            v = DeviceTensor(shape: [4, 8], backend: be)
        }
        func enqueue(steps: Int) {
            for _ in 0..<steps {
                be.rmsNorm(x.ref, rows: 4, width: 8, weight: nil, eps: 1e-6, roundToBF16: false, out: h.ref)
                be.linear(w, x: h.ref, rows: 4, ldx: 8, y: a.ref, ldy: 8)
                be.attention(AttentionCall(q: a.ref, qStride: 8, k: h.ref, kStride: 8, v: h.ref, vStride: 8, mask: nil, maskStride: 0,
                                           out: v.ref, outStride: 8, queries: 4, keys: 4, heads: 2, kvHeads: 1, headDim: 4,
                                           scale: 0.5, roundToBF16: false))
                be.geluTanhMul(gate: v.ref, up: a.ref, rows: 4, width: 8, ldIn: 8, roundToBF16: false, out: h.ref, ldOut: 8)
                be.add(v.ref, h.ref, count: 32, roundToBF16: false)
                be.eulerStep(x.ref, velocity: v.ref, count: 32, dt: -0.1)
            }
        }
    }

    func testCaptureOnceReplayManyTimesWithoutAllocationOrTransfer() throws {
        let device = RecordingDevice()
        let be = try CUDABackend(device: device)
        let s = try Step(be)
        XCTAssertTrue(device.take().contains("cuMemAlloc"), "setup allocates (before capture)")
        s.enqueue(steps: 3)
        let eager = device.take()
        XCTAssertEqual(eager.count, 18)
        XCTAssertTrue(eager.allSatisfy { $0.hasPrefix("cuLaunchKernel ") }, "an eager operation only launches: \(eager)")

        let work = try be.capture { s.enqueue(steps: 3) }
        let captured = device.take()
        XCTAssertEqual(captured.first, "cuStreamBeginCapture")
        XCTAssertEqual(Array(captured.dropFirst().prefix(eager.count)), eager, "the captured sequence is the eager one")
        XCTAssertEqual(Array(captured.dropFirst(1 + eager.count)), ["cuStreamEndCapture", "cuGraphInstantiate", "cuGraphDestroy"])

        for _ in 0..<5 {
            try be.replay(work)
            XCTAssertEqual(device.take(), ["cuGraphLaunch"], "a replay is one graph launch")
        }
        _ = be.download(s.x.ref, count: 32)
        XCTAssertEqual(device.take(), ["cuMemcpyDtoHAsync", "cuStreamSynchronize"])
        withExtendedLifetime(work) {}
    }

    func testTheGraphIsDestroyedWithTheLastReference() throws {
        let device = RecordingDevice()
        let be = try CUDABackend(device: device)
        let s = try Step(be)
        var work: CapturedWork? = try be.capture { s.enqueue(steps: 1) }
        _ = device.take()
        work = nil
        XCTAssertNil(work)
        XCTAssertEqual(device.take(), ["cuGraphExecDestroy"])
    }

    func testAFailingBodyEndsTheCaptureAndRethrows() throws {
        struct Stop: Error {}
        let device = RecordingDevice()
        let be = try CUDABackend(device: device)
        let s = try Step(be)
        _ = device.take()
        XCTAssertThrowsError(try be.capture { s.enqueue(steps: 1); throw Stop() }) { XCTAssertTrue($0 is Stop) }
        let calls = device.take()
        XCTAssertEqual(calls.first, "cuStreamBeginCapture")
        XCTAssertEqual(Array(calls.suffix(2)), ["cuStreamEndCapture", "cuGraphDestroy"], "the half-captured graph is discarded")
        s.enqueue(steps: 1)   // the backend is usable eagerly again
        XCTAssertEqual(device.take().count, 6)
    }

    func testACaptureShortOfBF16ScratchIsRedoneAfterGrowingIt() throws {
        // The cuBLAS bf16 path converts activations into a scratch sized eagerly; a captured linear with
        // more rows than any eager one finds it short: the capture is discarded, the scratch grows outside
        // it, and the body is captured again. The replay then computes what the reference does.
        let emulated = EmulatedDevice(launcher: try KernelEmulationTests.launcher())
        let device = RecordingDevice(wrapping: emulated)
        let be = try CUDABackend(device: device, cublas: try FakeCUBLAS.make(on: emulated, recorder: device))
        let (rows, k, n) = (1030, 512, 3)   // 1030·512 bf16 values: just over the 1 MiB first scratch
        var rng = CUDASelfTest.RNG(state: 9)
        let w = WeightTensor(name: "w", shape: [n, k], floats: rng.array(n * k, 0.05), dtype: .bfloat16)
        let xs = rng.array(rows * k, bf16: true)
        let ref = ReferenceBackend()
        let x = DeviceTensor(shape: [rows, k], uploading: xs, backend: be), y = DeviceTensor(shape: [rows, n], backend: be)
        let p = try be.prepareLinear(w, bias: nil, inputsAreBF16: true)
        be.linear(p, x: x.ref, rows: 2, ldx: k, y: y.ref, ldy: n)   // eager: a 1 MiB scratch
        _ = device.take()

        let work = try be.capture { be.linear(p, x: x.ref, rows: rows, ldx: k, y: y.ref, ldy: n) }
        XCTAssertEqual(device.take(), [
            "cuStreamBeginCapture", "cuStreamEndCapture", "cuGraphDestroy",                 // short: discarded
            "cuStreamSynchronize", "cuMemFree", "cuMemAlloc", "cuMemsetD32Async",           // grown outside
            "cuStreamBeginCapture", "cuLaunchKernel pi0_f32_to_bf16", "cublasGemmEx",
            "cuStreamEndCapture", "cuGraphInstantiate", "cuGraphDestroy",
        ])
        try be.replay(work)
        XCTAssertEqual(device.take(), ["cuGraphLaunch"])
        let rx = DeviceTensor(shape: [rows, k], uploading: xs, backend: ref), ry = DeviceTensor(shape: [rows, n], backend: ref)
        ref.linear(try ref.prepareLinear(w, bias: nil, inputsAreBF16: true), x: rx.ref, rows: rows, ldx: k, y: ry.ref, ldy: n)
        XCTAssertEqual(be.download(y.ref, count: rows * n), ref.download(ry.ref, count: rows * n))
    }

    func testFixturesOnTheEmulatedKernelsInEveryGraphMode() throws {
        let launcher = try KernelEmulationTests.launcher()
        for name in FixtureRun.names {
            var results: [GraphMode: [Float]] = [:]
            for mode in GraphMode.allCases {
                let device = RecordingDevice(wrapping: EmulatedDevice(launcher: launcher))
                let be = try CUDABackend(device: device)
                var byPhase: [String: [[String]]] = [:]
                let r = try FixtureRun.run(name, backend: be, mode: mode, replays: mode == .none ? 1 : 2) { byPhase[$0, default: []].append(device.take()) }
                XCTAssertLessThanOrEqual(r.relL2, r.tolerance, "\(name) graph \(mode): actions vs LeRobot")
                results[mode] = r.actions
                guard mode != .none else { continue }
                XCTAssertEqual(byPhase["capture"]?.count, 1, "\(name) \(mode): captured once")
                for calls in byPhase["capture"] ?? [] {
                    XCTAssertEqual(calls.first, "cuStreamBeginCapture")
                    XCTAssertGreaterThan(calls.filter { $0.hasPrefix("cuLaunchKernel") }.count, 10)
                    let other = calls.filter { !$0.hasPrefix("cuLaunchKernel") && !$0.hasPrefix("cuStream") && !$0.hasPrefix("cuGraph") }
                    XCTAssertEqual(other, [], "\(name) \(mode): no allocation or transfer while capturing")
                }
                XCTAssertEqual(byPhase["replay"] ?? [], [["cuGraphLaunch"], ["cuGraphLaunch"]], "\(name) \(mode): each replay one launch")
                for calls in byPhase["upload"] ?? [] {
                    XCTAssertFalse(calls.contains("cuMemAlloc"), "\(name) \(mode): the second upload reuses the plan")
                    XCTAssertTrue(calls.allSatisfy { $0 == "cuMemcpyHtoDAsync" || $0 == "cuMemAlloc" || $0 == "cuMemsetD32Async" }, "\(calls)")
                }
                XCTAssertEqual(byPhase["finish"]?.last, ["cuMemcpyDtoHAsync", "cuStreamSynchronize"], "\(name) \(mode): one download")
            }
            XCTAssertEqual(results[.full], results[.none], "\(name): the captured graph computes what eager does")
            XCTAssertEqual(results[.loop], results[.none], "\(name): the captured loop computes what eager does")
            // The cuBLAS code path (FakeCUBLAS's index-order GEMM) captured as one graph: the same actions.
            let emulated = EmulatedDevice(launcher: launcher)
            let be = try CUDABackend(device: emulated, cublas: try FakeCUBLAS.make(on: emulated))
            let viaGEMM = try FixtureRun.run(name, backend: be, mode: .full, replays: 2)
            XCTAssertEqual(viaGEMM.actions, results[.none], "\(name): the cuBLAS path in a graph computes what the fallback does")
        }
    }
}
