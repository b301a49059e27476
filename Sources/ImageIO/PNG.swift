// PNG (ISO/IEC 15948 / W3C PNG 2nd ed.) decoder and a minimal RGB encoder.
//
// Decodes every standard colour type (gray, RGB, palette, gray+alpha, RGBA) at every allowed bit depth,
// all five filters and Adam7 interlacing. Conversion to 8-bit RGB matches Pillow's `convert("RGB")`:
//   * alpha (and tRNS) is dropped, not composited;
//   * 16-bit samples keep the HIGH byte (Pillow's "RGB;16B"/"LA;16B" raw modes do the same). One
//     difference from Pillow: 16-bit GRAY opens in Pillow as mode "I;16" whose RGB conversion clips
//     the 16-bit value at 255 instead; we take the high byte there too (the only meaningful choice for
//     a camera frame). See docs/PREPROCESSING.md;
//   * gray at 1/2/4 bits is scaled to 0...255 (x·255, x·85, x·17), as Pillow's "1", "L;2", "L;4" modes.
// Chunk CRCs are verified; ancillary chunks are skipped.

public enum PNG {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Largest accepted width·height (2^26 = 67 M pixels), so a corrupt header cannot ask for gigabytes.
    static let maxPixels = 1 << 26

    public static func decode(_ data: [UInt8], name: String) throws -> RGBImage {
        guard data.count >= 8, Array(data[0..<8]) == signature else {
            throw ImageIOError.corrupt(file: name, reason: "missing PNG signature")
        }
        var pos = 8
        var header: Header?
        var palette: [UInt8] = []
        var idat: [UInt8] = []
        var sawEnd = false
        while !sawEnd {
            guard pos + 8 <= data.count else { throw ImageIOError.truncated(file: name, what: "chunk header at byte \(pos)") }
            let len = Int(be32(data, pos))
            let type = String(decoding: data[pos + 4..<pos + 8], as: UTF8.self)
            guard len <= Int(Int32.max) else { throw ImageIOError.corrupt(file: name, reason: "chunk \(type) length \(len)") }
            guard pos + 12 + len <= data.count else {
                throw ImageIOError.truncated(file: name, what: "chunk \(type) at byte \(pos) needs \(len) data bytes")
            }
            let body = pos + 8..<pos + 8 + len
            let crc = be32(data, pos + 8 + len)
            guard Zlib.crc32(data[pos + 4..<pos + 8 + len]) == crc else {
                throw ImageIOError.corrupt(file: name, reason: "CRC mismatch in chunk \(type) at byte \(pos)")
            }
            if header == nil && type != "IHDR" { throw ImageIOError.corrupt(file: name, reason: "first chunk is \(type), not IHDR") }
            switch type {
            case "IHDR": header = try Header(Array(data[body]), name: name)
            case "PLTE":
                guard len % 3 == 0, len > 0, len <= 768 else { throw ImageIOError.corrupt(file: name, reason: "PLTE length \(len)") }
                palette = Array(data[body])
            case "IDAT": idat.append(contentsOf: data[body])
            case "IEND": sawEnd = true
            default:
                // Unknown critical chunks (uppercase first letter) cannot be skipped safely.
                if let f = type.utf8.first, f >= 65 && f <= 90 {
                    throw ImageIOError.unsupported(file: name, feature: "critical chunk \(type)")
                }
            }
            pos += 12 + len
        }
        guard let h = header else { throw ImageIOError.corrupt(file: name, reason: "no IHDR") }
        guard !idat.isEmpty else { throw ImageIOError.corrupt(file: name, reason: "no IDAT chunk") }
        if h.colorType == 3 && palette.isEmpty { throw ImageIOError.corrupt(file: name, reason: "palette image without PLTE") }
        var raw: [UInt8]
        do { raw = try Zlib.inflate(idat, maxOutput: h.rawSize, reserveMaxOutput: true) } catch let e as ZlibError {
            switch e {
            case let .truncated(w): throw ImageIOError.truncated(file: name, what: "IDAT zlib stream: \(w)")
            case let .corrupt(w): throw ImageIOError.corrupt(file: name, reason: "IDAT zlib stream: \(w)")
            }
        }
        idat = []   // the compressed copy is no longer needed
        if h.colorType == 2 && h.depth == 8 && !h.interlaced {
            return try h.reconstructRGB8InPlace(&raw, name: name)
        }
        return try h.reconstruct(raw, palette: palette, name: name)
    }

    /// Encodes 8-bit RGB, non-interlaced, filter "None" on every row, one IDAT. PNG cannot hold an empty
    /// image, so width and height must be positive (programmer error otherwise).
    public static func encode(_ image: RGBImage) -> [UInt8] {
        precondition(image.width > 0 && image.height > 0, "PNG.encode: empty \(image.width)x\(image.height) image")
        var out = signature
        var ihdr = [UInt8]()
        ihdr += u32be(UInt32(image.width)) + u32be(UInt32(image.height))
        ihdr += [8, 2, 0, 0, 0]   // depth 8, colour type 2 (RGB), deflate, filter method 0, no interlace
        var raw = [UInt8]()
        raw.reserveCapacity(image.height * (image.width * 3 + 1))
        for y in 0..<image.height {
            raw.append(0)
            raw += image.pixels[y * image.width * 3..<(y + 1) * image.width * 3]
        }
        for (type, body) in [("IHDR", ihdr), ("IDAT", Zlib.deflate(raw)), ("IEND", [])] {
            let t = Array(type.utf8)
            out += u32be(UInt32(body.count)) + t + body + u32be(Zlib.crc32(t + body))
        }
        return out
    }

    fileprivate static func be32(_ d: [UInt8], _ p: Int) -> UInt32 {
        UInt32(d[p]) << 24 | UInt32(d[p + 1]) << 16 | UInt32(d[p + 2]) << 8 | UInt32(d[p + 3])
    }

    private static func u32be(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    private struct Header {
        let width: Int, height: Int, depth: Int, colorType: Int, interlaced: Bool

        init(_ b: [UInt8], name: String) throws {
            guard b.count == 13 else { throw ImageIOError.corrupt(file: name, reason: "IHDR length \(b.count), expected 13") }
            width = Int(PNG.be32(b, 0)); height = Int(PNG.be32(b, 4))
            depth = Int(b[8]); colorType = Int(b[9])
            guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
                throw ImageIOError.corrupt(file: name, reason: "IHDR size \(width)x\(height)")
            }
            guard width.multipliedReportingOverflow(by: height).partialValue <= PNG.maxPixels, width <= PNG.maxPixels, height <= PNG.maxPixels else {
                throw ImageIOError.unsupported(file: name, feature: "image of \(width)x\(height) pixels (limit \(PNG.maxPixels))")
            }
            let allowed: [Int: [Int]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
            guard let depths = allowed[colorType] else { throw ImageIOError.corrupt(file: name, reason: "colour type \(colorType)") }
            guard depths.contains(depth) else { throw ImageIOError.corrupt(file: name, reason: "bit depth \(depth) for colour type \(colorType)") }
            guard b[10] == 0 else { throw ImageIOError.corrupt(file: name, reason: "compression method \(b[10])") }
            guard b[11] == 0 else { throw ImageIOError.corrupt(file: name, reason: "filter method \(b[11])") }
            guard b[12] <= 1 else { throw ImageIOError.corrupt(file: name, reason: "interlace method \(b[12])") }
            interlaced = b[12] == 1
            channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType]!   // colorType validated above
        }

        /// Adam7 passes (x0, y0, dx, dy); a non-interlaced image is one pass of the whole grid.
        var passes: [(Int, Int, Int, Int)] {
            interlaced ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
                       : [(0, 0, 1, 1)]
        }

        /// Bytes of filtered scanlines the IDAT stream must inflate to (filter byte + packed row, per pass).
        var rawSize: Int {
            passes.reduce(0) { acc, p in
                let pw = (width - p.0 + p.2 - 1) / p.2, ph = (height - p.1 + p.3 - 1) / p.3
                return pw <= 0 || ph <= 0 ? acc : acc + ph * (1 + (pw * bitsPerPixel + 7) / 8)
            }
        }

        let channels: Int
        var bitsPerPixel: Int { channels * depth }

        func reconstruct(_ raw: [UInt8], palette: [UInt8], name: String) throws -> RGBImage {
            guard raw.count >= rawSize else {
                throw ImageIOError.truncated(file: name, what: "image data inflates to \(raw.count) bytes, \(width)x\(height) needs \(rawSize)")
            }
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            var pos = 0
            for (x0, y0, dx, dy) in passes {
                let pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy
                if pw <= 0 || ph <= 0 { continue }   // empty passes have no filter bytes at all
                let stride = (pw * bitsPerPixel + 7) / 8
                let bpp = max(1, bitsPerPixel / 8)
                var prev = [UInt8](repeating: 0, count: stride)
                var cur = [UInt8](repeating: 0, count: stride)
                for py in 0..<ph {
                    guard pos + 1 + stride <= raw.count else {
                        throw ImageIOError.truncated(file: name, what: "image data ends at row \(py) (have \(raw.count) bytes)")
                    }
                    let filter = raw[pos]
                    for i in 0..<stride { cur[i] = raw[pos + 1 + i] }
                    pos += 1 + stride
                    try unfilter(&cur, prev: prev, filter: filter, bpp: bpp, name: name)
                    try emitRow(cur, count: pw, into: &pixels, y: y0 + py * dy, x0: x0, dx: dx, palette: palette, name: name)
                    swap(&prev, &cur)
                }
            }
            return RGBImage(width: width, height: height, pixels: pixels)
        }

        /// 8-bit RGB without interlacing (the common camera PNG): each scanline is unfiltered where it
        /// was inflated and moved down over the filter bytes, so the inflated buffer becomes the pixel
        /// array and a large image is held once, not twice. Same arithmetic as `unfilter`.
        func reconstructRGB8InPlace(_ raw: inout [UInt8], name: String) throws -> RGBImage {
            let stride = width * 3, bpp = 3
            guard raw.count >= rawSize else {
                throw ImageIOError.truncated(file: name, what: "image data inflates to \(raw.count) bytes, \(width)x\(height) needs \(rawSize)")
            }
            try raw.withUnsafeMutableBufferPointer { buf in
                let b = buf.baseAddress!
                for y in 0..<height {
                    let src = b + y * (stride + 1) + 1   // this row's filtered bytes
                    let prev: UnsafeMutablePointer<UInt8>? = y > 0 ? b + (y - 1) * stride : nil   // already in place
                    switch src[-1] {
                    case 0: break
                    case 1: for i in bpp..<stride { src[i] = src[i] &+ src[i - bpp] }
                    case 2: if let p = prev { for i in 0..<stride { src[i] = src[i] &+ p[i] } }
                    case 3:
                        for i in 0..<stride {
                            let a = i >= bpp ? Int(src[i - bpp]) : 0, up = prev.map { Int($0[i]) } ?? 0
                            src[i] = src[i] &+ UInt8((a + up) >> 1)
                        }
                    case 4:
                        for i in 0..<stride {
                            let a = i >= bpp ? Int(src[i - bpp]) : 0, bb = prev.map { Int($0[i]) } ?? 0
                            let c = i >= bpp ? (prev.map { Int($0[i - bpp]) } ?? 0) : 0
                            let p = a + bb - c, pa = abs(p - a), pb = abs(p - bb), pc = abs(p - c)
                            src[i] = src[i] &+ UInt8((pa <= pb && pa <= pc) ? a : (pb <= pc ? bb : c))
                        }
                    default: throw ImageIOError.corrupt(file: name, reason: "filter type \(src[-1])")
                    }
                    UnsafeMutableRawPointer(b + y * stride).copyMemory(from: src, byteCount: stride)   // overlapping move down (memmove)
                }
            }
            raw.removeLast(raw.count - width * height * 3)
            return RGBImage(width: width, height: height, pixels: raw)
        }

        private func unfilter(_ r: inout [UInt8], prev: [UInt8], filter: UInt8, bpp: Int, name: String) throws {
            let n = r.count
            switch filter {
            case 0: break
            case 1: for i in bpp..<max(bpp, n) { r[i] = r[i] &+ r[i - bpp] }
            case 2: for i in 0..<n { r[i] = r[i] &+ prev[i] }
            case 3:
                for i in 0..<n {
                    let a = i >= bpp ? Int(r[i - bpp]) : 0
                    r[i] = r[i] &+ UInt8((a + Int(prev[i])) >> 1)
                }
            case 4:
                for i in 0..<n {
                    let a = i >= bpp ? Int(r[i - bpp]) : 0, b = Int(prev[i]), c = i >= bpp ? Int(prev[i - bpp]) : 0
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    let pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c)
                    r[i] = r[i] &+ UInt8(pred)
                }
            default: throw ImageIOError.corrupt(file: name, reason: "filter type \(filter)")
            }
        }

        /// Sample `s` (channel `c` of pixel `i`) of an unfiltered row, reduced to 8 bits.
        @inline(__always) private func sample(_ r: [UInt8], _ i: Int, _ c: Int) -> Int {
            switch depth {
            case 8: return Int(r[i * channels + c])
            case 16: return Int(r[(i * channels + c) * 2])   // high byte (big-endian)
            default:
                let bit = (i * channels + c) * depth
                return (Int(r[bit >> 3]) >> (8 - depth - (bit & 7))) & ((1 << depth) - 1)
            }
        }

        private func emitRow(_ r: [UInt8], count: Int, into px: inout [UInt8], y: Int, x0: Int, dx: Int,
                             palette: [UInt8], name: String) throws {
            // Scale factor for sub-byte gray: 1 bit -> 255, 2 -> 85, 4 -> 17.
            let grayScale = depth < 8 ? 255 / ((1 << depth) - 1) : 1
            for i in 0..<count {
                let o = (y * width + x0 + i * dx) * 3
                switch colorType {
                case 0, 4:
                    let g = UInt8(sample(r, i, 0) * grayScale)
                    px[o] = g; px[o + 1] = g; px[o + 2] = g
                case 3:
                    let idx = sample(r, i, 0)
                    guard idx * 3 + 2 < palette.count else {
                        throw ImageIOError.corrupt(file: name, reason: "palette index \(idx) beyond \(palette.count / 3) PLTE entries")
                    }
                    px[o] = palette[idx * 3]; px[o + 1] = palette[idx * 3 + 1]; px[o + 2] = palette[idx * 3 + 2]
                default:   // 2, 6: RGB(A); alpha dropped
                    px[o] = UInt8(sample(r, i, 0)); px[o + 1] = UInt8(sample(r, i, 1)); px[o + 2] = UInt8(sample(r, i, 2))
                }
            }
        }
    }
}
