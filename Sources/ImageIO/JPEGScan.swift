// Per-block entropy decoding: sequential (libjpeg jdhuff.c decode_mcu) and the four progressive
// passes (jdphuff.c decode_mcu_DC_first / DC_refine / AC_first / AC_refine), line for line, so the
// coefficients equal libjpeg's. Coefficients are stored dezigzagged (natural order) as Int16, like
// libjpeg's JCOEF, with the same truncation on overflow.

struct JPEGScanMode {
    let progressive: Bool
    let ss: Int, se: Int, ah: Int, al: Int
}

extension JPEGDecoder {
    mutating func decodeBlock(_ r: inout JPEGBitReader, ci: Int, block: Int, _ m: JPEGScanMode) throws {
        let base = block * 64
        if !m.progressive {
            try decodeSequential(&r, ci: ci, base: base)
        } else if m.ss == 0 {
            if m.ah == 0 {
                // DC first pass: difference, prediction, point transform.
                let t = dcTables[components[ci].dcTable]!
                guard let s = r.decode(t), s <= 15 else { throw corrupt("bad DC Huffman code in block \(block)") }
                let diff = jpegExtend(r.bits(s), s)
                components[ci].lastDC = components[ci].lastDC &+ diff
                components[ci].coefs[base] = Int16(truncatingIfNeeded: components[ci].lastDC << m.al)
            } else if r.bit() != 0 {
                components[ci].coefs[base] |= Int16(truncatingIfNeeded: 1 << m.al)
            }
        } else if m.ah == 0 {
            try decodeACFirst(&r, ci: ci, base: base, m)
        } else {
            try decodeACRefine(&r, ci: ci, base: base, m)
        }
    }

    private mutating func decodeSequential(_ r: inout JPEGBitReader, ci: Int, base: Int) throws {
        let dc = dcTables[components[ci].dcTable]!, ac = acTables[components[ci].acTable]!
        guard let s = r.decode(dc), s <= 15 else { throw corrupt("bad DC Huffman code") }
        let diff = jpegExtend(r.bits(s), s)
        components[ci].lastDC = components[ci].lastDC &+ diff
        components[ci].coefs[base] = Int16(truncatingIfNeeded: components[ci].lastDC)
        var k = 1
        while k < 64 {
            guard let rs = r.decode(ac) else { throw corrupt("bad AC Huffman code") }
            let run = rs >> 4, s = rs & 15
            if s != 0 {
                k += run
                let v = jpegExtend(r.bits(s), s)
                components[ci].coefs[base + jpegNaturalOrder[k]] = Int16(truncatingIfNeeded: v)
            } else {
                if run != 15 { break }
                k += 15
            }
            k += 1
        }
    }

    private mutating func decodeACFirst(_ r: inout JPEGBitReader, ci: Int, base: Int, _ m: JPEGScanMode) throws {
        if eobrun > 0 { eobrun -= 1; return }
        let ac = acTables[components[ci].acTable]!
        var k = m.ss
        while k <= m.se {
            guard let rs = r.decode(ac) else { throw corrupt("bad AC Huffman code (progressive)") }
            let run = rs >> 4, s = rs & 15
            if s != 0 {
                k += run
                let v = jpegExtend(r.bits(s), s)
                components[ci].coefs[base + jpegNaturalOrder[k]] = Int16(truncatingIfNeeded: v << m.al)
            } else if run == 15 {
                k += 15
            } else {
                eobrun = 1 << run
                if run != 0 { eobrun += r.bits(run) }
                eobrun -= 1
                break
            }
            k += 1
        }
    }

    private mutating func decodeACRefine(_ r: inout JPEGBitReader, ci: Int, base: Int, _ m: JPEGScanMode) throws {
        let p1 = 1 << m.al, m1 = -1 << m.al
        var k = m.ss
        // Refines an already-nonzero coefficient with one correction bit (sign-preserving).
        func refine(_ r: inout JPEGBitReader, _ coefs: inout [Int16], _ idx: Int) {
            let c = Int(coefs[idx])
            if r.bit() != 0 && c & p1 == 0 {
                coefs[idx] = Int16(truncatingIfNeeded: c >= 0 ? c + p1 : c + m1)
            }
        }
        if eobrun == 0 {
            let ac = acTables[components[ci].acTable]!
            while k <= m.se {
                guard let rs = r.decode(ac) else { throw corrupt("bad AC Huffman code (refinement)") }
                var run = rs >> 4
                var s = rs & 15
                if s != 0 {
                    // s must be 1 (libjpeg warns otherwise and treats it as 1).
                    s = r.bit() != 0 ? p1 : m1
                } else if run != 15 {
                    eobrun = 1 << run
                    if run != 0 { eobrun += r.bits(run) }
                    break
                }
                // Skip `run` zero-history coefficients, refining nonzero ones on the way.
                repeat {
                    let idx = base + jpegNaturalOrder[k]
                    if components[ci].coefs[idx] != 0 {
                        refine(&r, &components[ci].coefs, idx)
                    } else {
                        run -= 1
                        if run < 0 { break }
                    }
                    k += 1
                } while k <= m.se
                if s != 0 {
                    components[ci].coefs[base + jpegNaturalOrder[k]] = Int16(truncatingIfNeeded: s)
                }
                k += 1
            }
        }
        if eobrun > 0 {
            while k <= m.se {
                let idx = base + jpegNaturalOrder[k]
                if components[ci].coefs[idx] != 0 { refine(&r, &components[ci].coefs, idx) }
                k += 1
            }
            eobrun -= 1
        }
    }
}
