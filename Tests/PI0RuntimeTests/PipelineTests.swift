// `SamplingEngine.submit` / `collect` on host backends: the pipelined results are bit-identical to
// `sampleActions` (cpu backend; a capturing recorder; a host backend with a deferred transfer queue, so a
// replay that did not wait for its uploads would read stale inputs), the second plan of a shape is made
// only when two observations overlap, and misuse of tickets is a typed error.
import Foundation
import XCTest
import PI0
import PI0CPU
@testable import PI0Runtime
import PI0Tensor
import PI0TestSupport

/// A host backend with a transfer queue that runs its copies only when something waits for them: the
/// compute queue (`wait(.compute, …)`) or the host (`hostWait`). Compute work runs at once.
final class DeferredTransferBackend: HostBackend, AsyncTransfers, @unchecked Sendable {
    final class Pinned: PinnedHostBuffer, @unchecked Sendable {
        let count: Int
        let floats: UnsafeMutableBufferPointer<Float>
        init(count: Int) {
            self.count = count
            floats = .allocate(capacity: max(count, 1)); floats.initialize(repeating: 0)
        }
        deinit { floats.deallocate() }
    }
    final class Event: QueueEvent, @unchecked Sendable {
        /// Transfers issued before the record on the transfer queue (nil: recorded on compute, reached).
        var transfersBefore: Int?
    }
    private var queue: [() -> Void] = []
    private var issued = 0, ran = 0
    private(set) var log: [String] = []

    override var name: String { "host with a deferred transfer queue" }

    func allocatePinned(count: Int) -> PinnedHostBuffer { Pinned(count: count) }
    func makeEvent() -> QueueEvent { Event() }
    func uploadAsync(_ source: PinnedHostBuffer, offset: Int, count: Int, to destination: TensorRef) {
        issued += 1
        queue.append { destination.hostPointer.update(from: source.floats.baseAddress! + offset, count: count) }
        log.append("uploadAsync")
    }
    func downloadAsync(_ source: TensorRef, count: Int, into destination: PinnedHostBuffer, offset: Int) {
        (destination.floats.baseAddress! + offset).update(from: source.hostPointer, count: count)
        log.append("downloadAsync")
    }
    func record(_ event: QueueEvent, on queue: BackendQueue) {
        (event as! Event).transfersBefore = queue == .transfer ? issued : nil
        log.append("record \(queue.rawValue)")
    }
    func wait(_ queue: BackendQueue, for event: QueueEvent) {
        if queue == .compute { run(upTo: (event as! Event).transfersBefore) }
        log.append("wait \(queue.rawValue)")
    }
    func hostWait(_ event: QueueEvent) { run(upTo: (event as! Event).transfersBefore); log.append("hostWait") }
    private func run(upTo n: Int?) {
        guard let n else { return }
        while ran < n { queue.removeFirst()(); ran += 1 }
    }
}

extension SamplingEngineTests {
    /// submit 0, submit 1, collect 0, submit 2, collect 1, …: two observations always in flight.
    func pipelined(_ engine: SamplingEngine, _ xs: [PI0Inputs], steps: Int) throws -> [[Float]] {
        var out: [[Float]] = []
        var tickets = [try engine.submit(xs[0], steps: steps, seed: 0)]
        for (i, x) in xs.enumerated().dropFirst() {
            tickets.append(try engine.submit(x, steps: steps, seed: UInt64(i)))
            out.append(try engine.collect(tickets.removeFirst()).array)
        }
        out.append(try engine.collect(tickets.removeFirst()).array)
        return out
    }

    func testPipelinedResultsAreBitIdenticalToSampleActionsOnHostBackends() throws {
        for kind in [ModelKind.pi0, .pi05] {
            dir = nil
            let reference = try tinyModel(kind, backend: CPUBackend(threads: 2))
            let xs = (0..<4).map { inputs(reference, seed: UInt64(500 + $0), valid: 5 + $0, maskCamera: $0 == 2, rtc: $0 == 3) }
            let want = try xs.enumerated().map { try reference.sampleActions($1, steps: 3, seed: UInt64($0)).array.map(\.bitPattern) }

            let cpu = try SamplingEngine(model: try tinyModel(kind, backend: CPUBackend(threads: 2)))
            XCTAssertTrue(try pipelined(cpu, xs, steps: 3).map { $0.map(\.bitPattern) } == want, "\(kind): cpu backend")
            XCTAssertEqual(cpu.inFlightCount, 0)

            let recorder = RecordingBackend(wrapping: CPUBackend(threads: 2))
            let full = try SamplingEngine(model: try tinyModel(kind, backend: recorder), mode: .full)
            let same = [xs[0], xs[0], xs[0], xs[0]]   // one shape: warm-up, then a capture per plan, then replays
            let wantSame = try (0..<4).map { try reference.sampleActions(same[$0], steps: 3, seed: UInt64($0)).array.map(\.bitPattern) }
            XCTAssertTrue(try pipelined(full, same, steps: 3).map { $0.map(\.bitPattern) } == wantSame, "\(kind): captured")
            XCTAssertEqual(full.plans, 2, "\(kind): two plans of the shape while two observations overlap")
            XCTAssertEqual(recorder.captures, 2, "\(kind): one graph per plan (the first call warms up eagerly)")
            XCTAssertEqual(recorder.replays, 3)
        }
    }

    func testPipelinedUploadsWaitForTheirTransferQueue() throws {
        let reference = try tinyModel(.pi0, backend: ReferenceBackend())
        let xs = (0..<3).map { inputs(reference, seed: UInt64(600 + $0), valid: 8, maskCamera: false) }
        let want = try xs.enumerated().map { try reference.sampleActions($1, steps: 2, seed: UInt64($0)).array.map(\.bitPattern) }
        let backend = DeferredTransferBackend()
        let engine = try SamplingEngine(model: try tinyModel(.pi0, backend: backend))
        XCTAssertTrue(try pipelined(engine, xs, steps: 2).map { $0.map(\.bitPattern) } == want, "pipelined vs sampleActions")
        XCTAssertEqual(engine.plans, 2)
        // Per observation: the copy queue waits for the plan's last use, the uploads, record; compute waits,
        // then (the sample) one asynchronous download and its record.
        let calls = backend.log.filter { $0 != "uploadAsync" }
        XCTAssertEqual(calls.filter { $0 == "downloadAsync" }.count, 3)
        XCTAssertEqual(calls.filter { $0 == "hostWait" }.count, 3, "one host wait per collect")
        XCTAssertEqual(Array(calls.prefix(7)), ["record compute",   // the new plan's buffers are ready
                                                "wait transfer", "record transfer", "wait compute", "downloadAsync", "record compute",
                                                "record compute"], "\(calls)")
        XCTAssertGreaterThan(backend.log.filter { $0 == "uploadAsync" }.count, 3 * 5)
    }

    func testTicketsAreCollectedOnceInOrder() throws {
        let recorder = RecordingBackend(wrapping: CPUBackend(threads: 1))
        let model = try tinyModel(.pi0, backend: recorder)
        let engine = try SamplingEngine(model: model, mode: .full)
        let x = inputs(model, seed: 700, valid: 6, maskCamera: false)
        let t1 = try engine.submit(x, steps: 2), t2 = try engine.submit(x, steps: 2)
        XCTAssertThrowsError(try engine.submit(x, steps: 2)) { XCTAssertEqual($0 as? PipelineError, .full(depth: 2)) }
        XCTAssertThrowsError(try engine.sampleActions(x, steps: 2)) { XCTAssertEqual($0 as? PipelineError, .busy(inFlight: 2)) }
        XCTAssertThrowsError(try engine.collect(t2)) { e in
            XCTAssertEqual(e as? PipelineError, .outOfOrder(ticket: 2, expected: 1))
            XCTAssertTrue("\(e)".contains("collect ticket 1 first"), "\(e)")
        }
        let a1 = try engine.collect(t1)
        XCTAssertThrowsError(try engine.collect(t1)) { XCTAssertEqual($0 as? PipelineError, .alreadyCollected(ticket: 1)) }
        let a2 = try engine.collect(t2)
        XCTAssertEqual(a1.array.map(\.bitPattern), a2.array.map(\.bitPattern), "same observation, same seed")
        let other = try SamplingEngine(model: model, mode: .full)
        let foreign = try other.submit(x, steps: 2)
        XCTAssertThrowsError(try engine.collect(foreign)) { XCTAssertEqual($0 as? PipelineError, .unknownTicket(ticket: 1)) }
        XCTAssertEqual(try other.collect(foreign).array.map(\.bitPattern), a1.array.map(\.bitPattern))
        // Invalid inputs are refused before anything is issued or a ticket taken.
        var bad = x; bad.state = []
        XCTAssertThrowsError(try engine.submit(bad, steps: 2))
        XCTAssertEqual(engine.inFlightCount, 0)
        XCTAssertEqual(try engine.sampleActions(x, steps: 2).array.map(\.bitPattern), a1.array.map(\.bitPattern))
    }
}
