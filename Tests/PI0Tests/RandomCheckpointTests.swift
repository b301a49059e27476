// The checkpoint layout behind `pi0 write-random-checkpoint` matches the real one and loads strictly.
import Foundation
import XCTest
@testable import PI0
import PI0Tensor
import SafeTensors

final class RandomCheckpointTests: XCTestCase {
    func testFullSizeLayoutHasTheRealTensorCountAndParameters() throws {
        // docs/SPEC.md §8: 777 tensors, 3 501 372 176 parameters for lerobot/pi0_base (no embed_tokens).
        let dims = ModelDims(vision: .so400m, vlm: .gemma2b, expert: .gemma300m)
        let t = CheckpointLayout.tensors(dims: dims)
        XCTAssertEqual(t.count, 777)
        XCTAssertEqual(t.reduce(0) { $0 + $1.count }, 3_501_372_176)
        XCTAssertTrue(t.contains { $0.name == "model.paligemma_with_expert.paligemma.model.language_model.layers.17.mlp.down_proj.weight" && $0.shape == [2048, 16384] })
    }

    func testTinyRandomCheckpointLoadsStrictlyAndRuns() throws {
        let dir = NSTemporaryDirectory() + "pi0-rand-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var vlm = GemmaDims(width: 48, depth: 2, mlpDim: 96, heads: 4, kvHeads: 1, headDim: 8, vocabSize: 300)
        vlm.ropeTheta = 10000
        let expert = GemmaDims(width: 24, depth: 2, mlpDim: 40, heads: 4, kvHeads: 1, headDim: 8, vocabSize: 300)
        let dims = ModelDims(vision: SigLIPDims(hidden: 24, layers: 1, heads: 3, intermediate: 40, patchSize: 14, imageSize: 28),
                             vlm: vlm, expert: expert)
        for dtype in Precision.allCases {
            try RandomCheckpoint.write(to: dir, dims: dims, dtype: dtype, writeDims: true)
            let ckpt = try Checkpoint(directory: dir)
            XCTAssertEqual(ckpt.dims, dims)
            XCTAssertEqual(ckpt.config.precision, dtype)
            let model = try PI0Model(checkpoint: ckpt, backend: ReferenceBackend())
            let side = 28
            let inputs = PI0Inputs(batch: 1, images: [[Float](repeating: 0.1, count: 3 * side * side)], imageMasks: [[true]],
                                   langTokens: [[2, 5, 7, 0]], langMasks: [[true, true, true, false]],
                                   state: [Float](repeating: 0.5, count: 32))
            let a = try model.sampleActions(inputs, steps: 2, seed: 3)
            XCTAssertEqual(a.shape, [1, 50, 32])
            XCTAssertTrue(a.array.allSatisfy(\.isFinite))
            let file = try SafeTensorsFile(path: dir + "/model.safetensors")
            XCTAssertEqual(file.infos.first?.dtype, dtype == .bfloat16 ? .BF16 : .F32)
        }
    }
}
