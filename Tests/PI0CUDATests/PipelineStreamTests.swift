// Pipelined sampling on two CUDA streams without a GPU (docs/CUDA.md, "Streams"): PI0Runtime's
// `SamplingEngine.submit` / `collect` on `CUDABackend` over the recording fake driver, the emulated
// kernels behind it. Four observations of one shape, two always in flight, in graph mode full: the exact
// driver calls of each phase (uploads only on the transfer stream from pinned memory, the event record /
// wait order between the streams, graph launches on the compute stream, the two plans alternating, one
// asynchronous download per observation, no allocation once the second plan exists), and actions
// bit-identical to sequential `sampleActions` on an eager backend.
import Foundation
import XCTest
@testable import PI0CUDA
import PI0
import PI0Runtime
import PI0Tensor
import SafeTensors

final class PipelineStreamTests: XCTestCase {
    func fixture(_ name: String, backend: CUDABackend) throws -> (PI0Model, PI0Inputs) {
        let dir = Bundle.module.resourcePath! + "/Fixtures/" + name
        let ckpt = try Checkpoint(directory: dir)
        var inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: dir + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
        inputs.noise = nil   // each observation's noise from its seed
        return (try PI0Model(checkpoint: ckpt, precision: nil, backend: backend), inputs)
    }

    func testFourPipelinedObservationsOnTwoStreams() throws {
        let launcher = try KernelEmulationTests.launcher()
        let device = RecordingDevice(wrapping: EmulatedDevice(launcher: launcher))
        let (model, x) = try fixture("tiny_1cam", backend: try CUDABackend(device: device))
        let engine = try SamplingEngine(model: model, mode: .full)
        _ = device.take()
        var phases: [(String, [String])] = []
        func phase<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let r = try body(); phases.append((name, device.take())); return r
        }
        let steps = 3
        var got: [[Float]] = []
        let t0 = try phase("submit 0") { try engine.submit(x, steps: steps, seed: 0) }
        let t1 = try phase("submit 1") { try engine.submit(x, steps: steps, seed: 1) }
        got.append(try phase("collect 0") { try engine.collect(t0) }.array)
        let t2 = try phase("submit 2") { try engine.submit(x, steps: steps, seed: 2) }
        got.append(try phase("collect 1") { try engine.collect(t1) }.array)
        let t3 = try phase("submit 3") { try engine.submit(x, steps: steps, seed: 3) }
        got.append(try phase("collect 2") { try engine.collect(t2) }.array)
        got.append(try phase("collect 3") { try engine.collect(t3) }.array)
        let calls = Dictionary(uniqueKeysWithValues: phases)

        // Uploads: every one on the transfer stream, the same number for every observation.
        let uploads = calls["submit 3"]!.filter { $0.hasPrefix("cuMemcpyHtoDAsync") }
        XCTAssertEqual(uploads, [String](repeating: "cuMemcpyHtoDAsync transfer", count: 10),
                       "image, ids, state, noise, two masks, four RoPE tables")
        let upload = uploads
        func graphed(_ slot: (uploaded: String, done: String), capture: Bool, _ c: [String]) {
            let head = ["cuStreamWaitEvent transfer \(slot.done)"] + upload + ["cuEventRecord \(slot.uploaded) transfer",
                                                                              "cuStreamWaitEvent compute \(slot.uploaded)"]
            let tail = ["cuGraphLaunch", "cuMemcpyDtoHAsync", "cuEventRecord \(slot.done) compute"]
            XCTAssertEqual(Array(c.prefix(head.count)), head)
            XCTAssertEqual(Array(c.suffix(tail.count)), tail)
            let middle = c.dropFirst(head.count).dropLast(tail.count)
            if capture {
                XCTAssertEqual(middle.first, "cuStreamBeginCapture")
                XCTAssertEqual(Array(middle.suffix(3)), ["cuStreamEndCapture", "cuGraphInstantiate", "cuGraphDestroy"])
                XCTAssertTrue(middle.dropFirst().dropLast(3).allSatisfy { $0.hasPrefix("cuLaunchKernel") }, "only kernels are captured")
            } else {
                XCTAssertEqual(Array(middle), [], "a replay is one graph launch")
            }
        }
        // Observation 0: a new plan (its buffers, pinned staging and results, events e1 = uploaded, e2 = done),
        // then the shape's eager warm-up run.
        let s0 = calls["submit 0"]!
        let newPlan = ["cuMemHostAlloc", "cuMemHostAlloc", "cuEventCreate e1", "cuEventCreate e2", "cuEventRecord e2 compute",
                       "cuStreamWaitEvent transfer e2"] + upload + ["cuEventRecord e1 transfer", "cuStreamWaitEvent compute e1"]
        let start = try XCTUnwrap(s0.firstIndex(of: "cuMemHostAlloc"))
        XCTAssertTrue(s0[..<start].contains("cuMemAlloc"), "the plan's buffers are allocated first")
        XCTAssertEqual(Array(s0[start..<(start + newPlan.count)]), newPlan)
        let eager = s0[(start + newPlan.count)...].dropLast(2)
        XCTAssertGreaterThan(eager.count, 50)
        XCTAssertTrue(eager.allSatisfy { $0.hasPrefix("cuLaunchKernel") }, "eager warm-up: kernels only")
        XCTAssertEqual(Array(s0.suffix(2)), ["cuMemcpyDtoHAsync", "cuEventRecord e2 compute"], "asynchronous download, no synchronisation")

        // Observation 1 overlaps 0: the second plan (e3, e4), captured at once (the shape is warm).
        let s1 = calls["submit 1"]!
        let second = try XCTUnwrap(s1.firstIndex(of: "cuMemHostAlloc"))
        XCTAssertEqual(Array(s1[second..<(second + 5)]), ["cuMemHostAlloc", "cuMemHostAlloc", "cuEventCreate e3", "cuEventCreate e4",
                                                          "cuEventRecord e4 compute"])
        graphed((uploaded: "e3", done: "e4"), capture: true, Array(s1[(second + 5)...]))
        // Observation 2 reuses plan 0 (captured now), 3 replays plan 1: nothing allocated any more.
        graphed((uploaded: "e1", done: "e2"), capture: true, calls["submit 2"]!)
        graphed((uploaded: "e3", done: "e4"), capture: false, calls["submit 3"]!)
        for name in ["submit 2", "submit 3"] {
            XCTAssertFalse(calls[name]!.contains { $0.hasPrefix("cuMemAlloc") || $0 == "cuMemHostAlloc" || $0 == "cuStreamSynchronize" }, name)
        }
        // Collecting waits for that observation's event only; the plans alternate.
        XCTAssertEqual(calls["collect 0"], ["cuEventSynchronize e2"])
        XCTAssertEqual(calls["collect 1"], ["cuEventSynchronize e4"])
        XCTAssertEqual(calls["collect 2"], ["cuEventSynchronize e2"])
        XCTAssertEqual(calls["collect 3"], ["cuEventSynchronize e4"])
        XCTAssertEqual(engine.plans, 2)

        // The same actions as sequential sampling on an eager backend.
        let (eagerModel, _) = try fixture("tiny_1cam", backend: try CUDABackend(device: EmulatedDevice(launcher: launcher)))
        for (k, actions) in got.enumerated() {
            let want = try eagerModel.sampleActions(x, steps: steps, seed: UInt64(k)).array
            XCTAssertTrue(actions.map(\.bitPattern) == want.map(\.bitPattern), "observation \(k): pipelined vs sequential")
        }
        XCTAssertNotEqual(got[0], got[1], "different noise, different actions")
    }

    func testSampleActionsOnCUDAIsSubmitThenCollect() throws {
        let device = RecordingDevice()
        let (model, x) = try fixture("tiny_1cam", backend: try CUDABackend(device: device))
        let engine = try SamplingEngine(model: model, mode: .loop)
        for _ in 0..<3 { _ = try engine.sampleActions(x, steps: 2) }
        _ = device.take()
        _ = try engine.sampleActions(x, steps: 2)
        let calls = device.take()
        XCTAssertEqual(calls.filter { $0.hasPrefix("cuMemcpyHtoDAsync") && $0 != "cuMemcpyHtoDAsync transfer" }, [], "uploads on the transfer stream")
        XCTAssertEqual(calls.filter { $0 == "cuGraphLaunch" }.count, 1)
        XCTAssertEqual(calls.filter { $0.hasPrefix("cuLaunchKernel") }.isEmpty, false, "loop mode: the prefix runs eagerly")
        XCTAssertEqual(Array(calls.suffix(3)), ["cuMemcpyDtoHAsync", "cuEventRecord e2 compute", "cuEventSynchronize e2"])
        XCTAssertEqual(engine.plans, 1, "sequential calls keep one plan")
    }
}
