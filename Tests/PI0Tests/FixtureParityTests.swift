// End-to-end parity against LeRobot golden cases (Tests/PI0Tests/Fixtures, copied from
// shared/fixtures/pi0 plus extra cases made with tools/reference). Every intermediate in
// outputs.safetensors that we record is compared; per-token tensors only on valid (unpadded) rows.
import Foundation
import XCTest
@testable import PI0
import PI0CPU
import PI0Tensor
import SafeTensors

/// Tolerances from the fixtures' README: float32 PCC ≥ 0.99999 and rel-L2 ≤ 2e-5 on every tensor;
/// bf16 PCC ≥ 0.999 and rel-L2 ≤ 1e-2 on the actions (intermediates: bf16 rounding noise, checked loosely).
struct Tolerance { let minPCC: Double; let maxRelL2: Double }

enum Fixtures {
    static var root: String { Bundle.module.resourcePath! + "/Fixtures" }
    static func path(_ name: String) -> String { root + "/" + name }
    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { FileManager.default.fileExists(atPath: root + "/" + $0 + "/outputs.safetensors") }.sorted()
    }
}

/// Which elements of a reference tensor are on valid rows.
func validMask(name: String, shape: [Int], inputs: PI0Inputs, prefixPad: [[Bool]]) -> [Bool]? {
    let count = shape.reduce(1, *)
    func perRow(batchAxis: Int, tokenAxis: Int, valid: (Int, Int) -> Bool) -> [Bool] {
        var strides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        return (0..<count).map { i in valid((i / strides[batchAxis]) % shape[batchAxis], (i / strides[tokenAxis]) % shape[tokenAxis]) }
    }
    let prefixNames = ["prefix_embs", "vlm_layer0_in", "vlm_layer0_out", "prefix_out"]
    if prefixNames.contains(name) { return perRow(batchAxis: 0, tokenAxis: 1) { prefixPad[$0][$1] } }
    if name.hasPrefix("kv_all_") { return perRow(batchAxis: 1, tokenAxis: 3) { prefixPad[$0][$1] } }
    if name.hasPrefix("kv_") { return perRow(batchAxis: 0, tokenAxis: 2) { prefixPad[$0][$1] } }
    if name == "lang_emb" { return perRow(batchAxis: 0, tokenAxis: 1) { inputs.langMasks[$0][$1] } }
    if name.hasPrefix("siglip_layer0") { return perRow(batchAxis: 0, tokenAxis: 1) { b, _ in inputs.imageMasks[0][b] } }
    if let r = name.range(of: "_cam") {
        let c = Int(name[r.upperBound...])!
        return perRow(batchAxis: 0, tokenAxis: 1) { b, _ in inputs.imageMasks[c][b] }
    }
    return nil
}

final class FixtureParityTests: XCTestCase {
    /// Runs one case through the model and returns (result per compared tensor, actions result).
    func runCase(_ name: String, backend: ComputeBackend = ReferenceBackend(), precision: Precision? = nil)
        throws -> [ParityResult] {
        let dir = Fixtures.path(name)
        let ckpt = try Checkpoint(directory: dir)
        let model = try PI0Model(checkpoint: ckpt, precision: precision, backend: backend)
        let inputsFile = try SafeTensorsFile(path: dir + "/inputs.safetensors")
        let inputs = try PI0Inputs.load(from: inputsFile, dims: ckpt.dims, config: ckpt.config)
        let outputs = try SafeTensorsFile(path: dir + "/outputs.safetensors")
        let steps = outputs.contains("timesteps") ? try outputs.info("timesteps").shape[0] : nil
        let trace = IntermediateRecorder()
        let actions = try model.sampleActions(inputs, steps: steps, trace: trace)
        XCTAssertEqual(actions.shape, try outputs.info("actions").shape)
        let prefixPad: [[Bool]] = {
            guard case .bool(let flat)? = trace["prefix_pad_masks"]?.values else { return [] }
            let p = flat.count / inputs.batch
            return (0..<inputs.batch).map { Array(flat[($0 * p)..<(($0 + 1) * p)]) }
        }()
        var results: [ParityResult] = []
        for entry in trace.entries where outputs.contains(entry.name) {
            let info = try outputs.info(entry.name)
            XCTAssertEqual(entry.shape, info.shape, "\(name)/\(entry.name): shape")
            guard entry.shape == info.shape else { continue }
            switch entry.values {
            case .float32(let ours):
                let include = validMask(name: entry.name, shape: info.shape, inputs: inputs, prefixPad: prefixPad)
                results.append(ParityResult(name: entry.name, actual: ours, expected: try outputs.floats(entry.name), include: include))
            case .int64(let ours):
                XCTAssertEqual(ours, try outputs.int64s(entry.name), "\(name)/\(entry.name)")
            case .bool(let ours):
                XCTAssertEqual(ours, try outputs.bools(entry.name), "\(name)/\(entry.name)")
            }
        }
        return results
    }

    func check(_ results: [ParityResult], case name: String, tolerance: (String) -> Tolerance?) {
        XCTAssertTrue(results.contains { $0.name == "actions" }, "\(name): actions not compared")
        for r in results {
            guard let tol = tolerance(r.name) else { continue }
            XCTAssertTrue(r.passes(minPCC: tol.minPCC, maxRelL2: tol.maxRelL2),
                          "\(name) \(r) (needs pcc ≥ \(tol.minPCC), relL2 ≤ \(tol.maxRelL2))")
        }
    }

    func isBF16Case(_ name: String) throws -> Bool {
        try Checkpoint(directory: Fixtures.path(name)).config.precision == .bfloat16
    }

    func testEveryFixtureCaseMatchesLeRobot() throws {
        try checkAllCases(backend: ReferenceBackend())
    }

    func testEveryFixtureCaseMatchesLeRobotOnTheFastCPUBackend() throws {
        try checkAllCases(backend: CPUBackend(threads: 2))
    }

    /// The fast CPU backend's actions do not depend on the thread count (every kernel computes each output
    /// element with the same instruction sequence whatever the split): 1, 2 and 3 threads, every case, both
    /// precisions (bf16 cases run the vdpbf16ps layers where the CPU has AVX512-BF16), bit for bit.
    func testActionsBitIdenticalAcrossThreadCounts() throws {
        for name in Fixtures.cases {
            let dir = Fixtures.path(name)
            let ckpt = try Checkpoint(directory: dir)
            let inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: dir + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
            var first: [UInt32]?
            for threads in [1, 2, 3] {
                let model = try PI0Model(checkpoint: ckpt, backend: CPUBackend(threads: threads))
                let bits = try model.sampleActions(inputs, steps: 3).array.map(\.bitPattern)
                if let first { XCTAssertEqual(bits, first, "\(name): \(threads) threads vs 1") } else { first = bits }
            }
        }
    }

    /// Without tracing, prefix positions that are padding in every row (unused language slots, cameras
    /// masked in every row) are dropped before the VLM. The actions must still match LeRobot on every case,
    /// and the dropped count must be what the inputs say (so the shortcut is really taken).
    func testActionsUnchangedWhenAllRowPaddingIsDropped() throws {
        var droppedSomewhere = false
        for name in Fixtures.cases {
            let dir = Fixtures.path(name)
            let ckpt = try Checkpoint(directory: dir)
            let model = try PI0Model(checkpoint: ckpt, backend: CPUBackend(threads: 2))
            let inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: dir + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
            let outputs = try SafeTensorsFile(path: dir + "/outputs.safetensors")
            let steps = outputs.contains("timesteps") ? try outputs.info("timesteps").shape[0] : nil

            let (shape, _) = try model.prepare(inputs, steps: steps)
            let (observed, _) = try model.prepare(inputs, steps: steps, observing: true)
            let n = ckpt.dims.vision.tokensPerImage, l = inputs.langTokens[0].count
            let usedCameras = inputs.imageMasks.filter { $0.contains(true) }.count
            let usedLanguage = (0..<l).filter { j in inputs.langMasks.contains { $0[j] } }.count
            XCTAssertEqual(observed.kept.count, inputs.images.count * n + l, name)
            XCTAssertEqual(shape.kept.count, usedCameras * n + usedLanguage, name)
            XCTAssertEqual(shape.cameras.count, usedCameras, name)
            if shape.kept.count < observed.kept.count { droppedSomewhere = true }

            let actions = try model.sampleActions(inputs, steps: steps)
            let r = ParityResult(name: "actions", actual: actions.array, expected: try outputs.floats("actions"))
            let tol = try isBF16Case(name) ? Tolerance(minPCC: 0.999, maxRelL2: 1e-2) : Tolerance(minPCC: 0.99999, maxRelL2: 2e-5)
            XCTAssertTrue(r.passes(minPCC: tol.minPCC, maxRelL2: tol.maxRelL2), "\(name) (padding dropped) \(r)")
        }
        XCTAssertTrue(droppedSomewhere, "no fixture case has padding to drop")
    }

    func checkAllCases(backend: ComputeBackend) throws {
        let cases = Fixtures.cases
        XCTAssertGreaterThanOrEqual(cases.count, 2, "fixture cases missing from the test bundle")
        for name in cases {
            let results = try runCase(name, backend: backend)
            let bf16 = try isBF16Case(name)
            check(results, case: name) { tensor in
                if !bf16 { return Tolerance(minPCC: 0.99999, maxRelL2: 2e-5) }
                if tensor == "actions" { return Tolerance(minPCC: 0.999, maxRelL2: 1e-2) }
                return Tolerance(minPCC: 0.99, maxRelL2: 5e-2)
            }
            if ProcessInfo.processInfo.environment["PI0_PARITY_VERBOSE"] != nil { results.forEach { print(name, $0) } }
        }
    }
}
