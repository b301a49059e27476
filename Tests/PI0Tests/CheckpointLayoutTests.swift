// The checkpoint layout is recorded from the modules' own key declarations (CheckpointLayout.swift):
// on every fixture checkpoint (written by LeRobot) it is exactly the file's tensors, names and shapes,
// and the model reads every tensor of it except the one declared unused on purpose, and nothing else.
import Foundation
import XCTest
@testable import PI0
import PI0Tensor
import SafeTensors

final class CheckpointLayoutTests: XCTestCase {
    func testLayoutIsExactlyWhatTheModelReadsFromEachFixture() throws {
        for name in ["tiny_1cam", "tiny_3cam_bf16", "pi05_tiny_1cam", "pi05_tiny_2cam_bf16"] {
            let ckpt = try Checkpoint(directory: Fixtures.path(name))
            let c = ckpt.config
            let layout = CheckpointLayout.tensors(dims: ckpt.dims, model: c.model, maxStateDim: c.maxStateDim,
                                                  maxActionDim: c.maxActionDim)
            let inFile = Dictionary(uniqueKeysWithValues: ckpt.safetensors.infos.map { ($0.name, $0.shape) })
            XCTAssertEqual(Set(layout.map(\.name)).symmetricDifference(inFile.keys), [], "\(name): names in only one of layout and file")
            for t in layout where inFile[t.name] != nil { XCTAssertEqual(t.shape, inFile[t.name], "\(name): \(t.name)") }

            _ = try PI0Model(checkpoint: ckpt, backend: DryRunBackend())
            let read = Set(ckpt.usedKeys.map { "model." + $0 })
            let unused = Set(ckpt.unusedKeys().ignored.map(\.key))
            XCTAssertEqual(unused, ["model.paligemma_with_expert.gemma_expert.lm_head.weight"], name)
            XCTAssertTrue(read.contains("model." + PI0Keys.lmHead), "\(name): the tied lm_head is the token embedding")
            XCTAssertEqual(read, Set(layout.map(\.name)).subtracting(unused), name)
        }
    }

    func testRolesFollowFromEachTensorsKindAndShape() throws {
        let dims = ModelDims(vision: .so400m, vlm: .gemma2b, expert: .gemma300m)
        for kind in [ModelKind.pi0, .pi05] {
            let layout = CheckpointLayout.tensors(dims: dims, model: kind)
            XCTAssertEqual(layout.map(\.name), layout.map(\.name).sorted())
            for t in layout {
                let expected: CheckpointTensor.Role
                if t.name.hasSuffix(".bias") {
                    expected = .bias
                } else if t.name.hasSuffix(".dense.weight") {
                    expected = .adaptiveNorm(fanIn: t.shape[1])
                } else if t.name.hasSuffix("lm_head.weight") || t.name.hasSuffix("position_embedding.weight") {
                    expected = .embedding
                } else if t.shape.count == 1 {
                    expected = .norm
                } else {
                    expected = .linear(fanIn: t.shape.dropFirst().reduce(1, *))
                }
                XCTAssertEqual(t.role, expected, "\(kind) \(t.name)")
            }
            XCTAssertEqual(layout.filter { $0.role == .adaptiveNorm(fanIn: 1024) }.count, kind == .pi05 ? 37 : 0)
        }
    }
}
