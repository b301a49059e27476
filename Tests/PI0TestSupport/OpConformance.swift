// The machinery of the op-conformance table (OpConformanceTable.swift; docs/ARCHITECTURE.md, "Backends
// and their conformance"): a case runs one `ComputeBackend` operation on seeded random inputs through the
// backend's own tensors (allocate, upload, operate, download) and records what it downloaded; the same
// case on the reference backend is the yardstick. In the spirit of ggml's test-backend-ops. It lives in
// PI0TestSupport so any test target can run the table on its backend (Tests/PI0CPUTests runs it on every
// host backend: BackendConformanceTests.swift).
import XCTest
import PI0Tensor

/// How far a backend's result may be from the reference backend's.
public enum OpTolerance: Sendable, CustomStringConvertible {
    /// Bit for bit (NaN payloads included).
    case exact
    /// Every element within n units in the last place (non-finite values equal).
    case ulps(Int)
    /// ‖got − want‖₂ / ‖want‖₂ ≤ bound over the written elements (non-finite values equal).
    case relL2(Double)

    public var description: String {
        switch self {
        case .exact: return "bit-identical"
        case let .ulps(n): return "≤ \(n) ulp"
        case let .relL2(b): return "rel-L2 ≤ \(b)"
        }
    }
}

/// One row of the table: a `ComputeBackend` requirement and how to exercise it.
public struct OpCase: Sendable {
    /// The requirement's name (the table's key).
    public let op: String
    /// Further requirements this case exercises (`prepareLinear` with `linear`, …).
    public let covers: [String]
    /// The values of the op's `roundToBF16` flag (or its bf16 variant) to run.
    public let precisions: [Bool]
    /// The bound for an implementation that is not `ReferenceOps` itself, float32 …
    public let tolerance: OpTolerance
    /// … and with the bf16 flag on (nil: the same).
    public let bf16Tolerance: OpTolerance?
    /// Why that bound.
    public let reason: String
    public let run: @Sendable (OpRun) throws -> Void

    public init(op: String, covers: [String] = [], precisions: [Bool] = [false], tolerance: OpTolerance,
                bf16Tolerance: OpTolerance? = nil, reason: String, run: @escaping @Sendable (OpRun) throws -> Void) {
        self.op = op; self.covers = covers; self.precisions = precisions; self.tolerance = tolerance
        self.bf16Tolerance = bf16Tolerance; self.reason = reason; self.run = run
    }

    public func tolerance(bf16: Bool) -> OpTolerance { bf16 ? bf16Tolerance ?? tolerance : tolerance }
}

/// A backend compared against the reference.
public struct BackendUnderTest: Sendable {
    public let name: String
    /// nil: not present on this machine (the reason is printed).
    public let make: @Sendable () throws -> ComputeBackend?
    /// Ops the backend implements by running `ReferenceOps` itself: bit-identical to the reference.
    public let referenceCodeOps: Set<String>
    /// A backend (by name, among the `others` given to `OpConformance.problems`) whose results this one
    /// must reproduce bit for bit (same kernels).
    public let bitIdenticalTo: String?

    public init(name: String, make: @escaping @Sendable () throws -> ComputeBackend?, referenceCodeOps: Set<String>,
                bitIdenticalTo: String? = nil) {
        self.name = name; self.make = make; self.referenceCodeOps = referenceCodeOps; self.bitIdenticalTo = bitIdenticalTo
    }
}

/// One run of one case on one backend: the inputs come from `rng` (the same seed on every backend), the
/// outputs are the downloads, in order.
public final class OpRun {
    /// A filler that must survive wherever an operation may not write (gaps between strided rows).
    public static let untouched: Float = 12345.5

    public let backend: ComputeBackend
    public let bf16: Bool
    public var rng: SplitMix64
    public private(set) var outputs: [(label: String, values: [Float])] = []
    /// Failed in-case expectations (checked on every backend).
    public private(set) var failures: [String] = []

    public init(backend: ComputeBackend, bf16: Bool, seed: UInt64) {
        self.backend = backend; self.bf16 = bf16; rng = SplitMix64(seed: seed)
    }

    /// Uniform in `range`.
    public func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    /// An odd number in `range` (which holds one).
    public func odd(_ range: ClosedRange<Int>) -> Int {
        let v = int(range) | 1
        return v > range.upperBound ? v - 2 : v
    }
    /// `count` values uniform in [−scale, scale), rounded to bf16 when `roundedToBF16`.
    public func values(_ count: Int, scale: Float = 1, roundedToBF16: Bool = false) -> [Float] {
        (0..<count).map { _ in
            let v = rng.float() * scale
            return roundedToBF16 ? BFloat16.round(v) : v
        }
    }

    /// Storage of exactly `values.count` floats holding `values`.
    public func tensor(_ values: [Float]) -> TensorRef {
        let s = backend.allocate(count: values.count)
        let r = TensorRef(storage: s)
        backend.upload(values, to: r)
        return r
    }
    /// `count` floats of `OpRun.untouched`.
    public func output(_ count: Int) -> TensorRef { tensor([Float](repeating: OpRun.untouched, count: count)) }
    /// `rows` rows of `width` random values at row stride `ld` (exactly (rows − 1)·ld + width floats; the
    /// gaps hold `OpRun.untouched`).
    public func strided(rows: Int, width: Int, ld: Int, values v: [Float]? = nil) -> TensorRef {
        let v = v ?? values(rows * width)
        var a = [Float](repeating: OpRun.untouched, count: rows == 0 ? 0 : (rows - 1) * ld + width)
        for r in 0..<rows { for i in 0..<width { a[r * ld + i] = v[r * width + i] } }
        return tensor(a)
    }

    /// Downloads `count` floats at `ref` as output `label`.
    public func record(_ label: String, _ ref: TensorRef, count: Int) {
        backend.synchronize()
        outputs.append((label, backend.download(ref, count: count)))
    }
    /// An in-case expectation (e.g. rows of weight 0 untouched), checked on every backend.
    public func expect(_ ok: Bool, _ message: @autoclosure () -> String) { if !ok { failures.append(message()) } }
}

/// Ordered-integer distance between two floats (ulps).
public func ulpDistance(_ a: Float, _ b: Float) -> Int {
    func key(_ x: Float) -> Int64 {
        let b = Int64(Int32(bitPattern: x.bitPattern))
        return b < 0 ? Int64(Int32.min) - b : b
    }
    return Int(abs(key(a) - key(b)))
}

/// Nil when `got` is within `tolerance` of `want`, else what is wrong. Elements where `want` holds
/// `OpRun.untouched` must hold it in `got` too (no write outside the op's rows), whatever the tolerance.
public func compareOutputs(_ got: [Float], _ want: [Float], _ tolerance: OpTolerance) -> String? {
    guard got.count == want.count else { return "\(got.count) values, want \(want.count)" }
    var d2 = 0.0, r2 = 0.0, worst = (index: -1, ulps: 0)
    for i in want.indices {
        let g = got[i], w = want[i]
        if w.bitPattern == OpRun.untouched.bitPattern {
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

/// Runs the table on backends and reports every disagreement.
public enum OpConformance {
    /// How many seeds each row runs with (each draws its own shapes).
    public static let rounds = 3
    /// The base seed (PI0_CONFORMANCE_SEED replays another).
    public static let seed: UInt64 = ProcessInfo.processInfo.environment["PI0_CONFORMANCE_SEED"].flatMap { UInt64($0) } ?? 0x0C0F_0A11

    /// Runs every row of `OpTable.cases` on `subject` (or on `instance`), on the reference backend and on
    /// `subject.bitIdenticalTo` (looked up in `others`); returns what disagrees ("backend, op …: problem").
    /// Throws `XCTSkip` when the subject is not present. A counting backend runs under `.record` and its
    /// bounds violations are problems too.
    public static func problems(_ subject: BackendUnderTest, using instance: ComputeBackend? = nil,
                                others: [BackendUnderTest] = []) throws -> [String] {
        guard let backend = try instance ?? subject.make() else { throw XCTSkip("\(subject.name) is not present on this machine") }
        let twin = try subject.bitIdenticalTo.map { name in
            try XCTUnwrap(others.first { $0.name == name }?.make(), "\(name) for \(subject.name)")
        }
        if let counting = backend as? CountingBackend { counting.violationPolicy = .record }
        let reference = ReferenceBackend()
        var found: [String] = []
        for (index, c) in OpTable.cases.enumerated() {
            for bf16 in c.precisions {
                for round in 0..<rounds {
                    let caseSeed = seed &+ UInt64(index * rounds + round) &* 0x9E37_79B9
                    let context = "\(subject.name), \(c.op)\(bf16 ? " (bf16)" : ""), seed \(seed) round \(round)"
                    let want = try run(c, on: reference, bf16: bf16, seed: caseSeed)
                    let got = try run(c, on: backend, bf16: bf16, seed: caseSeed)
                    found += want.failures.map { "reference: \(context): \($0)" } + got.failures.map { "\(context): \($0)" }
                    let sameCode = subject.referenceCodeOps.contains(c.op)
                    let tolerance = sameCode ? OpTolerance.exact : c.tolerance(bf16: bf16)
                    found += mismatches(got, want, tolerance,
                                        "\(context) vs reference (\(tolerance): \(sameCode ? "runs ReferenceOps" : c.reason))")
                    if let twin, let name = subject.bitIdenticalTo {
                        found += mismatches(got, try run(c, on: twin, bf16: bf16, seed: caseSeed), .exact, "\(context) vs \(name) (same kernels)")
                    }
                }
            }
        }
        if let counting = backend as? CountingBackend {
            found += counting.violations.map { "\(subject.name), bounds (tensors are exactly as large as each op needs): \($0)" }
        }
        return found
    }

    static func run(_ c: OpCase, on backend: ComputeBackend, bf16: Bool, seed: UInt64) throws -> OpRun {
        let r = OpRun(backend: backend, bf16: bf16, seed: seed)
        try c.run(r)
        return r
    }

    static func mismatches(_ got: OpRun, _ want: OpRun, _ tolerance: OpTolerance, _ context: String) -> [String] {
        if got.outputs.map(\.label) != want.outputs.map(\.label) {
            return ["\(context): outputs \(got.outputs.map(\.label)), want \(want.outputs.map(\.label))"]
        }
        return zip(got.outputs, want.outputs).compactMap { g, w in
            compareOutputs(g.values, w.values, tolerance).map { "\(context), \(g.label): \($0)" }
        }
    }
}
