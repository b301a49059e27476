// JPEG decoder: baseline/extended sequential and progressive Huffman (SOF0, SOF1, SOF2), 8-bit,
// grayscale, 3-component (YCbCr, or RGB when an Adobe/component-id marker says so) or 4-component
// (CMYK, or YCCK when the Adobe APP14 transform flag is 2, converted as Pillow does), any integer
// chroma subsampling, restart intervals. Output is meant to equal what Pillow gives for
// `Image.open(f).convert("RGB")` (libjpeg-turbo defaults: JDCT_ISLOW, fancy upsampling, no block
// smoothing once all scans are in) — see JPEGReconstruct.swift and docs/PREPROCESSING.md.
//
// Structure: this file parses markers and runs the scans into per-component coefficient arrays
// (libjpeg's "full image" coefficient buffer, used here for baseline too); JPEGReconstruct.swift turns
// coefficients into pixels. Not supported (typed error): arithmetic coding, lossless, hierarchical,
// 12-bit samples.

public enum JPEG {
    /// Largest accepted width·height (2^26 = 67 M pixels, e.g. 8192×8192), so a corrupt header cannot
    /// make us allocate gigabytes.
    static let maxPixels = 1 << 26

    public static func decode(_ data: [UInt8], name: String) throws -> RGBImage {
        var d = JPEGDecoder(data: data, name: name)
        try d.parse()
        return try d.reconstruct()
    }
}

struct JPEGComponent {
    let id: Int, h: Int, v: Int, tq: Int
    /// Allocated block grid (whole MCUs) and the component's real size in samples.
    var blocksPerLine = 0, blocksPerColumn = 0, width = 0, height = 0
    var coefs: [Int16] = []
    var dcTable = 0, acTable = 0
    var lastDC = 0
}

struct JPEGDecoder {
    let data: [UInt8]
    let name: String
    var pos = 2
    var quant = [[Int]?](repeating: nil, count: 4)        // natural order
    // Slots 0/1 start with the Annex K tables, as libjpeg-turbo does for DHT-less (Motion-JPEG) files.
    var dcTables: [JPEGHuffmanTable?] = [JPEGStandardTables.dcLuminance, JPEGStandardTables.dcChrominance, nil, nil]
    var acTables: [JPEGHuffmanTable?] = [JPEGStandardTables.acLuminance, JPEGStandardTables.acChrominance, nil, nil]
    var components: [JPEGComponent] = []
    var width = 0, height = 0, hmax = 1, vmax = 1, mcusX = 0, mcusY = 0
    var progressive = false
    var restartInterval = 0
    var sawJFIF = false
    var adobeTransform: Int?
    var eobrun = 0
    var sawEOI = false
    var scans = 0

    init(data: [UInt8], name: String) { self.data = data; self.name = name }

    func truncated(_ what: String) -> ImageIOError { .truncated(file: name, what: what) }
    func corrupt(_ why: String) -> ImageIOError { .corrupt(file: name, reason: why) }

    mutating func parse() throws {
        guard data.count >= 2, data[0] == 0xFF, data[1] == 0xD8 else { throw corrupt("missing SOI marker") }
        while !sawEOI {
            // Markers may be preceded by any number of 0xFF fill bytes.
            guard pos < data.count else { throw truncated("no EOI marker (data ends at byte \(pos))") }
            guard data[pos] == 0xFF else { throw corrupt("expected a marker at byte \(pos), found 0x\(String(data[pos], radix: 16))") }
            while pos < data.count && data[pos] == 0xFF { pos += 1 }
            guard pos < data.count else { throw truncated("marker at end of data") }
            let marker = Int(data[pos]); pos += 1
            switch marker {
            case 0xD9: sawEOI = true; continue
            case 0xD0...0xD7, 0x01: continue          // stray RST / TEM carry no length
            default: break
            }
            guard pos + 2 <= data.count else { throw truncated("length of marker 0x\(String(marker, radix: 16))") }
            let len = Int(data[pos]) << 8 | Int(data[pos + 1])
            guard len >= 2 else { throw corrupt("marker 0x\(String(marker, radix: 16)) length \(len)") }
            guard pos + len <= data.count else { throw truncated("segment 0x\(String(marker, radix: 16)) at byte \(pos - 2) needs \(len) bytes") }
            let seg = Array(data[pos + 2..<pos + len])
            pos += len
            switch marker {
            case 0xC0, 0xC1, 0xC2: try readFrame(seg, progressive: marker == 0xC2)
            case 0xC3, 0xC5...0xC7, 0xC9...0xCB, 0xCD...0xCF:
                throw ImageIOError.unsupported(file: name, feature: "JPEG process SOF\(marker - 0xC0) (lossless, hierarchical or arithmetic)")
            case 0xC4: try readHuffman(seg)
            case 0xCC: throw ImageIOError.unsupported(file: name, feature: "arithmetic coding (DAC)")
            case 0xDB: try readQuant(seg)
            case 0xDD:
                guard seg.count >= 2 else { throw corrupt("DRI length") }
                restartInterval = Int(seg[0]) << 8 | Int(seg[1])
            case 0xDA: try readScan(seg)
            case 0xE0: if seg.count >= 5 && Array(seg[0..<5]) == Array("JFIF\0".utf8) { sawJFIF = true }
            case 0xEE: if seg.count >= 12 && Array(seg[0..<5]) == Array("Adobe".utf8) { adobeTransform = Int(seg[11]) }
            default: break                               // APPn, COM, DNL...: skipped
            }
        }
        guard !components.isEmpty else { throw corrupt("no frame header (SOF)") }
        guard scans > 0 else { throw corrupt("no scan (SOS) before EOI") }
    }

    mutating func readFrame(_ s: [UInt8], progressive p: Bool) throws {
        guard components.isEmpty else { throw corrupt("more than one frame header") }
        guard s.count >= 6 else { throw truncated("SOF segment") }
        guard s[0] == 8 else { throw ImageIOError.unsupported(file: name, feature: "\(s[0])-bit samples (only 8-bit)") }
        height = Int(s[1]) << 8 | Int(s[2]); width = Int(s[3]) << 8 | Int(s[4])
        let n = Int(s[5])
        guard width > 0 && height > 0 else { throw ImageIOError.unsupported(file: name, feature: "size \(width)x\(height) (DNL-defined height)") }
        guard width * height <= JPEG.maxPixels else { throw ImageIOError.unsupported(file: name, feature: "\(width)x\(height) pixels") }
        guard n == 1 || n == 3 || n == 4 else {
            throw ImageIOError.unsupported(file: name, feature: "\(n) colour components (only gray, 3-component and CMYK/YCCK)")
        }
        guard s.count >= 6 + 3 * n else { throw truncated("SOF component list") }
        progressive = p
        for i in 0..<n {
            let hv = Int(s[7 + 3 * i]), tq = Int(s[8 + 3 * i])
            let h = hv >> 4, v = hv & 15
            guard (1...4).contains(h), (1...4).contains(v) else { throw corrupt("sampling factors \(h)x\(v) of component \(i)") }
            guard tq < 4 else { throw corrupt("quantisation table \(tq) of component \(i)") }
            components.append(JPEGComponent(id: Int(s[6 + 3 * i]), h: h, v: v, tq: tq))
        }
        hmax = components.map(\.h).max()!; vmax = components.map(\.v).max()!
        mcusX = (width + 8 * hmax - 1) / (8 * hmax); mcusY = (height + 8 * vmax - 1) / (8 * vmax)
        for i in components.indices {
            var c = components[i]
            guard hmax % c.h == 0, vmax % c.v == 0 else {
                throw ImageIOError.unsupported(file: name, feature: "non-integer subsampling ratio \(hmax)/\(c.h) x \(vmax)/\(c.v)")
            }
            c.blocksPerLine = mcusX * c.h; c.blocksPerColumn = mcusY * c.v
            // libjpeg: downsampled_width = ceil(image_width * h / max_h)
            c.width = (width * c.h + hmax - 1) / hmax; c.height = (height * c.v + vmax - 1) / vmax
            c.coefs = [Int16](repeating: 0, count: c.blocksPerLine * c.blocksPerColumn * 64)
            components[i] = c
        }
    }

    mutating func readHuffman(_ s: [UInt8]) throws {
        var p = 0
        while p < s.count {
            guard p + 17 <= s.count else { throw truncated("DHT segment") }
            let tc = Int(s[p] >> 4), th = Int(s[p] & 15)
            guard tc <= 1, th <= 3 else { throw corrupt("DHT table class \(tc) id \(th)") }
            let counts = (1...16).map { Int(s[p + $0]) }
            let total = counts.reduce(0, +)
            guard total <= 256, p + 17 + total <= s.count else { throw corrupt("DHT table with \(total) symbols") }
            let vals = Array(s[p + 17..<p + 17 + total])
            guard let t = try? JPEGHuffmanTable(counts: counts, values: vals) else { throw corrupt("over-subscribed Huffman table \(tc)/\(th)") }
            if tc == 0 { dcTables[th] = t } else { acTables[th] = t }
            p += 17 + total
        }
    }

    mutating func readQuant(_ s: [UInt8]) throws {
        var p = 0
        while p < s.count {
            let pq = Int(s[p] >> 4), tq = Int(s[p] & 15)
            guard pq <= 1, tq <= 3 else { throw corrupt("DQT precision \(pq) id \(tq)") }
            let size = pq == 0 ? 64 : 128
            guard p + 1 + size <= s.count else { throw truncated("DQT table \(tq)") }
            var t = [Int](repeating: 0, count: 64)
            for k in 0..<64 {
                t[jpegNaturalOrder[k]] = pq == 0 ? Int(s[p + 1 + k]) : Int(s[p + 1 + 2 * k]) << 8 | Int(s[p + 2 + 2 * k])
            }
            quant[tq] = t
            p += 1 + size
        }
    }

    mutating func readScan(_ s: [UInt8]) throws {
        guard !components.isEmpty else { throw corrupt("SOS before SOF") }
        guard s.count >= 1 else { throw truncated("SOS segment") }
        let n = Int(s[0])
        guard (1...4).contains(n), s.count >= 1 + 2 * n + 3 else { throw corrupt("SOS with \(n) components") }
        var scan: [Int] = []
        for i in 0..<n {
            let id = Int(s[1 + 2 * i])
            guard let ci = components.firstIndex(where: { $0.id == id }), !scan.contains(ci) else {
                throw corrupt("SOS names unknown or repeated component id \(id)")
            }
            components[ci].dcTable = Int(s[2 + 2 * i] >> 4); components[ci].acTable = Int(s[2 + 2 * i] & 15)
            guard components[ci].dcTable < 4, components[ci].acTable < 4 else { throw corrupt("SOS table selector") }
            scan.append(ci)
        }
        let ss = Int(s[1 + 2 * n]), se = Int(s[2 + 2 * n]), ah = Int(s[3 + 2 * n] >> 4), al = Int(s[3 + 2 * n] & 15)
        if progressive {
            guard ss <= se, se <= 63, (ss == 0) == (se == 0), ss == 0 || n == 1, ah <= 13, al <= 13 else {
                throw corrupt("progressive scan parameters Ss=\(ss) Se=\(se) Ah=\(ah) Al=\(al) Ns=\(n)")
            }
        }
        if n > 1 {
            let blocks = scan.reduce(0) { $0 + components[$1].h * components[$1].v }
            guard blocks <= 10 else { throw corrupt("\(blocks) blocks per MCU (limit 10)") }
        }
        // Tables the scan will use must exist.
        for ci in scan {
            let c = components[ci]
            let needDC = !progressive || (ss == 0 && ah == 0), needAC = !progressive || ss > 0
            if needDC && dcTables[c.dcTable] == nil { throw corrupt("DC Huffman table \(c.dcTable) not defined") }
            if needAC && acTables[c.acTable] == nil { throw corrupt("AC Huffman table \(c.acTable) not defined") }
            if quant[c.tq] == nil { throw corrupt("quantisation table \(c.tq) not defined") }
        }
        for ci in scan { components[ci].lastDC = 0 }
        eobrun = 0
        var r = JPEGBitReader(data: data, pos: pos)
        let mode = JPEGScanMode(progressive: progressive, ss: ss, se: se, ah: ah, al: al)
        var mcu = 0
        let single = n == 1
        // Only plain integers are taken out of `components` here: holding a copy of a component would
        // share its `coefs` buffer and make every block write copy the whole array (copy-on-write).
        let c0w = components[scan[0]].width, c0h = components[scan[0]].height, c0bpl = components[scan[0]].blocksPerLine
        let layout = scan.map { (ci: $0, h: components[$0].h, v: components[$0].v, bpl: components[$0].blocksPerLine) }
        let unitsX = single ? (c0w + 7) / 8 : mcusX, unitsY = single ? (c0h + 7) / 8 : mcusY
        for uy in 0..<unitsY {
            for ux in 0..<unitsX {
                if restartInterval > 0 && mcu > 0 && mcu % restartInterval == 0 { try restart(&r, scan, index: mcu / restartInterval - 1) }
                if single {
                    try decodeBlock(&r, ci: scan[0], block: uy * c0bpl + ux, mode)
                } else {
                    for c in layout {
                        for v in 0..<c.v { for h in 0..<c.h {
                            try decodeBlock(&r, ci: c.ci, block: (uy * c.v + v) * c.bpl + ux * c.h + h, mode)
                        } }
                    }
                }
                if r.overran {
                    throw r.pos >= data.count ? truncated("entropy-coded data of scan ends inside MCU \(mcu)")
                                              : corrupt("entropy-coded data hits a marker inside MCU \(mcu)")
                }
                mcu += 1
            }
        }
        r.seekMarker()
        pos = r.pos
        scans += 1
    }

    private mutating func restart(_ r: inout JPEGBitReader, _ scan: [Int], index: Int) throws {
        r.seekMarker()
        guard r.pos + 1 < data.count else { throw truncated("missing restart marker RST\(index % 8)") }
        let m = Int(data[r.pos + 1])
        guard m == 0xD0 + index % 8 else { throw corrupt("expected RST\(index % 8) at byte \(r.pos), found marker 0x\(String(m, radix: 16))") }
        r.pos += 2
        for ci in scan { components[ci].lastDC = 0 }
        eobrun = 0
    }
}
