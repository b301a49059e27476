// The op-conformance table (Tests/PI0TestSupport/OpConformanceTable.swift; docs/ARCHITECTURE.md, "Backends
// and their conformance"): every `ComputeBackend` requirement, exercised on seeded random odd shapes,
// strided rows and both precisions, on every host backend, against the reference backend. A backend that runs `ReferenceOps` for an op
// must be bit-identical; otherwise each op states its float32 bound and why. `testTableCoversTheProtocol`
// reads the protocol from Sources/PI0Tensor/Backend.swift, so a new requirement without a row fails.
// Reproduce a failure with PI0_CONFORMANCE_SEED=<seed printed in the message>.
import Foundation
import XCTest
import PI0CPU
import PI0Tensor
import PI0TestSupport

final class BackendConformanceTests: XCTestCase {
    /// Ops `CPUBackend` runs through `ReferenceOps` (the operations `CPUBackend` does not override in Sources/PI0CPU/CPUBackend.swift: `HostBackend` runs them).
    static let cpuReferenceCode: Set<String> = [
        "addPeriodic", "scale", "copy", "embed", "patchify",
        "timeEmbedding", "eulerStep", "guideVelocity", "checkFinite",
    ]

    /// Every host backend. A device backend runs the same table from its own test target
    /// (`OpConformance.problems` with a `BackendUnderTest` whose `make` returns nil without a device).
    static let backendsUnderTest: [BackendUnderTest] = [
        BackendUnderTest(name: "cpu 1 thread", make: { CPUBackend(threads: 1) }, referenceCodeOps: cpuReferenceCode),
        BackendUnderTest(name: "cpu 2 threads", make: { CPUBackend(threads: 2) }, referenceCodeOps: cpuReferenceCode,
                         bitIdenticalTo: "cpu 1 thread"),
        BackendUnderTest(name: "counting (cpu 2 threads)", make: { CountingBackend(wrapping: CPUBackend(threads: 2)) },
                         referenceCodeOps: cpuReferenceCode, bitIdenticalTo: "cpu 2 threads"),
        BackendUnderTest(name: "counting (reference)", make: { CountingBackend(wrapping: ReferenceBackend()) },
                         referenceCodeOps: Set(OpTable.cases.map(\.op))),
        BackendUnderTest(name: "profiling (cpu 2 threads)", make: { ProfilingBackend(wrapping: CPUBackend(threads: 2)) },
                         referenceCodeOps: cpuReferenceCode, bitIdenticalTo: "cpu 2 threads"),
    ]

    func testCPUOneThread() throws { XCTAssertEqual(try problems(Self.backendsUnderTest[0]), []) }
    func testCPUTwoThreads() throws { XCTAssertEqual(try problems(Self.backendsUnderTest[1]), []) }
    func testCountingBackendOverCPU() throws { XCTAssertEqual(try problems(Self.backendsUnderTest[2]), []) }
    func testCountingBackendOverReference() throws { XCTAssertEqual(try problems(Self.backendsUnderTest[3]), []) }

    /// The profiling backend forwards every operation unchanged and times each one under its name (linear
    /// and attention under their shapes); weight preparation is load time and not listed.
    func testProfilingBackend() throws {
        let profiler = ProfilingBackend(wrapping: CPUBackend(threads: 2))
        XCTAssertEqual(try problems(Self.backendsUnderTest[4], using: profiler), [])
        let keys = Set(profiler.snapshot().map { String($0.op.split(separator: " ")[0]) })
        let ops = Set(OpTable.cases.flatMap { [$0.op] + $0.covers }).subtracting(["prepareLinear", "prepareEmbedding"])
        XCTAssertEqual(keys, ops)
        XCTAssertTrue(profiler.snapshot().allSatisfy { $0.entry.calls > 0 && $0.entry.seconds >= 0 })
        let linear = try XCTUnwrap(profiler.snapshot().first { $0.op.hasPrefix("linear ") })
        let shape = linear.op.dropFirst(7).split { "×→".contains($0) }.map { Double($0)! }
        XCTAssertEqual(linear.entry.flops, Double(linear.entry.calls) * 2 * shape[0] * shape[1] * shape[2], linear.op)
        profiler.reset()
        XCTAssertTrue(profiler.snapshot().isEmpty)
    }

    /// The table can fail: the cpu backend's own kernels (blocked sums, vectorised tanh and exp) are not
    /// bit-identical to the reference everywhere, so claiming every op is reference code must fail, and
    /// only on ops that are not.
    func testTheTableCatchesAWrongClaim() throws {
        let claim = BackendUnderTest(name: "cpu claiming reference code", make: { CPUBackend(threads: 2) },
                                     referenceCodeOps: Set(OpTable.cases.map(\.op)))
        let failing = Set(try problems(claim).map { String($0.split(separator: ",")[1].split(separator: " ")[0]) })
        XCTAssertFalse(failing.isEmpty)
        XCTAssertTrue(failing.isDisjoint(with: Self.cpuReferenceCode), "\(failing)")
    }

    func problems(_ subject: BackendUnderTest, using instance: ComputeBackend? = nil) throws -> [String] {
        try OpConformance.problems(subject, using: instance, others: Self.backendsUnderTest)
    }

    /// The table has a row (or a `covers` entry) for every requirement of `ComputeBackend`, and nothing
    /// else: the protocol is read from its source file, so adding a requirement without a row fails here.
    func testTableCoversTheProtocol() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/PI0Tensor/Backend.swift")
        guard FileManager.default.fileExists(atPath: source.path) else {
            throw XCTSkip("repository sources not found at \(source.path) (tests run from a relocated build)")
        }
        let text = try String(contentsOf: source, encoding: .utf8)
        let start = try XCTUnwrap(text.range(of: "public protocol ComputeBackend"), "ComputeBackend in \(source.path)")
        let end = try XCTUnwrap(text.range(of: "\n}\n", range: start.upperBound..<text.endIndex))
        let body = text[start.upperBound..<end.lowerBound]
        let required = Set(body.split(separator: "\n").compactMap { line -> String? in
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("func ") else { return nil }
            return String(t.dropFirst(5).prefix { $0.isLetter || $0.isNumber })
        })
        XCTAssertGreaterThan(required.count, 20, "parsed \(required.sorted()) from \(source.path)")
        let rows = OpTable.cases.map(\.op)
        XCTAssertEqual(rows.count, Set(rows).count, "one row per op")
        let covered = Set(rows + OpTable.cases.flatMap(\.covers))
        XCTAssertEqual(required.subtracting(covered).sorted(), [], "requirements without a row in OpTable.cases")
        XCTAssertEqual(covered.subtracting(required).sorted(), [], "rows for names that are not requirements")
    }

    /// The comparison itself: exactness down to NaN payloads, ulps, rel-L2, and writes outside the rows.
    func testCompareCatchesEachKindOfDifference() {
        let want: [Float] = [1, 2, OpRun.untouched, -3]
        XCTAssertNil(compareOutputs(want, want, .exact))
        XCTAssertNotNil(compareOutputs([1, 2, OpRun.untouched, -3.0000002], want, .exact))
        XCTAssertNil(compareOutputs([1, 2, OpRun.untouched, -3.0000002], want, .ulps(1)))
        XCTAssertNotNil(compareOutputs([1, 2, OpRun.untouched, -3.0000005], want, .ulps(1)))
        XCTAssertNotNil(compareOutputs([1, 2, 0, -3], want, .relL2(1)), "a write between rows")
        XCTAssertNil(compareOutputs([1, 2, OpRun.untouched, -3.00001], want, .relL2(1e-5)))
        XCTAssertNotNil(compareOutputs([1, 2, OpRun.untouched, -3.0001], want, .relL2(1e-5)))
        XCTAssertNotNil(compareOutputs([1, 2, OpRun.untouched, .nan], want, .relL2(1)), "a NaN where a number belongs")
        XCTAssertNil(compareOutputs([.nan], [.nan], .relL2(0)))
        XCTAssertNotNil(compareOutputs([Float(bitPattern: 0x7FC0_0001)], [.nan], .exact), "NaN payloads differ")
        XCTAssertNotNil(compareOutputs([1, 2], want, .relL2(1)), "length")
    }
}
