// `SamplingEngine` on a recording backend (RecordingBackend.swift): capture once, replay for every
// later observation of the shape, results bit-identical to eager sampling, and no allocation or
// transfer while capturing or replaying beyond the observation's uploads and one download.
import Foundation
import XCTest
import PI0
import PI0CPU
@testable import PI0Runtime
import PI0Tensor
import PI0TestSupport

final class SamplingEngineTests: XCTestCase {
    var dir: String!

    override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(atPath: dir) } }

    func tinyModel(_ kind: ModelKind, backend: ComputeBackend) throws -> PI0Model {
        if dir == nil {
            dir = NSTemporaryDirectory() + "pi0-engine-\(UUID().uuidString)"
            let vlm = GemmaDims(width: 64, depth: 2, mlpDim: 128, heads: 4, kvHeads: 1, headDim: 16, vocabSize: 300)
            let expert = GemmaDims(width: 32, depth: 2, mlpDim: 64, heads: 4, kvHeads: 1, headDim: 16, vocabSize: 300)
            let dims = ModelDims(vision: SigLIPDims(hidden: 32, layers: 1, heads: 4, intermediate: 64, patchSize: 14, imageSize: 28),
                                 vlm: vlm, expert: expert)
            try RandomCheckpoint.write(to: dir, dims: dims, model: kind, dtype: .float32, seed: 11, writeDims: true)
        }
        return try PI0Model(checkpoint: try Checkpoint(directory: dir), backend: backend)
    }

    /// Batch 2, two cameras (camera 1 missing in row 1 when `maskCamera`), `valid` real tokens of 12.
    func inputs(_ model: PI0Model, seed: UInt64, valid: Int, maskCamera: Bool, rtc: Bool = false) -> PI0Inputs {
        var rng = SplitMix64(seed: seed)
        let side = model.dims.vision.imageSize, b = 2, l = 12
        let images = (0..<2).map { _ in (0..<(b * 3 * side * side)).map { _ in Float(Double(rng.next() >> 11) / 9007199254740992.0 * 2 - 1) } }
        let tokens = (0..<b).map { _ in (0..<l).map { j in j < valid ? Int(rng.next() % 300) : 0 } }
        let masks = (0..<b).map { _ in (0..<l).map { $0 < valid } }
        let state = model.kind == .pi0 ? (0..<(b * model.config.maxStateDim)).map { _ in Float(Double(rng.next() >> 11) / 9007199254740992.0 - 0.5) } : []
        var x = PI0Inputs(batch: b, images: images, imageMasks: [[true, true], [true, !maskCamera]], langTokens: tokens,
                          langMasks: masks, state: state)
        if rtc {
            let a = model.config.maxActionDim
            x.rtc = RTCRequest(rows: [RTCRequest.Row(previousChunk: (0..<(10 * a)).map { _ in Float(Double(rng.next() >> 11) / 9007199254740992.0) },
                                                     previousSteps: 10, previousWidth: a, inferenceDelay: 2), nil])
        }
        return x
    }

    func testFullGraphReplaysBitIdenticalToEagerWithoutAllocatingOrTransferring() throws {
        for kind in [ModelKind.pi0, .pi05] {
            dir = nil
            let recorder = RecordingBackend(wrapping: CPUBackend(threads: 2))
            let model = try tinyModel(kind, backend: recorder), eager = try tinyModel(kind, backend: CPUBackend(threads: 2))
            let engine = try SamplingEngine(model: model, mode: .full)
            for (call, rtc) in [(0, false), (1, false), (2, false), (3, true), (4, true)] {
                let x = inputs(model, seed: UInt64(100 + call), valid: 7, maskCamera: true, rtc: rtc)
                let before = (recorder.allocations, recorder.uploads, recorder.downloads, recorder.eagerOps)
                let got = try engine.sampleActions(x, steps: 3, seed: UInt64(call))
                let want = try eager.sampleActions(x, steps: 3, seed: UInt64(call))
                XCTAssertEqual(got.array.map(\.bitPattern), want.array.map(\.bitPattern), "\(kind) call \(call)")
                XCTAssertEqual(recorder.downloads - before.2, 1, "\(kind) call \(call): one download (actions and checks)")
                if call == 2 || call == 4 {
                    // Later calls of a captured shape: uploads only, no allocation, no operation issued eagerly.
                    XCTAssertEqual(recorder.allocations - before.0, 0, "\(kind) call \(call)")
                    XCTAssertEqual(recorder.eagerOps - before.3, 0, "\(kind) call \(call)")
                    XCTAssertGreaterThan(recorder.uploads - before.1, 0)
                }
            }
            XCTAssertEqual(engine.capturedShapes, 2, "\(kind): one graph without RTC, one with")
            XCTAssertEqual(recorder.captures, 2, "\(kind)")
            XCTAssertEqual(recorder.replays, 3, "\(kind): calls 1, 2 (without RTC) and 4 (with)")
        }
    }

    /// Loop mode keeps every prompt position, so prompts of any length (and any camera mask) share one
    /// captured loop. Padding is then masked rather than dropped: softmax sums gain exact zeros, so the
    /// actions equal eager sampling up to float32 summation order.
    func testLoopGraphServesEveryPromptLengthWithOneCapture() throws {
        let recorder = RecordingBackend(wrapping: CPUBackend(threads: 2))
        let model = try tinyModel(.pi0, backend: recorder), eager = try tinyModel(.pi0, backend: CPUBackend(threads: 2))
        let engine = try SamplingEngine(model: model, mode: .loop)
        for (call, (valid, maskCamera)) in [(3, false), (9, true), (12, false), (5, true)].enumerated() {
            let x = inputs(model, seed: UInt64(200 + call), valid: valid, maskCamera: maskCamera)
            let got = try engine.sampleActions(x, steps: 4, seed: 9).array
            let want = try eager.sampleActions(x, steps: 4, seed: 9).array
            let r = ParityResult(name: "actions", actual: got, expected: want)
            XCTAssertTrue(r.passes(minPCC: 0.99999, maxRelL2: 1e-6), "call \(call) (\(valid) tokens): \(r)")
        }
        XCTAssertEqual(engine.capturedShapes, 1)
        XCTAssertEqual(recorder.captures, 1)
        XCTAssertEqual(recorder.replays, 3)
    }

    /// At most `maxPlans` shapes keep a plan and a graph: the least recently used is dropped, and a
    /// dropped shape is planned (and captured) again when it comes back, with the same results.
    func testPlansAreBoundedLeastRecentlyUsedFirst() throws {
        let recorder = RecordingBackend(wrapping: CPUBackend(threads: 1))
        let model = try tinyModel(.pi0, backend: recorder), eager = try tinyModel(.pi0, backend: CPUBackend(threads: 1))
        let engine = try SamplingEngine(model: model, mode: .full, maxPlans: 2)
        for (call, valid) in [3, 3, 5, 5, 7, 7, 3, 3].enumerated() {   // three shapes (prompt lengths), twice each
            let x = inputs(model, seed: UInt64(300 + call), valid: valid, maskCamera: false)
            XCTAssertEqual(try engine.sampleActions(x, steps: 2, seed: 1).array.map(\.bitPattern),
                           try eager.sampleActions(x, steps: 2, seed: 1).array.map(\.bitPattern), "call \(call)")
            XCTAssertLessThanOrEqual(engine.plannedShapes, 2)
        }
        XCTAssertEqual(engine.plannedShapes, 2)
        XCTAssertEqual(recorder.captures, 4, "3, 5, 7, then 3 again after it was dropped")
    }

    func testGraphModesNeedACapturingBackend() throws {
        let model = try tinyModel(.pi0, backend: CPUBackend(threads: 1))
        XCTAssertNoThrow(try SamplingEngine(model: model, mode: .none))
        for mode in [GraphMode.full, .loop] {
            XCTAssertThrowsError(try SamplingEngine(model: model, mode: mode)) { e in
                XCTAssertTrue("\(e)".contains("--graph none"), "\(e)")
            }
        }
    }
}
