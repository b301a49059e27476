// A test-only backend that proves where the model's data lives (docs/ARCHITECTURE.md, "Backends and
// their conformance"). Its tensors are `ArenaStorage`, which no host backend and no model code can read
// (`TensorRef.hostPointer` fails on it): the only way in or out is `upload` / `download`. It counts
// transfers, synchronisations, allocations and operations; checks every reference of every operation
// against its storage (the elements the operation touches, from its rows, strides and widths); and can
// refuse to allocate or to transfer while frozen. The arithmetic is delegated unchanged to a wrapped
// backend on that backend's own storage, so results are bit-identical to the wrapped backend's.
import Foundation
import PI0Tensor

/// Storage of a `CountingBackend`: the wrapped backend's storage, reachable only through the counting
/// backend that allocated it.
public final class ArenaStorage: BackendStorage, @unchecked Sendable {
    public let count: Int
    fileprivate let inner: BackendStorage
    fileprivate let owner: ObjectIdentifier

    fileprivate init(count: Int, inner: BackendStorage, owner: ObjectIdentifier) {
        self.count = count; self.inner = inner; self.owner = owner
    }
}

/// What a `CountingBackend` has seen. Subtract two snapshots for the counts of one phase.
public struct BackendCounters: Equatable, Sendable, CustomStringConvertible {
    public var uploads = 0, uploadedFloats = 0
    public var downloads = 0, downloadedFloats = 0
    public var synchronizations = 0
    public var allocations = 0, allocatedFloats = 0
    /// Operations by requirement name ("linear", "attention", "eulerStep", …), transfers not included.
    public var ops: [String: Int] = [:]

    public init() {}

    public var transfers: Int { uploads + downloads }
    public var opCount: Int { ops.values.reduce(0, +) }

    /// The counts of the phase between `earlier` and `self`.
    public static func - (later: BackendCounters, earlier: BackendCounters) -> BackendCounters {
        var d = BackendCounters()
        d.uploads = later.uploads - earlier.uploads; d.uploadedFloats = later.uploadedFloats - earlier.uploadedFloats
        d.downloads = later.downloads - earlier.downloads; d.downloadedFloats = later.downloadedFloats - earlier.downloadedFloats
        d.synchronizations = later.synchronizations - earlier.synchronizations
        d.allocations = later.allocations - earlier.allocations; d.allocatedFloats = later.allocatedFloats - earlier.allocatedFloats
        for (op, n) in later.ops where n != earlier.ops[op, default: 0] { d.ops[op] = n - earlier.ops[op, default: 0] }
        return d
    }

    public var description: String {
        "uploads \(uploads) (\(uploadedFloats) floats), downloads \(downloads) (\(downloadedFloats) floats), "
            + "syncs \(synchronizations), allocations \(allocations) (\(allocatedFloats) floats), ops \(ops.sorted { $0.key < $1.key })"
    }
}

public final class CountingBackend: ComputeBackend, @unchecked Sendable {
    /// One recorded call, in issue order (when `recordsEvents` is on).
    public enum Event: Equatable, Sendable {
        case allocate(floats: Int), upload(floats: Int), download(floats: Int), synchronize, op(String)
    }

    /// What a broken rule (out-of-bounds reference, foreign tensor, allocation while frozen) does:
    /// `.trap` stops the process naming the operation; `.record` appends the message to `violations`
    /// and skips the operation (for tests of the checks themselves).
    public enum ViolationPolicy: Sendable { case trap, record }

    public let inner: ComputeBackend
    private let lock = NSLock()
    private var counters = BackendCounters()
    private var marks: [(name: String, at: BackendCounters)] = []
    private var log: [Event] = []
    private var broken: [String] = []
    private var _allocationsFrozen = false, _transfersFrozen = false, _recordsEvents = false
    private var _policy = ViolationPolicy.trap

    /// Wraps `inner` (the cpu backend for bit-identical results, or the reference backend).
    public init(wrapping inner: ComputeBackend) { self.inner = inner }

    public var name: String { "counting (\(inner.name))" }

    // MARK: Counters, phases and switches

    /// The counts since creation or the last `resetCounters()`.
    public func snapshot() -> BackendCounters { lock.withLock { counters } }
    /// Zeroes the counts and forgets marks and events.
    public func resetCounters() { lock.withLock { counters = BackendCounters(); marks = []; log = [] } }
    /// Starts a phase named `name` (ending the previous one); see `phases()`.
    public func mark(_ name: String) { lock.withLock { marks.append((name, counters)) } }
    /// The counts of every marked phase, each up to the next mark (the last one up to now).
    public func phases() -> [(name: String, counters: BackendCounters)] {
        lock.withLock {
            marks.indices.map { i in (marks[i].name, (i + 1 < marks.count ? marks[i + 1].at : counters) - marks[i].at) }
        }
    }
    /// The counts of `body` alone.
    public func measure(_ body: () throws -> Void) rethrows -> BackendCounters {
        let before = snapshot()
        try body()
        return snapshot() - before
    }
    /// While true, `allocate` is a violation (prove that a phase allocates nothing).
    public var allocationsFrozen: Bool {
        get { lock.withLock { _allocationsFrozen } } set { lock.withLock { _allocationsFrozen = newValue } }
    }
    /// While true, `upload`, `download` and `synchronize` are violations.
    public var transfersFrozen: Bool {
        get { lock.withLock { _transfersFrozen } } set { lock.withLock { _transfersFrozen = newValue } }
    }
    /// While true, every call is appended to `events`.
    public var recordsEvents: Bool {
        get { lock.withLock { _recordsEvents } } set { lock.withLock { _recordsEvents = newValue } }
    }
    public var events: [Event] { lock.withLock { log } }
    public var violationPolicy: ViolationPolicy {
        get { lock.withLock { _policy } } set { lock.withLock { _policy = newValue } }
    }
    /// The violations seen under `.record`.
    public var violations: [String] { lock.withLock { broken } }

    // MARK: Checking and counting

    /// The elements an operation touches through one reference.
    struct Region {
        let ref: TensorRef, extent: Int, what: String
        /// A geometry that is wrong whatever the storage (negative stride, written rows that overlap).
        var problem: String?

        /// `count` contiguous elements.
        init(_ ref: TensorRef, count: Int, _ what: String, written: Bool = false) {
            self.ref = ref; extent = count; self.what = what
        }
        /// `rows` rows of `width` at row stride `stride` (0 repeats one row, when only read).
        init(_ ref: TensorRef, rows: Int, stride: Int, width: Int, _ what: String, written: Bool = false) {
            self.ref = ref; self.what = what
            extent = rows <= 0 || width <= 0 ? 0 : (rows - 1) * stride + width
            if stride < 0 { problem = "negative stride \(stride)" }
            if written && rows > 1 && width > 0 && stride < width { problem = "stride \(stride) < width \(width) (written rows would overlap)" }
        }
    }

    private func violation(_ message: String) -> Bool {
        let policy = lock.withLock { () -> ViolationPolicy in
            if _policy == .record { broken.append(message) }
            return _policy
        }
        if policy == .trap { preconditionFailure(message) }
        return false
    }

    /// Checks every region; counts `op` (once) when all hold. False: skip the operation (`.record`).
    /// Transfers pass `isOp: false` (counted by `transfer`, not as an op).
    private func check(_ op: String, _ regions: [Region], counts: Int..., isOp: Bool = true) -> Bool {
        for c in counts where c < 0 { return violation("CountingBackend.\(op): negative count \(c)") }
        for r in regions {
            guard let arena = r.ref.storage as? ArenaStorage, arena.owner == ObjectIdentifier(self) else {
                return violation("CountingBackend.\(op): \(r.what) is a \(type(of: r.ref.storage)) tensor of another backend")
            }
            if let p = r.problem { return violation("CountingBackend.\(op): \(r.what) \(p)") }
            let lo = r.ref.offset, hi = r.ref.offset + r.extent
            if lo < 0 || r.extent < 0 || hi > arena.count {
                return violation("CountingBackend.\(op): \(r.what) touches [\(lo), \(hi)) outside its storage of \(arena.count) floats")
            }
        }
        if isOp {
            lock.withLock {
                counters.ops[op, default: 0] += 1
                if _recordsEvents { log.append(.op(op)) }
            }
        }
        return true
    }

    /// The wrapped backend's position for an (already checked) arena reference.
    private func inner(_ r: TensorRef) -> TensorRef {
        guard let arena = r.storage as? ArenaStorage else { preconditionFailure("CountingBackend: not an arena tensor") }
        return TensorRef(storage: arena.inner, offset: r.offset)
    }

    private func transfer(_ what: String, _ event: Event, _ bump: (inout BackendCounters) -> Void) -> Bool {
        let frozen = lock.withLock { _transfersFrozen }
        if frozen { return violation("CountingBackend.\(what) while transfers are frozen") }
        lock.withLock {
            bump(&counters)
            if _recordsEvents { log.append(event) }
        }
        return true
    }

    // MARK: Memory and transfers

    public func allocate(count: Int) -> BackendStorage {
        precondition(count >= 0, "CountingBackend.allocate: negative count \(count)")
        if lock.withLock({ _allocationsFrozen }) { _ = violation("CountingBackend.allocate(\(count)) while allocations are frozen") }
        lock.withLock {
            counters.allocations += 1; counters.allocatedFloats += count
            if _recordsEvents { log.append(.allocate(floats: count)) }
        }
        return ArenaStorage(count: count, inner: inner.allocate(count: count), owner: ObjectIdentifier(self))
    }

    public func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef) {
        guard check("upload", [Region(destination, count: source.count, "destination", written: true)], isOp: false) else { return }
        guard transfer("upload", .upload(floats: source.count), { $0.uploads += 1; $0.uploadedFloats += source.count }) else { return }
        inner.upload(source, to: inner(destination))
    }

    public func download(_ source: TensorRef, into destination: UnsafeMutableBufferPointer<Float>) {
        guard check("download", [Region(source, count: destination.count, "source")], isOp: false),
              transfer("download", .download(floats: destination.count), { $0.downloads += 1; $0.downloadedFloats += destination.count })
        else {
            destination.update(repeating: .nan)                // refused (`.record`): nothing anyone could mistake for data
            return
        }
        inner.download(inner(source), into: destination)
    }

    public func synchronize() {
        guard transfer("synchronize", .synchronize, { $0.synchronizations += 1 }) else { return }
        inner.synchronize()
    }

    // MARK: Weights

    final class CountedLinear: PreparedLinear, @unchecked Sendable {
        let inner: PreparedLinear, owner: ObjectIdentifier
        var outFeatures: Int { inner.outFeatures }
        var inFeatures: Int { inner.inFeatures }
        var byteCount: Int { inner.byteCount }
        init(_ inner: PreparedLinear, owner: ObjectIdentifier) { self.inner = inner; self.owner = owner }
    }

    final class CountedEmbedding: PreparedEmbedding, @unchecked Sendable {
        let inner: PreparedEmbedding, owner: ObjectIdentifier
        var rows: Int { inner.rows }
        var width: Int { inner.width }
        init(_ inner: PreparedEmbedding, owner: ObjectIdentifier) { self.inner = inner; self.owner = owner }
    }

    public func prepareLinear(_ weights: [WeightTensor], biases: [WeightTensor?], inputsAreBF16: Bool) throws -> PreparedLinear {
        CountedLinear(try inner.prepareLinear(weights, biases: biases, inputsAreBF16: inputsAreBF16), owner: ObjectIdentifier(self))
    }

    public func prepareEmbedding(_ table: WeightTensor) throws -> PreparedEmbedding {
        CountedEmbedding(try inner.prepareEmbedding(table), owner: ObjectIdentifier(self))
    }

    // MARK: Products

    public func linear(_ w: PreparedLinear, x: TensorRef, rows: Int, ldx: Int, y: TensorRef, ldy: Int) {
        guard let l = w as? CountedLinear, l.owner == ObjectIdentifier(self) else {
            _ = violation("CountingBackend.linear: a \(type(of: w)) prepared by another backend"); return
        }
        guard check("linear", [Region(x, rows: rows, stride: ldx, width: l.inFeatures, "x"),
                               Region(y, rows: rows, stride: ldy, width: l.outFeatures, "y", written: true)], counts: rows)
        else { return }
        inner.linear(l.inner, x: inner(x), rows: rows, ldx: ldx, y: inner(y), ldy: ldy)
    }

    public func attention(_ a: AttentionCall) {
        let qw = a.heads * a.headDim, kw = a.kvHeads * a.headDim
        var regions = [Region(a.q, rows: a.queries, stride: a.qStride, width: qw, "q"),
                       Region(a.k, rows: a.keys, stride: a.kStride, width: kw, "k"),
                       Region(a.v, rows: a.keys, stride: a.vStride, width: kw, "v"),
                       Region(a.out, rows: a.queries, stride: a.outStride, width: qw, "out", written: true)]
        if let m = a.mask { regions.append(Region(m, rows: a.queries, stride: a.maskStride, width: a.keys, "mask")) }
        guard a.kvHeads > 0 && a.heads % a.kvHeads == 0 else {
            _ = violation("CountingBackend.attention: \(a.heads) heads over \(a.kvHeads) kv heads"); return
        }
        guard check("attention", regions, counts: a.queries, a.keys, a.headDim) else { return }
        var c = a
        c.q = inner(a.q); c.k = inner(a.k); c.v = inner(a.v); c.out = inner(a.out); c.mask = a.mask.map { inner($0) }
        inner.attention(c)
    }

    // MARK: Normalisation

    public func layerNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef, bias: TensorRef, eps: Float, out: TensorRef) {
        guard check("layerNorm", [Region(x, count: rows * width, "x"), Region(weight, count: width, "weight"),
                                  Region(bias, count: width, "bias"), Region(out, count: rows * width, "out", written: true)],
                    counts: rows, width) else { return }
        inner.layerNorm(inner(x), rows: rows, width: width, weight: inner(weight), bias: inner(bias), eps: eps, out: inner(out))
    }

    public func rmsNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, out: TensorRef) {
        var regions = [Region(x, count: rows * width, "x"), Region(out, count: rows * width, "out", written: true)]
        if let w = weight { regions.append(Region(w, count: width, "weight")) }
        guard check("rmsNorm", regions, counts: rows, width) else { return }
        inner.rmsNorm(inner(x), rows: rows, width: width, weight: weight.map { inner($0) }, eps: eps, roundToBF16: roundToBF16,
                      out: inner(out))
    }

    public func rmsNormLinear(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, normed: TensorRef,
                              _ first: NormedProduct, _ second: NormedProduct?) {
        var regions = [Region(x, count: rows * width, "x"), Region(normed, count: rows * width, "normed", written: true)]
        if let w = weight { regions.append(Region(w, count: width, "weight")) }
        var products: [NormedProduct] = []
        for (i, p) in [first, second].enumerated() {
            guard let p else { continue }
            guard let l = p.linear as? CountedLinear, l.owner == ObjectIdentifier(self) else {
                _ = violation("CountingBackend.rmsNormLinear: a \(type(of: p.linear)) prepared by another backend"); return
            }
            guard l.inFeatures == width else {
                _ = violation("CountingBackend.rmsNormLinear: product \(i) takes \(l.inFeatures) features, the norm gives \(width)"); return
            }
            regions.append(Region(p.y, rows: rows, stride: p.ldy, width: l.outFeatures, "y\(i)", written: true))
            products.append(NormedProduct(linear: l.inner, y: inner(p.y), ldy: p.ldy))
        }
        guard check("rmsNormLinear", regions, counts: rows, width) else { return }
        inner.rmsNormLinear(inner(x), rows: rows, width: width, weight: weight.map { inner($0) }, eps: eps, roundToBF16: roundToBF16,
                            normed: inner(normed), products[0], products.count > 1 ? products[1] : nil)
    }

    public func adaptiveModulate(_ x: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        guard check("adaptiveModulate", [Region(x, count: batch * tokens * width, "x", written: true),
                                         Region(modulation, count: batch * 3 * width, "modulation")],
                    counts: batch, tokens, width) else { return }
        inner.adaptiveModulate(inner(x), batch: batch, tokens: tokens, width: width, modulation: inner(modulation),
                               roundToBF16: roundToBF16)
    }

    public func gatedAdd(_ x: TensorRef, _ y: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        guard check("gatedAdd", [Region(x, count: batch * tokens * width, "x", written: true),
                                 Region(y, count: batch * tokens * width, "y"),
                                 Region(modulation, count: batch * 3 * width, "modulation")],
                    counts: batch, tokens, width) else { return }
        inner.gatedAdd(inner(x), inner(y), batch: batch, tokens: tokens, width: width, modulation: inner(modulation),
                       roundToBF16: roundToBF16)
    }

    // MARK: Elementwise

    public func geluTanh(_ x: TensorRef, count: Int) {
        guard check("geluTanh", [Region(x, count: count, "x", written: true)], counts: count) else { return }
        inner.geluTanh(inner(x), count: count)
    }

    public func geluTanhMul(gate: TensorRef, up: TensorRef, rows: Int, width: Int, ldIn: Int, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        guard check("geluTanhMul", [Region(gate, rows: rows, stride: ldIn, width: width, "gate"),
                                    Region(up, rows: rows, stride: ldIn, width: width, "up"),
                                    Region(out, rows: rows, stride: ldOut, width: width, "out", written: true)],
                    counts: rows, width) else { return }
        inner.geluTanhMul(gate: inner(gate), up: inner(up), rows: rows, width: width, ldIn: ldIn, roundToBF16: roundToBF16,
                          out: inner(out), ldOut: ldOut)
    }

    public func silu(_ x: TensorRef, count: Int) {
        guard check("silu", [Region(x, count: count, "x", written: true)], counts: count) else { return }
        inner.silu(inner(x), count: count)
    }

    public func add(_ x: TensorRef, _ y: TensorRef, count: Int, roundToBF16: Bool) {
        guard check("add", [Region(x, count: count, "x", written: true), Region(y, count: count, "y")], counts: count) else { return }
        inner.add(inner(x), inner(y), count: count, roundToBF16: roundToBF16)
    }

    public func addPeriodic(_ x: TensorRef, _ y: TensorRef, count: Int, period: Int) {
        guard period > 0 || count == 0 else { _ = violation("CountingBackend.addPeriodic: period \(period)"); return }
        guard check("addPeriodic", [Region(x, count: count, "x", written: true), Region(y, count: min(period, count), "y")],
                    counts: count) else { return }
        inner.addPeriodic(inner(x), inner(y), count: count, period: period)
    }

    public func scale(_ x: TensorRef, count: Int, by scale: Float, roundToBF16: Bool) {
        guard check("scale", [Region(x, count: count, "x", written: true)], counts: count) else { return }
        inner.scale(inner(x), count: count, by: scale, roundToBF16: roundToBF16)
    }

    public func roundToBF16(_ x: TensorRef, rows: Int, width: Int, ld: Int) {
        guard check("roundToBF16", [Region(x, rows: rows, stride: ld, width: width, "x", written: true)], counts: rows, width)
        else { return }
        inner.roundToBF16(inner(x), rows: rows, width: width, ld: ld)
    }

    // MARK: Positions, gathers and copies

    public func applyRoPE(_ x: TensorRef, rows: Int, heads: Int, headDim: Int, stride: Int, cos: TensorRef, sin: TensorRef, roundToBF16: Bool) {
        guard check("applyRoPE", [Region(x, rows: rows, stride: stride, width: heads * headDim, "x", written: true),
                                  Region(cos, count: rows * headDim, "cos"), Region(sin, count: rows * headDim, "sin")],
                    counts: rows, heads, headDim) else { return }
        inner.applyRoPE(inner(x), rows: rows, heads: heads, headDim: headDim, stride: stride, cos: inner(cos), sin: inner(sin),
                        roundToBF16: roundToBF16)
    }

    public func copy(_ source: TensorRef, sourceStride: Int, to destination: TensorRef, destinationStride: Int, rows: Int, width: Int) {
        guard check("copy", [Region(source, rows: rows, stride: sourceStride, width: width, "source"),
                             Region(destination, rows: rows, stride: destinationStride, width: width, "destination", written: true)],
                    counts: rows, width) else { return }
        inner.copy(inner(source), sourceStride: sourceStride, to: inner(destination), destinationStride: destinationStride,
                   rows: rows, width: width)
    }

    public func embed(_ table: PreparedEmbedding, ids: TensorRef, count: Int, scale: Float, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        guard let e = table as? CountedEmbedding, e.owner == ObjectIdentifier(self) else {
            _ = violation("CountingBackend.embed: a \(type(of: table)) prepared by another backend"); return
        }
        guard check("embed", [Region(ids, count: count, "ids"),
                              Region(out, rows: count, stride: ldOut, width: e.width, "out", written: true)], counts: count)
        else { return }
        inner.embed(e.inner, ids: inner(ids), count: count, scale: scale, roundToBF16: roundToBF16, out: inner(out), ldOut: ldOut)
    }

    public func patchify(_ images: TensorRef, count: Int, side: Int, patch: Int, out: TensorRef) {
        guard patch > 0 && patch <= side else { _ = violation("CountingBackend.patchify: side \(side), patch \(patch)"); return }
        let g = side / patch
        guard check("patchify", [Region(images, count: count * 3 * side * side, "images"),
                                 Region(out, count: count * g * g * 3 * patch * patch, "out", written: true)], counts: count, side)
        else { return }
        inner.patchify(inner(images), count: count, side: side, patch: patch, out: inner(out))
    }

    // MARK: Flow matching

    public func timeEmbedding(t: Float, width: Int, minPeriod: Double, maxPeriod: Double, out: TensorRef) {
        guard check("timeEmbedding", [Region(out, count: width, "out", written: true)], counts: width) else { return }
        inner.timeEmbedding(t: t, width: width, minPeriod: minPeriod, maxPeriod: maxPeriod, out: inner(out))
    }

    public func eulerStep(_ x: TensorRef, velocity: TensorRef, count: Int, dt: Float) {
        guard check("eulerStep", [Region(x, count: count, "x", written: true), Region(velocity, count: count, "velocity")],
                    counts: count) else { return }
        inner.eulerStep(inner(x), velocity: inner(velocity), count: count, dt: dt)
    }

    public func guideVelocity(x: TensorRef, velocity: TensorRef, target: TensorRef, weights: TensorRef, rows: Int, width: Int,
                              t: Float, guidance: Float) {
        guard check("guideVelocity", [Region(x, count: rows * width, "x"),
                                      Region(velocity, count: rows * width, "velocity", written: true),
                                      Region(target, count: rows * width, "target"), Region(weights, count: rows, "weights")],
                    counts: rows, width) else { return }
        inner.guideVelocity(x: inner(x), velocity: inner(velocity), target: inner(target), weights: inner(weights), rows: rows,
                            width: width, t: t, guidance: guidance)
    }

    public func checkFinite(_ x: TensorRef, count: Int, status: TensorRef) {
        guard check("checkFinite", [Region(x, count: count, "x"), Region(status, count: 3, "status", written: true)], counts: count)
        else { return }
        inner.checkFinite(inner(x), count: count, status: inner(status))
    }
}
