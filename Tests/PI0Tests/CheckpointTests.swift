// Checkpoint key mapping and strict loading: renamed/prefix-less keys give identical actions; missing,
// misshapen and unexpected tensors, bad configs and bad inputs give errors that name what is wrong.
import Foundation
import XCTest
@testable import PI0
import PI0Tensor
import SafeTensors

final class CheckpointTests: XCTestCase {
    var tmp: String!

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "pi0-ckpt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    /// Copies tiny_1cam into `tmp`, rewriting the weights' keys with `rename` (nil drops the tensor)
    /// and appending `extra` tensors.
    func makeCase(rename: (String) -> String?, reshape: [String: [Int]] = [:], extra: [(String, [Float], [Int])] = [],
                  config: ((inout [String: Any]) -> Void)? = nil) throws -> String {
        let src = Fixtures.path("tiny_1cam")
        let file = try SafeTensorsFile(path: src + "/model.safetensors")
        var w = SafeTensorsWriter()
        for info in file.infos {
            guard let name = rename(info.name) else { continue }
            let bytes = Array(try file.rawBytes(info.name))
            if let shape = reshape[info.name] {
                let floats = try file.floats(info.name)
                let n = shape.reduce(1, *)
                try w.add(name, floats: Array((floats + floats).prefix(n)), shape: shape)
            } else {
                try w.add(name, dtype: info.dtype, shape: info.shape, bytes: bytes)
            }
        }
        for (n, v, s) in extra { try w.add(n, floats: v, shape: s) }
        try w.write(to: tmp + "/model.safetensors")
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: src + "/config.json"))) as! [String: Any]
        config?(&cfg)
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: tmp + "/config.json"))
        try FileManager.default.copyItem(atPath: src + "/pi0_dims.json", toPath: tmp + "/pi0_dims.json")
        return tmp
    }

    func actions(_ dir: String) throws -> [Float] {
        let ckpt = try Checkpoint(directory: dir)
        let model = try PI0Model(checkpoint: ckpt, backend: ReferenceBackend())
        let inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: Fixtures.path("tiny_1cam") + "/inputs.safetensors"),
                                        dims: ckpt.dims, config: ckpt.config)
        return try model.sampleActions(inputs).array
    }

    func testKeysWithoutModelPrefixAndOpenPINamesLoadIdentically() throws {
        let reference = try actions(Fixtures.path("tiny_1cam"))
        let dir = try makeCase(rename: { name in
            var n = String(name.dropFirst("model.".count))
            if n.hasPrefix("action_time_mlp_") { n = String(n.dropFirst("action_".count)) }   // time_mlp_in/out
            return n
        })
        XCTAssertEqual(try actions(dir), reference)
    }

    func testEmbedTokensWinsOverLMHead() throws {
        // A checkpoint with both: lm_head is ignored, embed_tokens (here: zeros) is what the model uses.
        let file = try SafeTensorsFile(path: Fixtures.path("tiny_1cam") + "/model.safetensors")
        let shape = try file.info("model.paligemma_with_expert.paligemma.lm_head.weight").shape
        let dir = try makeCase(rename: { $0 }, extra: [("model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight",
                                                       [Float](repeating: 0, count: shape.reduce(1, *)), shape)])
        let ckpt = try Checkpoint(directory: dir)
        let model = try PI0Model(checkpoint: ckpt, backend: ReferenceBackend())
        XCTAssertEqual((model.embedTokens as? HostEmbedding)?.table.floats().max(), 0)
        XCTAssertTrue(ckpt.unusedKeys().ignored.contains { $0.key.hasSuffix("paligemma.lm_head.weight") })
        XCTAssertTrue(ckpt.unusedKeys().ignored.contains { $0.key.hasSuffix("gemma_expert.lm_head.weight") })
        XCTAssertNotEqual(try actions(dir), try actions(Fixtures.path("tiny_1cam")))
    }

    func testMissingTensorIsNamed() throws {
        let key = "model.paligemma_with_expert.gemma_expert.model.layers.1.mlp.up_proj.weight"
        let dir = try makeCase(rename: { $0 == key ? nil : $0 })
        XCTAssertThrowsError(try PI0Model(checkpoint: try Checkpoint(directory: dir), backend: DryRunBackend())) { e in
            XCTAssertEqual(e as? CheckpointError, .missingTensor(key: key, file: dir + "/model.safetensors"))
        }
    }

    func testMisshapenTensorNamesKeyAndBothShapes() throws {
        let key = "model.paligemma_with_expert.paligemma.model.language_model.layers.0.self_attn.k_proj.weight"
        let dir = try makeCase(rename: { $0 }, reshape: [key: [32, 64]])
        XCTAssertThrowsError(try PI0Model(checkpoint: try Checkpoint(directory: dir), backend: DryRunBackend())) { e in
            guard case let .shapeMismatch(k, expected, actual, _, _)? = e as? CheckpointError else { return XCTFail("\(e)") }
            XCTAssertEqual(k, key); XCTAssertEqual(expected, [16, 64]); XCTAssertEqual(actual, [32, 64])
            XCTAssertTrue("\(e)".contains(key) && "\(e)".contains("[32, 64]") && "\(e)".contains("[16, 64]"))
        }
    }

    func testUnexpectedTensorIsReported() throws {
        let dir = try makeCase(rename: { $0 }, extra: [("model.some_new_head.weight", [1, 2], [2])])
        XCTAssertThrowsError(try PI0Model(checkpoint: try Checkpoint(directory: dir), backend: DryRunBackend())) { e in
            XCTAssertEqual(e as? CheckpointError, .unexpectedTensors(keys: ["model.some_new_head.weight"], file: dir + "/model.safetensors"))
        }
    }

    func testConfigErrorsNameTheField() throws {
        XCTAssertThrowsError(try makeCase(rename: { $0 }, config: { $0["use_fancy_thing"] = true }).ckpt()) { e in
            XCTAssertEqual(e as? PI0ConfigError, .unknownField(file: self.tmp + "/config.json", field: "use_fancy_thing"))
        }
        try FileManager.default.removeItem(atPath: tmp); try setUpWithError()
        XCTAssertThrowsError(try makeCase(rename: { $0 }, config: { $0["chunk_size"] = "fifty" }).ckpt()) { e in
            XCTAssertEqual(e as? PI0ConfigError, .wrongType(file: self.tmp + "/config.json", field: "chunk_size", expected: "a number"))
        }
        try FileManager.default.removeItem(atPath: tmp); try setUpWithError()
        XCTAssertThrowsError(try makeCase(rename: { $0 }, config: { $0["dtype"] = "float16" }).ckpt()) { e in
            guard case .invalidValue(_, "dtype", _)? = e as? PI0ConfigError else { return XCTFail("\(e)") }
        }
    }

    func testBadInputsAreRejectedByName() throws {
        let ckpt = try Checkpoint(directory: Fixtures.path("tiny_1cam"))
        let model = try PI0Model(checkpoint: ckpt, backend: ReferenceBackend())
        let good = try PI0Inputs.load(from: try SafeTensorsFile(path: Fixtures.path("tiny_1cam") + "/inputs.safetensors"),
                                      dims: ckpt.dims, config: ckpt.config)
        var nanState = good; nanState.state[3] = .nan
        XCTAssertThrowsError(try model.sampleActions(nanState)) { XCTAssertEqual($0 as? PI0InputError, .nonFinite(input: "state", index: 3)) }
        var smallImage = good; smallImage.images[0].removeLast(10)
        XCTAssertThrowsError(try model.sampleActions(smallImage)) {
            guard case .invalid("image_0", _)? = $0 as? PI0InputError else { return XCTFail("\($0)") }
        }
        var badToken = good; badToken.langTokens[0][1] = 5000
        XCTAssertThrowsError(try model.sampleActions(badToken)) {
            guard case .invalid("lang_tokens", _)? = $0 as? PI0InputError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try model.sampleActions(good, steps: 0))
    }
}

private extension String {
    func ckpt() throws -> Checkpoint { try Checkpoint(directory: self) }
}
