// Batching across clients: requests that arrive while a batch runs form the next batch (up to the
// limit), each caller gets its own row's result, and a caller that leaves before its batch starts is
// dropped without delaying the others.
import Foundation
import XCTest
@testable import PI0Server

final class InferenceBatcherTests: XCTestCase {
    /// A run function that blocks the first batch until released, and records every batch.
    final class Gate: @unchecked Sendable {
        let release = DispatchSemaphore(value: 0)
        let firstStarted = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var batches: [[Int]] = []
        var seen: [[Int]] { lock.lock(); defer { lock.unlock() }; return batches }

        func run(_ jobs: [Int]) -> [Result<Int, Error>] {
            lock.lock(); batches.append(jobs); let first = batches.count == 1; lock.unlock()
            if first { firstStarted.signal(); release.wait() }
            return jobs.map { $0 < 0 ? .failure(CancellationError()) : .success($0 * 10) }
        }
    }

    func waitUntil(_ condition: () -> Bool, timeout: TimeInterval = 10) {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() && Date() < deadline { usleep(2000) }
    }

    func testRequestsArrivingWhileBusyRunAsOneBatchUpToTheLimit() async throws {
        let gate = Gate()
        let batcher = InferenceBatcher<Int, Int>(maxBatch: 4, maxWait: 0) { gate.run($0) }
        defer { batcher.stop() }
        let first = Task { try await batcher.submit(1) }
        gate.firstStarted.wait()
        let others = (2...7).map { i in Task { try await batcher.submit(i) } }
        waitUntil { batcher.queued == 6 }
        XCTAssertEqual(batcher.queued, 6)
        gate.release.signal()
        let firstValue = try await first.value
        XCTAssertEqual(firstValue, 10)
        var values: [Int] = []
        for t in others { values.append(try await t.value) }
        XCTAssertEqual(values, [20, 30, 40, 50, 60, 70], "each caller gets its own row")
        XCTAssertEqual(gate.seen.map(\.count), [1, 4, 2])
        XCTAssertEqual(Set(gate.seen.flatMap { $0 }), Set(1...7))
        XCTAssertEqual(batcher.recordedBatchSizes, [1, 4, 2])
    }

    func testACallerThatLeavesBeforeItsBatchIsDropped() async throws {
        let gate = Gate()
        let batcher = InferenceBatcher<Int, Int>(maxBatch: 8, maxWait: 0) { gate.run($0) }
        defer { batcher.stop() }
        let first = Task { try await batcher.submit(1) }
        gate.firstStarted.wait()
        let leaving = Task { try await batcher.submit(2) }
        let staying = Task { try await batcher.submit(3) }
        waitUntil { batcher.queued == 2 }
        leaving.cancel()
        waitUntil { batcher.queued == 1 }
        gate.release.signal()
        _ = try await first.value
        let stayed = try await staying.value
        XCTAssertEqual(stayed, 30)
        do { _ = try await leaving.value; XCTFail("a cancelled caller must not get a result") } catch is CancellationError {}
        XCTAssertEqual(gate.seen, [[1], [3]])
    }

    func testOneFailingRowFailsOnlyItsCaller() async throws {
        let batcher = InferenceBatcher<Int, Int>(maxBatch: 4, maxWait: 0.05) { jobs in
            jobs.map { $0 < 0 ? .failure(CancellationError()) : .success($0 + 1) }
        }
        defer { batcher.stop() }
        async let a = batcher.submit(1)
        async let b = batcher.submit(-1)
        let av = try await a
        XCTAssertEqual(av, 2)
        do { _ = try await b; XCTFail("expected the row's own error") } catch is CancellationError {}
    }
}
