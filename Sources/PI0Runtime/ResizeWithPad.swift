// Image preprocessing of LeRobot's PI0Policy._preprocess_images (lerobot 0.6.1), bit for bit:
//   float32 CHW in [0,1] -> (unless already outH×outW) resize_with_pad_torch -> x·2 − 1 -> CHW [-1,1].
// resize_with_pad_torch: ratio = max(W/outW, H/outH) in float64, resized size = (int(H/ratio),
// int(W/ratio)) (truncation: 457/(457/224) = 223.99999999999997 -> 223), F.interpolate bilinear,
// align_corners=False, no antialias, clamp(0,1), zero padding split floor(pad/2) top/left, remainder
// bottom/right. The bilinear kernel reproduces PyTorch's CPU kernel (UpSampleKernel.cpp, x86 AVX2/512
// build) including where it fuses multiply-adds; see docs/PREPROCESSING.md for measured exactness.
//
// Layout letters: C = 3 channels, H×W input, h×w resized, outH×outW output.


/// Bad input to the image preprocessing.
public enum ImagePreprocessingError: Error, CustomStringConvertible, Equatable {
    /// Height or width is zero or negative.
    case emptyImage(height: Int, width: Int)
    /// The buffer does not hold 3·H·W values.
    case bufferLength(expected: Int, got: Int, height: Int, width: Int)
    /// The aspect ratio is so extreme that one resized side truncates to 0 (LeRobot's F.interpolate raises).
    case degenerateResize(height: Int, width: Int, resizedHeight: Int, resizedWidth: Int)
    /// A NaN or infinite pixel value (flat CHW index).
    case nonFinite(index: Int, value: Float)

    public var description: String {
        switch self {
        case let .emptyImage(h, w): return "image has size \(h)x\(w); height and width must be positive"
        case let .bufferLength(e, g, h, w): return "image buffer holds \(g) floats, expected 3x\(h)x\(w) = \(e) (CHW)"
        case let .degenerateResize(h, w, rh, rw):
            return "image \(h)x\(w) would be resized to \(rh)x\(rw): aspect ratio too extreme for resize-with-pad"
        case let .nonFinite(i, v): return "image value at CHW index \(i) is \(v); pixels must be finite"
        }
    }
}

public enum ImagePreprocessing {
    /// PI0Policy._preprocess_images for one camera: input float32 CHW [3,H,W] in [0,1] (what LeRobot
    /// receives), output CHW [3,outH,outW] in [-1,1]. An image already outH×outW is only mapped x·2−1
    /// (LeRobot skips resize_with_pad, so not even the clamp is applied).
    public static func resizeWithPadToPM1(chw: [Float], height: Int, width: Int,
                                          outHeight: Int = 224, outWidth: Int = 224) throws -> [Float] {
        try validate(chw, height, width)
        var x = (height == outHeight && width == outWidth)
            ? chw
            : try resizeWithPadValidated(chw: chw, height: height, width: width, outHeight: outHeight, outWidth: outWidth)
        // `img * 2.0 - 1.0`: two float32 ops (x·2 is exact, so fusing would not change anything).
        for i in x.indices { x[i] = x[i] * 2 - 1 }
        return x
    }

    /// resize_with_pad_torch itself: CHW [3,H,W] -> CHW [3,outH,outW] in [0,1] (pad value 0).
    public static func resizeWithPad(chw: [Float], height: Int, width: Int,
                                     outHeight: Int = 224, outWidth: Int = 224) throws -> [Float] {
        try validate(chw, height, width)
        return try resizeWithPadValidated(chw: chw, height: height, width: width, outHeight: outHeight, outWidth: outWidth)
    }

    /// `resizeWithPad` on an input `validate` has already accepted (each pixel is checked once).
    private static func resizeWithPadValidated(chw: [Float], height: Int, width: Int,
                                               outHeight: Int, outWidth: Int) throws -> [Float] {
        guard outHeight > 0 && outWidth > 0 else { throw ImagePreprocessingError.emptyImage(height: outHeight, width: outWidth) }
        let ratio = max(Double(width) / Double(outWidth), Double(height) / Double(outHeight))
        let rh = Int(Double(height) / ratio), rw = Int(Double(width) / ratio)
        guard rh > 0 && rw > 0 else {
            throw ImagePreprocessingError.degenerateResize(height: height, width: width, resizedHeight: rh, resizedWidth: rw)
        }
        let rows = axisWeights(input: height, output: rh), cols = axisWeights(input: width, output: rw)
        let padTop = (outHeight - rh) / 2, padLeft = (outWidth - rw) / 2
        var out = [Float](repeating: 0, count: 3 * outHeight * outWidth)
        chw.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<3 {
                    let plane = c * height * width
                    for y in 0..<rh {
                        let r0 = plane + rows.i0[y] * width, r1 = plane + rows.i1[y] * width
                        let h0 = rows.l0[y], h1 = rows.l1[y]
                        let o = c * outHeight * outWidth + (padTop + y) * outWidth + padLeft
                        for x in 0..<rw {
                            let j0 = cols.i0[x], j1 = cols.i1[x], w0 = cols.l0[x], w1 = cols.l1[x]
                            // PyTorch's accumulation order, with the later three products fused (fma).
                            var acc = src[r0 + j1] * (h0 * w1)
                            acc = acc.addingProduct(src[r0 + j0], h0 * w0)
                            acc = acc.addingProduct(src[r1 + j0], h1 * w0)
                            acc = acc.addingProduct(src[r1 + j1], h1 * w1)
                            // clamp(0, 1)
                            dst[o + x] = Swift.min(Swift.max(acc, 0), 1)
                        }
                    }
                }
            }
        }
        return out
    }

    private static func validate(_ chw: [Float], _ height: Int, _ width: Int) throws {
        guard height > 0 && width > 0 else { throw ImagePreprocessingError.emptyImage(height: height, width: width) }
        let (n, overflow) = height.multipliedReportingOverflow(by: width)
        guard !overflow, chw.count == 3 * n else {
            throw ImagePreprocessingError.bufferLength(expected: overflow ? Int.max : 3 * n, got: chw.count, height: height, width: width)
        }
        if let i = chw.firstIndex(where: { !$0.isFinite }) { throw ImagePreprocessingError.nonFinite(index: i, value: chw[i]) }
    }

    /// Source indices and weights along one axis, as PyTorch's upsample_bilinear2d (align_corners=False,
    /// no scale factor given): scale = f32(in)/f32(out); src = max(fma(scale, dst+0.5, −0.5), 0);
    /// i0 = min(floor(src), in−1); l1 = clamp(src − i0, 0, 1); l0 = 1 − l1; i1 = i0+1 unless at the edge.
    /// An axis whose size is unchanged is a plain copy (PyTorch's fast path: i0 = i1 = dst, l0 = 1).
    static func axisWeights(input: Int, output: Int) -> (i0: [Int], i1: [Int], l0: [Float], l1: [Float]) {
        var i0 = [Int](repeating: 0, count: output), i1 = i0
        var l0 = [Float](repeating: 1, count: output), l1 = [Float](repeating: 0, count: output)
        if input == output {
            for d in 0..<output { i0[d] = d; i1[d] = d }
            return (i0, i1, l0, l1)
        }
        let scale = Float(input) / Float(output)
        for d in 0..<output {
            let src = Swift.max(Float(-0.5).addingProduct(scale, Float(d) + 0.5), 0)
            let a = Swift.min(Int(src.rounded(.down)), input - 1)
            let w1 = Swift.min(Swift.max(src - Float(a), 0), 1)
            i0[d] = a
            i1[d] = a < input - 1 ? a + 1 : a
            l1[d] = w1
            l0[d] = 1 - w1
        }
        return (i0, i1, l0, l1)
    }
}
