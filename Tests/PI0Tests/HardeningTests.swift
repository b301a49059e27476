// Regression tests of issue 13's findings in the model layer: pi0_dims.json / config.json values that
// used to give all-NaN actions (rope_theta 0 or −1, a negative rms_norm_eps) or abort the process
// (depth 1e9) are refused at load naming file and field; FIFOs and directories named as checkpoint
// files are refused without blocking; a non-finite value inside the model is reported with its stage.
import Foundation
import XCTest
@testable import PI0
import PI0Tensor
import SafeTensors

final class HardeningTests: XCTestCase {
    var tmp: String!

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "pi0-harden-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    /// tiny_1cam copied into `tmp` with `edit` applied to pi0_dims.json, `configEdit` to config.json and
    /// `poison` (tensor name → value written at element 0) applied to the weights.
    func makeCase(dims edit: ((inout [String: Any]) -> Void)? = nil, config configEdit: ((inout [String: Any]) -> Void)? = nil,
                  poison: [String: Float] = [:]) throws -> String {
        let src = Fixtures.path("tiny_1cam")
        func json(_ name: String, _ f: ((inout [String: Any]) -> Void)?) throws {
            var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: src + "/" + name))) as! [String: Any]
            f?(&obj)
            try JSONSerialization.data(withJSONObject: obj).write(to: URL(fileURLWithPath: tmp + "/" + name))
        }
        try json("pi0_dims.json", edit)
        try json("config.json", configEdit)
        if poison.isEmpty {
            try FileManager.default.copyItem(atPath: src + "/model.safetensors", toPath: tmp + "/model.safetensors")
        } else {
            let file = try SafeTensorsFile(path: src + "/model.safetensors")
            var w = SafeTensorsWriter()
            for info in file.infos {
                var v = try file.floats(info.name)
                if let p = poison[info.name] { v[0] = p }
                try w.add(info.name, floats: v, shape: info.shape)
            }
            try w.write(to: tmp + "/model.safetensors")
        }
        return tmp
    }

    func assertFieldError(_ dir: String, file: String, field: String, line: UInt = #line) {
        XCTAssertThrowsError(try Checkpoint(directory: dir), line: line) { e in
            guard case let .invalidValue(f, k, _)? = e as? PI0ConfigError else { return XCTFail("\(e)", line: line) }
            XCTAssertEqual(f, dir + "/" + file, line: line)
            XCTAssertEqual(k, field, line: line)
        }
    }

    func testBadRopeThetaAndEpsAreRefusedAtLoad() throws {
        for (section, field, value) in [("vlm", "rope_theta", 0.0), ("expert", "rope_theta", -1.0), ("vlm", "rms_norm_eps", -1e-6),
                                        ("expert", "rms_norm_eps", 0.0), ("vision", "layer_norm_eps", -1.0)] {
            try FileManager.default.removeItem(atPath: tmp); try setUpWithError()
            let dir = try makeCase(dims: { d in var s = d[section] as! [String: Any]; s[field] = value; d[section] = s })
            assertFieldError(dir, file: "pi0_dims.json", field: "\(section).\(field)")
        }
    }

    func testHugeDimsAreRefusedBeforeAllocation() throws {
        for (section, field) in [("vlm", "depth"), ("expert", "width"), ("vlm", "mlp_dim"), ("vision", "num_layers"), ("vlm", "vocab_size")] {
            try FileManager.default.removeItem(atPath: tmp); try setUpWithError()
            let dir = try makeCase(dims: { d in var s = d[section] as! [String: Any]; s[field] = 1e9; d[section] = s })
            assertFieldError(dir, file: "pi0_dims.json", field: "\(section).\(field)")
        }
        for field in ["chunk_size", "max_action_dim", "num_inference_steps", "tokenizer_max_length"] {
            try FileManager.default.removeItem(atPath: tmp); try setUpWithError()
            let dir = try makeCase(config: { $0[field] = 1e9 })
            assertFieldError(dir, file: "config.json", field: field)
        }
    }

    func testNonRegularCheckpointFilesAreRefusedWithoutBlocking() throws {
        for name in ["model.safetensors", "config.json", "pi0_dims.json"] {
            try FileManager.default.removeItem(atPath: tmp); try setUpWithError()
            let dir = try makeCase()
            try FileManager.default.removeItem(atPath: dir + "/" + name)
            XCTAssertEqual(mkfifo(dir + "/" + name, 0o600), 0)
            XCTAssertThrowsError(try Checkpoint(directory: dir)) { e in
                XCTAssertTrue("\(e)".contains(name) && "\(e)".contains("FIFO"), "\(e)")
            }
            try FileManager.default.removeItem(atPath: dir + "/" + name)
            try FileManager.default.createDirectory(atPath: dir + "/" + name, withIntermediateDirectories: false)
            XCTAssertThrowsError(try Checkpoint(directory: dir)) { e in
                XCTAssertTrue("\(e)".contains(name) && "\(e)".contains("directory"), "\(e)")
            }
        }
        // A FIFO as the raw inputs file.
        XCTAssertEqual(mkfifo(tmp + "/inputs.safetensors", 0o600), 0)
        XCTAssertThrowsError(try SafeTensorsFile(path: tmp + "/inputs.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("FIFO"), "\(e)")
        }
    }

    func sample(_ dir: String) throws -> [Float] {
        let ckpt = try Checkpoint(directory: dir)
        let model = try PI0Model(checkpoint: ckpt, backend: ReferenceBackend())
        let inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: Fixtures.path("tiny_1cam") + "/inputs.safetensors"),
                                        dims: ckpt.dims, config: ckpt.config)
        return try model.sampleActions(inputs).array
    }

    func testNonFiniteValuesAreReportedWithTheirStage() throws {
        let cases: [(String, Float, String)] = [
            ("model.paligemma_with_expert.paligemma.model.vision_tower.vision_model.embeddings.patch_embedding.bias", .nan, "prefix embeddings"),
            ("model.paligemma_with_expert.paligemma.model.language_model.layers.0.self_attn.k_proj.weight", .infinity, "prefix pass"),
            ("model.action_out_proj.bias", .nan, "denoise step 0"),
        ]
        for (tensor, value, stage) in cases {
            try FileManager.default.removeItem(atPath: tmp); try setUpWithError()
            let dir = try makeCase(poison: [tensor: value])
            XCTAssertThrowsError(try sample(dir)) { e in
                guard let nf = e as? NonFiniteError else { return XCTFail("\(e)") }
                XCTAssertTrue(nf.stage.contains(stage), "\(tensor): \(nf.stage)")
                XCTAssertFalse(nf.value.isFinite)
            }
        }
        // The clean checkpoint still samples finite actions.
        try FileManager.default.removeItem(atPath: tmp); try setUpWithError()
        XCTAssertTrue(try sample(try makeCase()).allSatisfy(\.isFinite))
    }

    func testFiniteGuardFindsTheFirstBadIndex() {
        var v = [Float](repeating: 1.5, count: 1000)
        XCTAssertNil(v.withUnsafeBufferPointer { FiniteGuard.firstNonFinite($0.baseAddress!, count: $0.count) })
        for bad: Float in [.nan, .infinity, -.infinity] {
            v[700] = bad; v[901] = .nan
            XCTAssertEqual(v.withUnsafeBufferPointer { FiniteGuard.firstNonFinite($0.baseAddress!, count: $0.count) }, 700)
            v[700] = 1.5; v[901] = 1.5
        }
        v[0] = .greatestFiniteMagnitude   // large but finite: x·0 is 0
        XCTAssertNil(v.withUnsafeBufferPointer { FiniteGuard.firstNonFinite($0.baseAddress!, count: $0.count) })
        XCTAssertThrowsError(try FiniteGuard.check([1, 2, .nan], stage: "un-normalisation")) {
            let e = $0 as? NonFiniteError
            XCTAssertEqual(e?.stage, "un-normalisation"); XCTAssertEqual(e?.index, 2); XCTAssertEqual(e?.value.isNaN, true)
        }
    }
}
