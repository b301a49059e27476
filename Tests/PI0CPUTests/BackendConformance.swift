// The machinery of the op-conformance table (BackendConformanceTests.swift): a case runs one
// `ComputeBackend` operation on seeded random inputs through the backend's own tensors (allocate,
// upload, operate, download) and records what it downloaded; the same case on the reference backend is
// the yardstick. In the spirit of ggml's test-backend-ops.
import XCTest
import PI0Tensor
import PI0TestSupport

/// How far a backend's result may be from the reference backend's.
enum Tolerance: CustomStringConvertible {
    /// Bit for bit (NaN payloads included).
    case exact
    /// Every element within n units in the last place (non-finite values equal).
    case ulps(Int)
    /// ‖got − want‖₂ / ‖want‖₂ ≤ bound over the written elements (non-finite values equal).
    case relL2(Double)

    var description: String {
        switch self {
        case .exact: return "bit-identical"
        case let .ulps(n): return "≤ \(n) ulp"
        case let .relL2(b): return "rel-L2 ≤ \(b)"
        }
    }
}

/// One row of the table: a `ComputeBackend` requirement and how to exercise it.
struct OpCase: Sendable {
    /// The requirement's name (the table's key).
    let op: String
    /// Further requirements this case exercises (`prepareLinear` with `linear`, …).
    var covers: [String] = []
    /// The values of the op's `roundToBF16` flag (or its bf16 variant) to run.
    var precisions: [Bool] = [false]
    /// The bound for an implementation that is not `ReferenceOps` itself, float32 …
    let tolerance: Tolerance
    /// … and with the bf16 flag on (nil: the same).
    var bf16Tolerance: Tolerance? = nil
    /// Why that bound.
    let reason: String
    let run: @Sendable (OpRun) throws -> Void

    func tolerance(bf16: Bool) -> Tolerance { bf16 ? bf16Tolerance ?? tolerance : tolerance }
}

/// A backend compared against the reference.
struct BackendUnderTest: Sendable {
    let name: String
    /// nil: not present on this machine (the reason is printed).
    let make: @Sendable () throws -> ComputeBackend?
    /// Ops the backend implements by running `ReferenceOps` itself: bit-identical to the reference.
    let referenceCodeOps: Set<String>
    /// A backend earlier in the list whose results this one must reproduce bit for bit (same kernels).
    var bitIdenticalTo: String? = nil
}

/// A filler that must survive wherever an operation may not write (gaps between strided rows).
let untouched: Float = 12345.5

/// One run of one case on one backend: the inputs come from `rng` (the same seed on every backend), the
/// outputs are the downloads, in order.
final class OpRun {
    let backend: ComputeBackend
    let bf16: Bool
    var rng: SplitMix64
    private(set) var outputs: [(label: String, values: [Float])] = []
    /// Failed in-case expectations (checked on every backend).
    private(set) var failures: [String] = []

    init(backend: ComputeBackend, bf16: Bool, seed: UInt64) {
        self.backend = backend; self.bf16 = bf16; rng = SplitMix64(seed: seed)
    }

    /// Uniform in `range`.
    func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    /// An odd number in `range` (which holds one).
    func odd(_ range: ClosedRange<Int>) -> Int {
        let v = int(range) | 1
        return v > range.upperBound ? v - 2 : v
    }
    /// `count` values uniform in [−scale, scale), rounded to bf16 when `roundedToBF16`.
    func values(_ count: Int, scale: Float = 1, roundedToBF16: Bool = false) -> [Float] {
        (0..<count).map { _ in
            let v = rng.float() * scale
            return roundedToBF16 ? BFloat16.round(v) : v
        }
    }

    /// Storage of exactly `values.count` floats holding `values`.
    func tensor(_ values: [Float]) -> TensorRef {
        let s = backend.allocate(count: values.count)
        let r = TensorRef(storage: s)
        backend.upload(values, to: r)
        return r
    }
    /// `count` floats of `untouched`.
    func output(_ count: Int) -> TensorRef { tensor([Float](repeating: untouched, count: count)) }
    /// `rows` rows of `width` random values at row stride `ld` (exactly (rows − 1)·ld + width floats; the
    /// gaps hold `untouched`).
    func strided(rows: Int, width: Int, ld: Int, values v: [Float]? = nil) -> TensorRef {
        let v = v ?? values(rows * width)
        var a = [Float](repeating: untouched, count: rows == 0 ? 0 : (rows - 1) * ld + width)
        for r in 0..<rows { for i in 0..<width { a[r * ld + i] = v[r * width + i] } }
        return tensor(a)
    }

    /// Downloads `count` floats at `ref` as output `label`.
    func record(_ label: String, _ ref: TensorRef, count: Int) {
        backend.synchronize()
        outputs.append((label, backend.download(ref, count: count)))
    }
    /// An in-case expectation (e.g. rows of weight 0 untouched), checked on every backend.
    func expect(_ ok: Bool, _ message: @autoclosure () -> String) { if !ok { failures.append(message()) } }
}

/// Ordered-integer distance between two floats (ulps).
func ulpDistance(_ a: Float, _ b: Float) -> Int {
    func key(_ x: Float) -> Int64 {
        let b = Int64(Int32(bitPattern: x.bitPattern))
        return b < 0 ? Int64(Int32.min) - b : b
    }
    return Int(abs(key(a) - key(b)))
}

/// Nil when `got` is within `tolerance` of `want`, else what is wrong. Elements where `want` holds
/// `untouched` must hold it in `got` too (no write outside the op's rows), whatever the tolerance.
func compare(_ got: [Float], _ want: [Float], _ tolerance: Tolerance) -> String? {
    guard got.count == want.count else { return "\(got.count) values, want \(want.count)" }
    var d2 = 0.0, r2 = 0.0, worst = (index: -1, ulps: 0)
    for i in want.indices {
        let g = got[i], w = want[i]
        if w.bitPattern == untouched.bitPattern {
            if g.bitPattern == w.bitPattern { continue }
            return "[\(i)] written (\(g)) outside the operation's rows"
        }
        if g.bitPattern == w.bitPattern { if w.isFinite { r2 += Double(w) * Double(w) }; continue }
        switch tolerance {
        case .exact:
            return "[\(i)] got \(g) (0x\(String(g.bitPattern, radix: 16))), want \(w) (0x\(String(w.bitPattern, radix: 16)))"
        case let .ulps(n):
            let u = (g.isFinite && w.isFinite) || (g.isNaN && w.isNaN) ? (g.isNaN ? 0 : ulpDistance(g, w)) : Int.max
            if u > n { return "[\(i)] got \(g), want \(w): \(u == Int.max ? "non-finite mismatch" : "\(u) ulps") > \(n)" }
            if u > worst.ulps { worst = (i, u) }
        case .relL2:
            if g.isNaN && w.isNaN { continue }
            guard g.isFinite && w.isFinite else { return "[\(i)] got \(g), want \(w) (non-finite mismatch)" }
            d2 += (Double(g) - Double(w)) * (Double(g) - Double(w)); r2 += Double(w) * Double(w)
        }
    }
    if case let .relL2(bound) = tolerance {
        let rel = (d2 / max(r2, 1e-300)).squareRoot()
        if rel > bound { return "rel-L2 \(rel) > \(bound)" }
    }
    return nil
}

/// Relative L2 of `got` against `want` over the elements that are finite in both and not `untouched`
/// (for reporting measured errors).
func measuredRelL2(_ got: [Float], _ want: [Float]) -> Double {
    var d2 = 0.0, r2 = 0.0
    for i in want.indices where want[i].isFinite && got[i].isFinite && want[i] != untouched {
        d2 += (Double(got[i]) - Double(want[i])) * (Double(got[i]) - Double(want[i])); r2 += Double(want[i]) * Double(want[i])
    }
    return (d2 / max(r2, 1e-300)).squareRoot()
}
