// ProfilingBackend (what `pi0 bench --profile` uses) must forward every call unchanged and count what
// the model really runs: same action bits as the bare CPU backend, and call counts that follow from the
// model's dimensions (so a call the wrapper dropped or double-counted shows up). Every op is forwarded
// and timed on random shapes in Tests/PI0CPUTests/BackendConformanceTests.swift.
import XCTest
@testable import PI0
import PI0CPU
import PI0Tensor
import SafeTensors

final class ProfilingBackendTests: XCTestCase {
    func testProfiledRunIsBitIdenticalAndCountsFollowTheDimensions() throws {
        let dir = Fixtures.path("tiny_1cam")
        let ckpt = try Checkpoint(directory: dir)
        let inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: dir + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
        let steps = 3

        let plain = try PI0Model(checkpoint: ckpt, backend: CPUBackend(threads: 2))
        let profiler = ProfilingBackend(wrapping: CPUBackend(threads: 2))
        let profiled = try PI0Model(checkpoint: ckpt, backend: profiler)
        XCTAssertEqual(Set(profiler.snapshot().map(\.op)).subtracting(["allocate", "upload"]), [],
                       "loading only allocates and uploads (packing weights is not profiled)")
        profiler.reset()

        let want = try plain.sampleActions(inputs, steps: steps)
        let got = try profiled.sampleActions(inputs, steps: steps)
        XCTAssertEqual(got.array.map(\.bitPattern), want.array.map(\.bitPattern), "profiling changed the actions")

        let ops = Dictionary(uniqueKeysWithValues: profiler.snapshot().map { ($0.op, $0.entry) })
        let d = ckpt.dims, images = inputs.imageMasks.filter { $0.contains(true) }.count
        // SigLIP: one fc1 per layer over every image's tokens (the projector has the same key when the
        // VLM width equals SigLIP's MLP width, as in the tiny fixture); one layerNorm pair per layer + the post norm.
        let fc1 = "linear \(images * d.vision.tokensPerImage)×\(d.vision.hidden)→\(d.vision.intermediate)"
        let fc1Calls = d.vision.layers + (d.vlm.width == d.vision.intermediate ? 1 : 0)
        XCTAssertEqual(ops[fc1]?.calls, fc1Calls, "\(fc1) in \(ops.keys.sorted())")
        XCTAssertEqual(ops[fc1]?.flops, Double(fc1Calls) * 2 * Double(images * d.vision.tokensPerImage * d.vision.hidden * d.vision.intermediate))
        XCTAssertEqual(ops["geluTanh"]?.calls, d.vision.layers)
        XCTAssertEqual(ops["layerNorm"]?.calls, 2 * d.vision.layers + 1)
        // Gemma: the VLM's last layer only writes K/V (one norm), every expert layer two, each with the products
        // that read it (rmsNormLinear: K|V and Q, gate|up); the expert's final norm alone.
        let fused = ops.filter { $0.key.hasPrefix("rmsNormLinear ") }.reduce(0) { $0 + $1.value.calls }
        XCTAssertEqual(fused, (2 * d.vlm.depth - 1) + steps * 2 * d.expert.depth, "\(ops.keys.sorted())")
        XCTAssertEqual(ops["rmsNorm"]?.calls, steps)
        let attentionInput = "rmsNormLinear \(inputs.batch * (ckpt.config.chunkSize + (ckpt.config.model == .pi0 ? 1 : 0)))×\(d.expert.width)→"
            + "\(2 * d.expert.kvHeads * d.expert.headDim)|\(d.expert.heads * d.expert.headDim)"
        XCTAssertEqual(ops[attentionInput]?.calls, steps * d.expert.depth, "\(attentionInput) in \(ops.keys.sorted())")
        XCTAssertEqual(ops["geluTanhMul"]?.calls, (d.vlm.depth - 1) + steps * d.expert.depth)
        let attentionCalls = ops.filter { $0.key.hasPrefix("attention") }.reduce(0) { $0 + $1.value.calls }
        XCTAssertEqual(attentionCalls, d.vision.layers * images + (d.vlm.depth - 1) + steps * d.expert.depth)
        XCTAssertTrue(ops.values.allSatisfy { $0.seconds >= 0 && $0.calls > 0 })
        // What used to run outside the backend is listed too: one Euler update per step, RoPE, the gathers.
        XCTAssertEqual(ops["eulerStep"]?.calls, steps)
        for op in ["applyRoPE", "embed", "patchify", "timeEmbedding", "upload", "download"] {
            XCTAssertNotNil(ops[op], "\(op) in \(ops.keys.sorted())")
        }

        profiler.reset()
        XCTAssertTrue(profiler.snapshot().isEmpty)
    }
}
