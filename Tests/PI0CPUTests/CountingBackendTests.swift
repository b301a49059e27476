// The counting backend (Tests/PI0TestSupport/CountingBackend.swift) counts what it is asked to do,
// per phase; refuses foreign tensors, out-of-bounds references, allocation and transfers while frozen;
// and computes exactly what the backend it wraps computes (the op table checks every op; here the counts).
import XCTest
import PI0CPU
import PI0Tensor
import PI0TestSupport

final class CountingBackendTests: XCTestCase {
    func testCountsTransfersOpsAndPhases() throws {
        let b = CountingBackend(wrapping: CPUBackend(threads: 1))
        b.recordsEvents = true
        let x = DeviceTensor(shape: [3, 5], uploading: (0..<15).map(Float.init), backend: b)
        let y = DeviceTensor(shape: [3, 5], backend: b)
        XCTAssertTrue(x.storage is ArenaStorage && !(x.storage is HostStorage), "tensors live in the arena only")
        b.mark("compute")
        b.copy(x.ref, sourceStride: 5, to: y.ref, destinationStride: 5, rows: 3, width: 5)
        b.add(y.ref, x.ref, count: 15, roundToBF16: false)
        b.add(y.ref, x.ref, count: 15, roundToBF16: false)
        b.mark("read back")
        b.synchronize()
        let values = b.download(y.ref, count: 15)
        XCTAssertEqual(values, (0..<15).map { Float(3 * $0) })

        let total = b.snapshot()
        XCTAssertEqual(total.allocations, 2)
        XCTAssertEqual(total.allocatedFloats, 30)
        XCTAssertEqual(total.uploads, 1)
        XCTAssertEqual(total.uploadedFloats, 15)
        XCTAssertEqual(total.downloads, 1)
        XCTAssertEqual(total.downloadedFloats, 15)
        XCTAssertEqual(total.synchronizations, 1)
        XCTAssertEqual(total.ops, ["copy": 1, "add": 2])
        let phases = b.phases()
        XCTAssertEqual(phases.map(\.name), ["compute", "read back"])
        XCTAssertEqual(phases[0].counters.ops, ["copy": 1, "add": 2])
        XCTAssertEqual(phases[0].counters.transfers + phases[0].counters.synchronizations + phases[0].counters.allocations, 0)
        XCTAssertEqual(phases[1].counters.opCount, 0)
        XCTAssertEqual(phases[1].counters.downloads, 1)
        XCTAssertEqual(phases[1].counters.synchronizations, 1)
        XCTAssertEqual(b.events, [.allocate(floats: 15), .upload(floats: 15), .allocate(floats: 15), .op("copy"), .op("add"),
                                  .op("add"), .synchronize, .download(floats: 15)])

        let delta = b.measure { b.scale(y.ref, count: 15, by: 2, roundToBF16: false) }
        XCTAssertEqual(delta.ops, ["scale": 1])
        XCTAssertEqual(delta.transfers, 0)
        b.resetCounters()
        XCTAssertEqual(b.snapshot(), BackendCounters())
        XCTAssertTrue(b.phases().isEmpty && b.events.isEmpty)
    }

    func testRefusesWhatBreaksTheRules() throws {
        let b = CountingBackend(wrapping: ReferenceBackend())
        b.violationPolicy = .record
        let x = DeviceTensor(shape: [2, 4], uploading: [Float](repeating: 1, count: 8), backend: b)
        let small = DeviceTensor(shape: [2, 3], backend: b)
        let w = try b.prepareLinear(WeightTensor(name: "w", shape: [3, 4], floats: [Float](repeating: 1, count: 12)), bias: nil)

        // One row too many for y, an ldy that overlaps rows, an offset past the end.
        b.linear(w, x: x.ref, rows: 2, ldx: 4, y: small + 1, ldy: 3)
        b.linear(w, x: x.ref, rows: 2, ldx: 4, y: small.ref, ldy: 2)
        b.add(x + 5, x.ref, count: 4, roundToBF16: false)
        // A tensor and a weight of another backend.
        let host = ReferenceBackend()
        b.geluTanh(TensorRef(storage: host.allocate(count: 8)), count: 8)
        b.linear(try host.prepareLinear(WeightTensor(name: "w", shape: [3, 4], floats: [Float](repeating: 1, count: 12)), bias: nil),
                 x: x.ref, rows: 2, ldx: 4, y: small.ref, ldy: 3)
        // Attention reading one key past k's storage.
        let kv = DeviceTensor(shape: [3, 4], backend: b)
        b.attention(AttentionCall(q: x.ref, qStride: 4, k: kv.ref, kStride: 4, v: kv.ref, vStride: 4, mask: nil, maskStride: 0,
                                  out: x.ref, outStride: 4, queries: 2, keys: 4, heads: 1, kvHeads: 1, headDim: 4, scale: 1,
                                  roundToBF16: false))
        // A negative source stride.
        b.copy(x + 4, sourceStride: -4, to: small.ref, destinationStride: 3, rows: 2, width: 3)
        let v = b.violations
        XCTAssertEqual(v.count, 7, "\(v)")
        XCTAssertTrue(v[0].contains("linear") && v[0].contains("y touches [1, 7)"), v[0])
        XCTAssertTrue(v[1].contains("linear") && v[1].contains("stride 2 < width 3"), v[1])
        XCTAssertTrue(v[2].contains("add") && v[2].contains("x touches [5, 9)"), v[2])
        XCTAssertTrue(v[3].contains("geluTanh") && v[3].contains("HostStorage"), v[3])
        XCTAssertTrue(v[4].contains("linear") && v[4].contains("another backend"), v[4])
        XCTAssertTrue(v[5].contains("attention") && v[5].contains("k touches [0, 16)"), v[5])
        XCTAssertTrue(v[6].contains("copy") && v[6].contains("source negative stride -4"), v[6])
        XCTAssertEqual(b.download(small.ref, count: 6), [0, 0, 0, 0, 0, 0], "a refused op does not run")
        XCTAssertEqual(b.snapshot().ops, [:], "refused ops are not counted")

        b.allocationsFrozen = true
        _ = b.allocate(count: 4)
        b.allocationsFrozen = false
        _ = b.allocate(count: 4)
        b.transfersFrozen = true
        b.upload([7], to: x.ref)
        XCTAssertTrue(b.download(x.ref, count: 1)[0].isNaN, "a refused download delivers NaN")
        b.synchronize()
        b.transfersFrozen = false
        XCTAssertEqual(b.violations.count, 11, "\(b.violations)")
        XCTAssertTrue(b.violations[7].contains("allocate(4) while allocations are frozen"), b.violations[7])
        XCTAssertTrue(b.violations[8...].allSatisfy { $0.contains("while transfers are frozen") }, "\(b.violations[8...])")
        XCTAssertEqual(b.download(x.ref, count: 1), [1], "the frozen upload did not happen")
    }

    /// Results are the wrapped backend's bits (the op table checks every op; this is the product path end to end).
    func testComputesWhatTheWrappedBackendComputes() throws {
        var rng = SplitMix64(seed: 3)
        let (m, k, n) = (7, 129, 33)
        let w = WeightTensor(name: "w", shape: [n, k], floats: rng.floats(n * k), dtype: .bfloat16)
        let xs = rng.floats(m * k)
        var results: [[Float]] = []
        for backend: ComputeBackend in [CPUBackend(threads: 2), CountingBackend(wrapping: CPUBackend(threads: 2))] {
            let p = try backend.prepareLinear(w, bias: nil)
            let x = DeviceTensor(shape: [m, k], uploading: xs, backend: backend), y = DeviceTensor(shape: [m, n], backend: backend)
            backend.linear(p, x: x.ref, rows: m, ldx: k, y: y.ref, ldy: n)
            backend.geluTanh(y.ref, count: m * n)
            results.append(backend.download(y.ref, count: m * n))
        }
        XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern))
    }
}
