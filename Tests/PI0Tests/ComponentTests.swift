// Per-component tests with expected values computed independently of the implementation: by hand, by
// closed-form formulas in Double, or by LeRobot (the fixtures' component tensors).
import Foundation
import XCTest
@testable import PI0
import PI0Tensor
import SafeTensors

final class ComponentTests: XCTestCase {
    func testRMSNormMatchesLeRobotComponentTensors() throws {
        for name in ["tiny_1cam", "tiny_3cam_bf16"] {
            let dir = Fixtures.path(name)
            let out = try SafeTensorsFile(path: dir + "/outputs.safetensors")
            let ckpt = try Checkpoint(directory: dir)
            let w = try ckpt.weight("paligemma_with_expert.paligemma.model.language_model.layers.0.input_layernorm.weight",
                                    shape: [ckpt.dims.vlm.width]).floats()
            let x = try out.floats("rmsnorm_in"), expected = try out.floats("rmsnorm_out")
            var y = [Float](repeating: 0, count: x.count)
            let bf16 = ckpt.config.precision == .bfloat16
            ReferenceOps.rmsNorm(x, rows: x.count / w.count, width: w.count, weight: w, eps: 1e-6, roundToBF16: bf16, out: &y)
            let r = ParityResult(name: "rmsnorm", actual: y, expected: expected)
            XCTAssertLessThanOrEqual(r.relativeL2, bf16 ? 4e-3 : 1e-6, "\(name): \(r)")
        }
    }

    func testRMSNormByHand() {
        // x = [3, 4]: mean(x²) = 12.5, rsqrt(12.5) = 0.28284…; w = [0, 1] → factors (1, 2).
        var y = [Float](repeating: 0, count: 2)
        ReferenceOps.rmsNorm([3, 4], rows: 1, width: 2, weight: [0, 1], eps: 0, roundToBF16: false, out: &y)
        XCTAssertEqual(Double(y[0]), 3 / 12.5.squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(Double(y[1]), 2 * 4 / 12.5.squareRoot(), accuracy: 1e-6)
    }

    func testLayerNormByHand() {
        // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
        var y = [Float](repeating: 0, count: 4)
        ReferenceOps.layerNorm([1, 2, 3, 4], rows: 1, width: 4, weight: [1, 2, 1, 1], bias: [0, 0, 0, 0.5], eps: 1e-6, out: &y)
        let s = (1.25 + 1e-6).squareRoot()
        let expected = [-1.5 / s, 2 * -0.5 / s, 0.5 / s, 1.5 / s + 0.5]
        for i in 0..<4 { XCTAssertEqual(Double(y[i]), expected[i], accuracy: 1e-5) }
    }

    func testGeluTanhAndSiLUByFormula() {
        for x in [-3.0, -0.5, 0, 0.25, 1, 2.5] {
            let gelu = 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
            XCTAssertEqual(Double(ReferenceOps.geluTanh(Float(x))), gelu, accuracy: 1e-6)
            var s = [Float(x)]
            ReferenceOps.silu(&s, count: 1)
            XCTAssertEqual(Double(s[0]), x / (1 + exp(-x)), accuracy: 1e-6)
        }
    }

    func testRoPEHalfSplitByHand() {
        // head_dim 4, θ = 100: inv_freq = [1, 1/10]; position 1 rotates pair (0,2) by 1 rad, (1,3) by 0.1 rad.
        let inv = RoPE.inverseFrequencies(headDim: 4, theta: 100, roundToBF16: false)
        XCTAssertEqual(inv[0], 1); XCTAssertEqual(inv[1], 0.1, accuracy: 1e-7)
        let (c, s) = RoPE.tables(positions: [1], invFreq: inv, roundToBF16: false)
        var x: [Float] = [1, 2, 3, 4]
        ReferenceOps.applyRoPE(&x, tokens: 1, heads: 1, headDim: 4, stride: 4, cos: c, sin: s, roundToBF16: false)
        let expected = [1 * cos(1.0) - 3 * sin(1.0), 2 * cos(0.1) - 4 * sin(0.1),
                        3 * cos(1.0) + 1 * sin(1.0), 4 * cos(0.1) + 2 * sin(0.1)]
        for i in 0..<4 { XCTAssertEqual(Double(x[i]), expected[i], accuracy: 1e-6) }
        // bf16 mode rounds the inverse frequencies themselves (docs/SPEC.md §7): 1/10000^(2/256) = 0.93057… → 0.9296875.
        let bf = RoPE.inverseFrequencies(headDim: 256, theta: 10000, roundToBF16: true)
        XCTAssertEqual(bf[1], 0.9296875)
    }

    func testAttentionMaskRules() {
        // Prefix: all att 0, the last token padded → full attention among the valid ones.
        let m = AttentionMasks.make2D(pad: [true, true, false], att: [0, 0, 0])
        XCTAssertEqual(m, [[true, true, false], [true, true, false], [false, false, false]])
        // Suffix [state, a0, a1] with att [1, 1, 0]: the state token does not see the actions; actions see all.
        let s = AttentionMasks.suffix(prefixPad: [true, false], suffixPad: [true, true, true], suffixAtt: [1, 1, 0])
        XCTAssertEqual(s, [[true, false, true, false, false],
                           [true, false, true, true, true],
                           [true, false, true, true, true]])
        XCTAssertEqual(AttentionMasks.positions(pad: [true, false, true, true]), [0, 0, 1, 2])
        XCTAssertEqual(AttentionMasks.positions(pad: [false, true]), [-1, 0])
    }

    func testMasksAgreeWithLeRobotFixtures() throws {
        let out = try SafeTensorsFile(path: Fixtures.path("tiny_3cam_bf16") + "/outputs.safetensors")
        let pad = try out.bools("prefix_pad_masks")
        let p = pad.count
        XCTAssertEqual(AttentionMasks.make2D(pad: pad, att: [Int](repeating: 0, count: p)).flatMap { $0 },
                       try out.bools("prefix_att_2d_masks"))
        let s = 51
        XCTAssertEqual(AttentionMasks.suffix(prefixPad: pad, suffixPad: [Bool](repeating: true, count: s),
                                             suffixAtt: [1, 1] + [Int](repeating: 0, count: s - 2)).flatMap { $0 },
                       try out.bools("denoise_att_2d_masks"))
        XCTAssertEqual(AttentionMasks.positions(pad: pad).map(Int64.init), try out.int64s("prefix_position_ids"))
    }

    func testTimeEmbeddingMatchesLeRobotFloat64() throws {
        let out = try SafeTensorsFile(path: Fixtures.path("tiny_1cam") + "/outputs.safetensors")
        let f64 = try out.doubles("time_emb_f64")
        let ours = FlowMatching.timeEmbeddingF64(t: 1.0, dim: 32, minPeriod: 0.004, maxPeriod: 4.0)
            + FlowMatching.timeEmbeddingF64(t: 0.3, dim: 32, minPeriod: 0.004, maxPeriod: 4.0)
        for i in 0..<f64.count { XCTAssertEqual(ours[i], f64[i], accuracy: 1e-12, "index \(i)") }
        XCTAssertEqual(FlowMatching.timeEmbedding(t: 0.3, dim: 32, minPeriod: 0.004, maxPeriod: 4.0), try out.floats("time_emb_t0_3"))
        // By hand: j = 0 has period 0.004 → sin(t·2π/0.004); the last cosine has period 4.
        XCTAssertEqual(ours[0], sin(1.0 * 2 * .pi / 0.004), accuracy: 1e-9)
        XCTAssertEqual(ours[31], cos(1.0 * 2 * .pi / 4.0), accuracy: 1e-12)
    }

    func testEulerTimesAndUpdate() throws {
        let out = try SafeTensorsFile(path: Fixtures.path("tiny_1cam") + "/outputs.safetensors")
        XCTAssertEqual((0..<10).map { FlowMatching.time(step: $0, steps: 10) }, try out.floats("timesteps"))
        var x: [Float] = [1, 2]
        FlowMatching.eulerUpdate(&x, velocity: [10, -20], count: 2, steps: 10)
        XCTAssertEqual(x[0], 0, accuracy: 1e-6); XCTAssertEqual(x[1], 4, accuracy: 1e-6)
    }

    func testBFloat16RoundsToNearestEven() {
        XCTAssertEqual(BFloat16.bits(1.0), 0x3F80)
        XCTAssertEqual(BFloat16.round(1.00390625), 1.0)          // halfway, even mantissa below
        XCTAssertEqual(BFloat16.round(1.01171875), 1.015625)     // halfway, rounds up to even
        XCTAssertEqual(BFloat16.round(Float(bitPattern: 0x3F80_8001)), 1.0078125)   // just above halfway
        XCTAssertTrue(BFloat16.round(.nan).isNaN)
        XCTAssertEqual(BFloat16.round(45.254833), 45.25)         // √2048 in bf16 (docs/SPEC.md §3.2)
    }

    func testReferenceAttentionByHand() {
        // One query, two keys, D = 1: scores q·k·scale = [0, ln 3] → probs [1/4, 3/4].
        let q: [Float] = [1], k: [Float] = [0, Float(log(3.0))], v: [Float] = [4, 8]
        var out: [Float] = [0]
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            out.withUnsafeMutableBufferPointer { op in
                ReferenceOps.referenceAttention(AttentionArgs(q: qp.baseAddress!, qStride: 1, k: kp.baseAddress!, kStride: 1,
                    v: vp.baseAddress!, vStride: 1, mask: nil, maskStride: 0, out: op.baseAddress!, outStride: 1,
                    queries: 1, keys: 2, heads: 1, kvHeads: 1, headDim: 1, scale: 1, roundToBF16: false))
            } } } }
        XCTAssertEqual(out[0], 0.25 * 4 + 0.75 * 8, accuracy: 1e-5)
        // A masked key gets exactly zero weight.
        let mask: [Float] = [0, AttentionMasks.maskedValue]
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            mask.withUnsafeBufferPointer { mp in out.withUnsafeMutableBufferPointer { op in
                ReferenceOps.referenceAttention(AttentionArgs(q: qp.baseAddress!, qStride: 1, k: kp.baseAddress!, kStride: 1,
                    v: vp.baseAddress!, vStride: 1, mask: mp.baseAddress!, maskStride: 2, out: op.baseAddress!, outStride: 1,
                    queries: 1, keys: 2, heads: 1, kvHeads: 1, headDim: 1, scale: 1, roundToBF16: false))
            } } } } }
        XCTAssertEqual(out[0], 4)
    }
}
