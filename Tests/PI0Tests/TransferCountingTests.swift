// Proof that nothing leaks to the host (issue 12, item 3): the model runs on the counting backend,
// whose tensors live in its own arena (any host access to them stops the process), and one
// `sampleActions` performs exactly the observation's uploads, no transfer, synchronisation or allocation
// while the prefix and the 10-step loop are issued, and one download — with actions bit-identical to
// the cpu backend's.
import Foundation
import XCTest
@testable import PI0
import PI0CPU
import PI0Tensor
import PI0TestSupport
import SafeTensors

final class TransferCountingTests: XCTestCase {
    /// The uploads one observation needs: each camera that reaches the vision tower, the token ids, the
    /// state (π0 only), the noise, the two masks and four RoPE tables, and the RTC target and weights.
    func expectedUploads(_ shape: SamplingShape, _ kind: ModelKind) -> Int {
        shape.cameras.count + 1 + (kind == .pi0 ? 1 : 0) + 1 + 6 + (shape.guided ? 2 : 0)
    }

    func testOneSampleUploadsTheObservationOnlyAndDownloadsOnce() throws {
        XCTAssertFalse(Fixtures.cases.isEmpty)
        for name in Fixtures.cases {
            let dir = Fixtures.path(name)
            let ckpt = try Checkpoint(directory: dir)
            let counting = CountingBackend(wrapping: CPUBackend(threads: 2))
            let model = try PI0Model(checkpoint: ckpt, backend: counting)
            let cpu = try PI0Model(checkpoint: try Checkpoint(directory: dir), backend: CPUBackend(threads: 2))
            var inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: dir + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
            for rtc in [false, true] {
                if rtc {
                    let a = ckpt.config.maxActionDim
                    inputs.rtc = RTCRequest(rows: (0..<inputs.batch).map { b in
                        RTCRequest.Row(previousChunk: (0..<(5 * a)).map { Float(($0 + b) % 7) * 0.1 }, previousSteps: 5,
                                       previousWidth: a, inferenceDelay: 1)
                    })
                }
                let want = try cpu.sampleActions(inputs, steps: 10, seed: 4).array
                _ = try model.sampleActions(inputs, steps: 10, seed: 4)   // makes the plan (allocations, time conditioning)

                // A whole call.
                counting.resetCounters()
                let got = try model.sampleActions(inputs, steps: 10, seed: 4).array
                let call = counting.snapshot()
                XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(name) rtc \(rtc): counting vs cpu")
                let (shape, guide) = try model.prepare(inputs, steps: 10)
                XCTAssertEqual(call.uploads, expectedUploads(shape, model.kind), "\(name) rtc \(rtc): \(call)")
                XCTAssertEqual(call.downloads, 1, "\(name) rtc \(rtc): \(call)")
                XCTAssertEqual(call.synchronizations, 0, "\(name) rtc \(rtc)")
                XCTAssertEqual(call.allocations, 0, "\(name) rtc \(rtc): the plan is reused")

                // The same call phase by phase, with allocation and transfers refused while issuing work.
                let plan = model.takePlan(shape)
                defer { model.returnPlan(plan) }
                let noise = inputs.noise ?? GaussianNoise.sample(count: plan.actionCount, seed: 4)
                let upload = try counting.measure { try plan.upload(inputs, noise: noise, guide: guide) }
                XCTAssertEqual(upload.uploads, expectedUploads(shape, model.kind), "\(name)")
                XCTAssertEqual(upload.opCount, 0, "\(name): uploads only")
                counting.allocationsFrozen = true; counting.transfersFrozen = true
                let prefix = counting.measure { plan.enqueuePrefix(observer: nil, lap: nil) }
                let loop = counting.measure { plan.enqueueLoop(observer: nil, lap: nil) }
                counting.allocationsFrozen = false; counting.transfersFrozen = false
                for (phase, c) in [("prefix", prefix), ("loop", loop)] {
                    XCTAssertEqual(c.transfers + c.synchronizations + c.allocations, 0, "\(name) \(phase): \(c)")
                }
                XCTAssertEqual(loop.ops["eulerStep"], 10, "\(name)")
                XCTAssertGreaterThan(prefix.ops["attention"] ?? 0, 0, "\(name)")
                var actions: [Float] = []
                let finish = try counting.measure { actions = try plan.finish().array }
                XCTAssertEqual(finish.downloads, 1, "\(name)"); XCTAssertEqual(finish.uploads + finish.opCount, 0, "\(name)")
                XCTAssertEqual(actions.map(\.bitPattern), want.map(\.bitPattern), "\(name) rtc \(rtc): phase by phase")
                XCTAssertEqual(counting.violations, [], "\(name)")
            }
        }
    }

    /// A NaN produced inside the loop is reported through the status slots of the one download, naming
    /// the stage, without any transfer inside the loop.
    func testNonFiniteStageComesBackWithTheActions() throws {
        let dir = Fixtures.path("tiny_1cam")
        let ckpt = try Checkpoint(directory: dir)
        let counting = CountingBackend(wrapping: CPUBackend(threads: 1))
        let model = try PI0Model(checkpoint: ckpt, backend: counting)
        var inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: dir + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
        inputs.noise = [Float](repeating: 3e38, count: inputs.batch * ckpt.config.chunkSize * ckpt.config.maxActionDim)
        counting.resetCounters()
        XCTAssertThrowsError(try model.sampleActions(inputs, steps: 10)) { e in
            guard let err = e as? NonFiniteError else { return XCTFail("\(e)") }
            XCTAssertTrue(err.stage.hasPrefix("denoise step"), err.stage)
            XCTAssertFalse(err.value.isFinite)
        }
        XCTAssertEqual(counting.snapshot().downloads, 1)
    }
}
