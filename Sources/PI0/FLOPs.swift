// Analytic floating-point operation counts per stage (a multiply-add counts 2), for GFLOP/s reports.
// Only the matrix products are counted (norms, activations and softmax are < 1% of the total).

public struct StageFLOPs: Sendable {
    public var visionPerImage: Double
    public var prefix: Double
    public var denoiseStep: Double
}

extension ModelDims {
    /// FLOPs of one inference with `cameras` images, `langTokens` tokens and chunk `chunk`, as this
    /// implementation computes it (the VLM's last layer computes only K/V; masked cameras and padded
    /// language slots are skipped, so pass the valid counts).
    public func flops(cameras: Int, langTokens: Int, chunk: Int, maxActionDim: Int = 32) -> StageFLOPs {
        let v = vision, t = Double(v.tokensPerImage), e = Double(v.hidden), f = Double(v.intermediate)
        let patch = Double(3 * v.patchSize * v.patchSize)
        var vis = 2 * t * patch * e + 2 * t * e * Double(vlm.width)
        vis += Double(v.layers) * (2 * t * (4 * e * e + 2 * e * f) + 2 * 2 * t * t * e)
        let p = Double(cameras * v.tokensPerImage + langTokens)
        func layer(_ g: GemmaDims, rows: Double, keys: Double, kvOnly: Bool = false) -> Double {
            let w = Double(g.width), hd = Double(g.heads * g.headDim), kvd = Double(g.kvHeads * g.headDim)
            let kv = 2 * rows * w * 2 * kvd
            if kvOnly { return kv }
            return kv + 2 * rows * w * hd * 2 + 2 * rows * 3 * w * Double(g.mlpDim) + 2 * 2 * rows * keys * hd
        }
        var pre = 0.0
        for i in 0..<vlm.depth { pre += layer(vlm, rows: p, keys: p, kvOnly: i == vlm.depth - 1) }
        let s = Double(chunk + 1), ew = Double(expert.width), a = Double(maxActionDim)
        var step = Double(expert.depth) * layer(expert, rows: s, keys: p + s)
        step += 2 * Double(chunk) * (a * ew + 2 * ew * ew + ew * ew + ew * a) + 2 * ew * a
        return StageFLOPs(visionPerImage: vis, prefix: pre, denoiseStep: step)
    }
}
