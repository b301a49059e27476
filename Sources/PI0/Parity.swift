// Agreement measures between our tensors and the reference's: Pearson correlation (PCC), relative L2
// error, max absolute difference and the first index outside a tolerance. Used by the parity tests.

public struct ParityResult: Sendable, CustomStringConvertible {
    public let name: String
    public let count: Int
    public let pcc: Double
    public let relativeL2: Double
    public let maxAbsDiff: Double
    public let maxAbsIndex: Int
    /// First flat index whose difference exceeds 1e-3·(|expected|max), or nil.
    public let firstBadIndex: Int?

    public func passes(minPCC: Double, maxRelL2: Double) -> Bool { pcc >= minPCC && relativeL2 <= maxRelL2 }

    public var description: String {
        let bad = firstBadIndex.map { "first bad index \($0)" } ?? "no bad index"
        return "\(name): n=\(count) pcc=\(pcc) relL2=\(relativeL2) maxAbs=\(maxAbsDiff) at \(maxAbsIndex), \(bad)"
    }

    /// Compares `actual` with `expected`, optionally only where `include[i]` is true.
    public init(name: String, actual: [Float], expected: [Float], include: [Bool]? = nil) {
        precondition(actual.count == expected.count, "\(name): \(actual.count) vs \(expected.count) values")
        self.name = name
        var xs: [Double] = [], ys: [Double] = [], idx: [Int] = []
        for i in 0..<actual.count where include?[i] ?? true {
            xs.append(Double(actual[i])); ys.append(Double(expected[i])); idx.append(i)
        }
        count = xs.count
        let n = Double(max(xs.count, 1))
        let mx = xs.reduce(0, +) / n, my = ys.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0, diff2 = 0.0, ref2 = 0.0, maxAbs = 0.0, maxIdx = 0, scale = 0.0
        for (x, y) in zip(xs, ys) { scale = max(scale, abs(y)) }
        var firstBad: Int? = nil
        for j in 0..<xs.count {
            let x = xs[j], y = ys[j]
            sxy += (x - mx) * (y - my); sxx += (x - mx) * (x - mx); syy += (y - my) * (y - my)
            diff2 += (x - y) * (x - y); ref2 += y * y
            let d = abs(x - y)
            if d > maxAbs || !d.isFinite { maxAbs = d.isFinite ? d : .infinity; maxIdx = idx[j] }
            if firstBad == nil && !(d <= 1e-3 * max(scale, 1e-30)) { firstBad = idx[j] }
        }
        if sxx == 0 && syy == 0 { pcc = diff2 == 0 ? 1 : 0 } else { pcc = sxy / ((sxx * syy).squareRoot() + 1e-300) }
        relativeL2 = ref2 > 0 ? (diff2 / ref2).squareRoot() : diff2.squareRoot()
        maxAbsDiff = maxAbs; maxAbsIndex = maxIdx; firstBadIndex = firstBad
    }
}
