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
        }
    }
}
