// Coefficients -> RGB pixels, reproducing libjpeg-turbo's default decompression path (what Pillow uses):
//   * IDCT: jidctint.c `jpeg_idct_islow` (integer, CONST_BITS 13, PASS1_BITS 2) with libjpeg's
//     range-limit table (output index masked with 1023, so huge out-of-range values wrap like libjpeg);
//   * upsampling: jdsample.c "fancy" triangle filters h2v1 / h1v2 / h2v2 with libjpeg's rounding biases
//     and edge replication (h2v1/h2v2 fall back to pixel replication for components ≤ 2 samples wide,
//     as libjpeg does); other integer ratios replicate (int_upsample);
//   * colour: jdcolor.c `ycc_rgb_convert` with its 16-bit fixed-point tables; four components are
//     CMYK, or YCCK (jdcolor.c `ycck_cmyk_convert`) when the Adobe transform flag is not 0, then
//     Pillow's reading of CMYK JPEGs: inverted ("CMYK;I", the Adobe convention) and `cmyk2rgb`.
// The SIMD versions in libjpeg-turbo are bit-exact with these C routines.

extension JPEGDecoder {
    /// Memory: each component's coefficients are released once its plane is transformed, and the
    /// planes are upsampled and colour-converted one output row at a time (no full-size upsampled
    /// copies), so a large image costs its native-size planes plus the RGB output.
    mutating func reconstruct() throws -> RGBImage {
        var planes: [[UInt8]] = []
        for i in components.indices {
            let c = components[i]
            guard let q = quant[c.tq] else { throw corrupt("quantisation table \(c.tq) of component \(c.id) never defined") }
            planes.append(idctPlane(c, quant: q))
            components[i].coefs = []
        }
        // libjpeg-turbo default_decompress_parms: JFIF -> YCbCr; else Adobe transform 0 -> RGB;
        // else component ids 'R','G','B' -> RGB; otherwise YCbCr. Four components: CMYK or YCCK.
        let isRGB: Bool
        if sawJFIF { isRGB = false } else if let t = adobeTransform { isRGB = t == 0 } else {
            isRGB = components.map(\.id) == [82, 71, 66]
        }
        let ycck = adobeTransform.map { $0 != 0 } ?? false
        var px = [UInt8](repeating: 0, count: width * height * 3)
        var rows = [[UInt8]](repeating: [UInt8](repeating: 0, count: width), count: planes.count)
        for y in 0..<height {
            for k in planes.indices { upsampleRow(planes[k], components[k], y: y, into: &rows[k]) }
            let o = y * width * 3
            switch planes.count {
            case 1:
                let g = rows[0]
                for x in 0..<width { px[o + 3 * x] = g[x]; px[o + 3 * x + 1] = g[x]; px[o + 3 * x + 2] = g[x] }
            case 4:
                cmykToRGB(rows, ycck: ycck, into: &px, at: o)
            default:
                if isRGB {
                    for x in 0..<width { px[o + 3 * x] = rows[0][x]; px[o + 3 * x + 1] = rows[1][x]; px[o + 3 * x + 2] = rows[2][x] }
                } else {
                    let t = YCCTables.shared
                    for x in 0..<width {
                        let yy = Int(rows[0][x]), b = Int(rows[1][x]), r = Int(rows[2][x])
                        px[o + 3 * x] = clamp255(yy + t.crR[r])
                        px[o + 3 * x + 1] = clamp255(yy + ((t.cbG[b] + t.crG[r]) >> 16))
                        px[o + 3 * x + 2] = clamp255(yy + t.cbB[b])
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: px)
    }

    /// One row of four components to RGB as Pillow does for `Image.open(f).convert("RGB")`.
    /// libjpeg-turbo's default_decompress_parms: with an Adobe marker, transform 0 means CMYK and any
    /// other YCCK; without one, CMYK. Pillow then reads the CMYK samples inverted (rawmode "CMYK;I")
    /// and converts with cmyk2rgb: nk = 255 − K, channel = clip(nk − nk·C/255) with MULDIV255's rounding.
    private func cmykToRGB(_ rows: [[UInt8]], ycck: Bool, into px: inout [UInt8], at o: Int) {
        let t = YCCTables.shared
        @inline(__always) func muldiv255(_ a: Int, _ b: Int) -> Int { let tmp = a * b + 128; return ((tmp >> 8) + tmp) >> 8 }
        for x in 0..<width {
            var c = Int(rows[0][x]), m = Int(rows[1][x]), y = Int(rows[2][x])
            let k = Int(rows[3][x])
            if ycck {   // ycck_cmyk_convert: C, M, Y = 255 − RGB of the YCbCr triple; K unchanged
                let yy = c, cb = m, cr = y
                c = 255 - Int(clamp255(yy + t.crR[cr]))
                m = 255 - Int(clamp255(yy + ((t.cbG[cb] + t.crG[cr]) >> 16)))
                y = 255 - Int(clamp255(yy + t.cbB[cb]))
            }
            // "CMYK;I": every sample inverted; cmyk2rgb with nk = 255 − (255 − k) = k.
            let nk = k
            px[o + 3 * x] = clamp255(nk - muldiv255(255 - c, nk))
            px[o + 3 * x + 1] = clamp255(nk - muldiv255(255 - m, nk))
            px[o + 3 * x + 2] = clamp255(nk - muldiv255(255 - y, nk))
        }
    }

    /// Dequantises and inverse-transforms every block; returns the plane at its allocated size
    /// (`blocksPerLine*8` × `blocksPerColumn*8`).
    private func idctPlane(_ c: JPEGComponent, quant q: [Int]) -> [UInt8] {
        let stride = c.blocksPerLine * 8
        var out = [UInt8](repeating: 0, count: stride * c.blocksPerColumn * 8)
        var ws = [Int](repeating: 0, count: 64)
        c.coefs.withUnsafeBufferPointer { coefs in
            out.withUnsafeMutableBufferPointer { o in
                for by in 0..<c.blocksPerColumn {
                    for bx in 0..<c.blocksPerLine {
                        let base = (by * c.blocksPerLine + bx) * 64
                        jpegIdctIslow(coefs, base, q, &ws, o, (by * 8) * stride + bx * 8, stride)
                    }
                }
            }
        }
        return out
    }

    /// Row `y` of one component plane upsampled to the full image width (jdsample.c, see the file
    /// comment), written into `out` (`width` bytes).
    private func upsampleRow(_ p: [UInt8], _ c: JPEGComponent, y: Int, into out: inout [UInt8]) {
        let stride = c.blocksPerLine * 8
        let fh = hmax / c.h, fv = vmax / c.v
        let cw = c.width, ch = c.height
        @inline(__always) func at(_ row: Int, _ col: Int) -> Int { Int(p[row * stride + col]) }
        if fh == 1 && fv == 1 {
            for x in 0..<width { out[x] = p[y * stride + x] }
        } else if fh == 2 && fv == 1 && cw > 2 {
            // h2v1_fancy_upsample: 3/4 nearer + 1/4 further sample, biases 1 (left) / 2 (right).
            for x in 0..<width {
                let i = x >> 1, v = 3 * at(y, i)
                if x & 1 == 0 {
                    out[x] = i == 0 ? UInt8(at(y, 0)) : UInt8((v + at(y, i - 1) + 1) >> 2)
                } else {
                    out[x] = i == cw - 1 ? UInt8(at(y, i)) : UInt8((v + at(y, i + 1) + 2) >> 2)
                }
            }
        } else if fh == 1 && fv == 2 {
            // h1v2_fancy_upsample: vertical triangle filter, bias 1 (upper) / 2 (lower).
            let i = y >> 1
            let n = y & 1 == 0 ? max(i - 1, 0) : min(i + 1, ch - 1)
            let bias = y & 1 == 0 ? 1 : 2
            for x in 0..<width { out[x] = UInt8((3 * at(i, x) + at(n, x) + bias) >> 2) }
        } else if fh == 2 && fv == 2 && cw > 2 {
            // h2v2_fancy_upsample: column sums 3·near row + far row, then 3/4·1/4 across columns
            // with biases 8 (even) / 7 (odd); the top/bottom context rows are replicated edges.
            let i = y >> 1
            let n = y & 1 == 0 ? max(i - 1, 0) : min(i + 1, ch - 1)
            @inline(__always) func colsum(_ j: Int) -> Int { 3 * at(i, j) + at(n, j) }
            for x in 0..<width {
                let j = x >> 1, t = colsum(j)
                if x & 1 == 0 {
                    out[x] = UInt8(j == 0 ? (t * 4 + 8) >> 4 : (t * 3 + colsum(j - 1) + 8) >> 4)
                } else {
                    out[x] = UInt8(j == cw - 1 ? (t * 4 + 7) >> 4 : (t * 3 + colsum(j + 1) + 7) >> 4)
                }
            }
        } else {
            // int_upsample / h2v1_upsample / h2v2_upsample: plain replication.
            let row = y / fv
            for x in 0..<width { out[x] = p[row * stride + x / fh] }
        }
    }
}

@inline(__always) private func clamp255(_ v: Int) -> UInt8 { UInt8(min(max(v, 0), 255)) }

/// jdcolor.c build_ycc_rgb_table: SCALEBITS 16, FIX(x) = Int(x·65536 + 0.5).
private struct YCCTables: Sendable {
    let crR: [Int], cbB: [Int], crG: [Int], cbG: [Int]
    static let shared = YCCTables()
    init() {
        func fix(_ x: Double) -> Int { Int(x * 65536 + 0.5) }
        let half = 1 << 15
        let r = fix(1.40200), b = fix(1.77200), rg = fix(0.71414), bg = fix(0.34414)
        crR = (0..<256).map { (i: Int) -> Int in (r * (i - 128) + half) >> 16 }
        cbB = (0..<256).map { (i: Int) -> Int in (b * (i - 128) + half) >> 16 }
        crG = (0..<256).map { (i: Int) -> Int in -rg * (i - 128) }
        cbG = (0..<256).map { (i: Int) -> Int in -bg * (i - 128) + half }
    }
}

/// libjpeg's post-IDCT range limiting: `range_limit[x & 1023]` with range_limit = sample_range_limit +
/// CENTERJSAMPLE, i.e. x + 128 clamped to 0...255 for x in [-512, 511], wrapping beyond (as libjpeg).
private let idctRangeLimit: [UInt8] = (0..<1024).map { (i: Int) -> UInt8 in
    if i < 128 { return UInt8(i + 128) }
    if i < 512 { return 255 }
    if i < 896 { return 0 }
    return UInt8(i - 896)
}

/// jidctint.c jpeg_idct_islow, including both "all AC terms zero" shortcuts (they give the same
/// numbers as the full path would; kept for speed and fidelity).
@inline(__always)
func jpegIdctIslow(_ c: UnsafeBufferPointer<Int16>, _ base: Int, _ q: [Int], _ ws: inout [Int],
                   _ out: UnsafeMutableBufferPointer<UInt8>, _ outBase: Int, _ stride: Int) {
    let constBits = 13, pass1Bits = 2
    let f0_298 = 2446, f0_390 = 3196, f0_541 = 4433, f0_765 = 6270, f0_899 = 7373, f1_175 = 9633
    let f1_501 = 12299, f1_847 = 15137, f1_961 = 16069, f2_053 = 16819, f2_562 = 20995, f3_072 = 25172
    @inline(__always) func descale(_ x: Int, _ n: Int) -> Int { (x + (1 << (n - 1))) >> n }
    // Pass 1: columns.
    for col in 0..<8 {
        @inline(__always) func dq(_ row: Int) -> Int { Int(c[base + row * 8 + col]) * q[row * 8 + col] }
        if c[base + 8 + col] == 0 && c[base + 16 + col] == 0 && c[base + 24 + col] == 0 && c[base + 32 + col] == 0
            && c[base + 40 + col] == 0 && c[base + 48 + col] == 0 && c[base + 56 + col] == 0 {
            let dc = dq(0) << pass1Bits
            for r in 0..<8 { ws[r * 8 + col] = dc }
            continue
        }
        var z2 = dq(2), z3 = dq(6)
        var z1 = (z2 + z3) * f0_541
        var tmp2 = z1 + z3 * -f1_847
        var tmp3 = z1 + z2 * f0_765
        z2 = dq(0); z3 = dq(4)
        var tmp0 = (z2 + z3) << constBits
        var tmp1 = (z2 - z3) << constBits
        let tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2
        tmp0 = dq(7); tmp1 = dq(5); tmp2 = dq(3); tmp3 = dq(1)
        z1 = tmp0 + tmp3; z2 = tmp1 + tmp2; z3 = tmp0 + tmp2
        var z4 = tmp1 + tmp3
        let z5 = (z3 + z4) * f1_175
        tmp0 *= f0_298; tmp1 *= f2_053; tmp2 *= f3_072; tmp3 *= f1_501
        z1 *= -f0_899; z2 *= -f2_562; z3 *= -f1_961; z4 *= -f0_390
        z3 += z5; z4 += z5
        tmp0 += z1 + z3; tmp1 += z2 + z4; tmp2 += z2 + z3; tmp3 += z1 + z4
        let n = constBits - pass1Bits
        ws[col] = descale(tmp10 + tmp3, n); ws[56 + col] = descale(tmp10 - tmp3, n)
        ws[8 + col] = descale(tmp11 + tmp2, n); ws[48 + col] = descale(tmp11 - tmp2, n)
        ws[16 + col] = descale(tmp12 + tmp1, n); ws[40 + col] = descale(tmp12 - tmp1, n)
        ws[24 + col] = descale(tmp13 + tmp0, n); ws[32 + col] = descale(tmp13 - tmp0, n)
    }
    // Pass 2: rows, descale by CONST_BITS + PASS1_BITS + 3 and range-limit.
    for row in 0..<8 {
        let w = row * 8, o = outBase + row * stride
        if ws[w + 1] == 0 && ws[w + 2] == 0 && ws[w + 3] == 0 && ws[w + 4] == 0 && ws[w + 5] == 0
            && ws[w + 6] == 0 && ws[w + 7] == 0 {
            let v = idctRangeLimit[descale(ws[w], pass1Bits + 3) & 1023]
            for k in 0..<8 { out[o + k] = v }
            continue
        }
        var z2 = ws[w + 2], z3 = ws[w + 6]
        var z1 = (z2 + z3) * f0_541
        var tmp2 = z1 + z3 * -f1_847
        var tmp3 = z1 + z2 * f0_765
        var tmp0 = (ws[w] + ws[w + 4]) << constBits
        var tmp1 = (ws[w] - ws[w + 4]) << constBits
        let tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2
        tmp0 = ws[w + 7]; tmp1 = ws[w + 5]; tmp2 = ws[w + 3]; tmp3 = ws[w + 1]
        z1 = tmp0 + tmp3; z2 = tmp1 + tmp2; z3 = tmp0 + tmp2
        var z4 = tmp1 + tmp3
        let z5 = (z3 + z4) * f1_175
        tmp0 *= f0_298; tmp1 *= f2_053; tmp2 *= f3_072; tmp3 *= f1_501
        z1 *= -f0_899; z2 *= -f2_562; z3 *= -f1_961; z4 *= -f0_390
        z3 += z5; z4 += z5
        tmp0 += z1 + z3; tmp1 += z2 + z4; tmp2 += z2 + z3; tmp3 += z1 + z4
        let n = constBits + pass1Bits + 3
        out[o] = idctRangeLimit[descale(tmp10 + tmp3, n) & 1023]
        out[o + 7] = idctRangeLimit[descale(tmp10 - tmp3, n) & 1023]
        out[o + 1] = idctRangeLimit[descale(tmp11 + tmp2, n) & 1023]
        out[o + 6] = idctRangeLimit[descale(tmp11 - tmp2, n) & 1023]
        out[o + 2] = idctRangeLimit[descale(tmp12 + tmp1, n) & 1023]
        out[o + 5] = idctRangeLimit[descale(tmp12 - tmp1, n) & 1023]
        out[o + 3] = idctRangeLimit[descale(tmp13 + tmp0, n) & 1023]
        out[o + 4] = idctRangeLimit[descale(tmp13 - tmp0, n) & 1023]
    }
}
