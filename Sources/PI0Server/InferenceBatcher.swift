// Batching across clients: requests that arrive while the model is busy run together as one batch,
// up to `maxBatch` rows; an idle model waits at most `maxWait` for company before it starts (0: never,
// so a lone client is not slowed down). One dedicated thread runs the model; callers suspend on a
// continuation. A caller that goes away (its task is cancelled) before its batch starts leaves the
// queue; once started, its row is computed and discarded, so it delays the others by at most that batch.
import Foundation

final class InferenceBatcher<Job: Sendable, Result: Sendable>: @unchecked Sendable {
    typealias Run = @Sendable ([Job]) -> [Swift.Result<Result, Error>]

    private struct Waiter {
        let id: UInt64
        let job: Job
        let continuation: CheckedContinuation<Result, Error>
    }

    let maxBatch: Int
    let maxWait: TimeInterval
    private let run: Run
    private let condition = NSCondition()
    private var waiters: [Waiter] = []
    private var nextID: UInt64 = 0
    private var stopped = false
    /// Sizes of the batches run so far (for logs, benchmarks and tests).
    private var batchSizes: [Int] = []

    init(maxBatch: Int, maxWait: TimeInterval, run: @escaping Run) {
        precondition(maxBatch >= 1 && maxWait >= 0)
        self.maxBatch = maxBatch; self.maxWait = maxWait; self.run = run
        let thread = Thread { [weak self] in self?.loop() }
        thread.name = "pi0.batcher"
        thread.start()
    }

    func submit(_ job: Job) async throws -> Result {
        let id = newID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Result, Error>) in
                enqueue(Waiter(id: id, job: job, continuation: c))
            }
        } onCancel: {
            remove(id)?.continuation.resume(throwing: CancellationError())
        }
    }

    private func newID() -> UInt64 {
        condition.lock(); defer { condition.unlock() }
        nextID += 1
        return nextID
    }

    private func enqueue(_ w: Waiter) {
        condition.lock()
        if stopped || Task.isCancelled {
            condition.unlock()
            w.continuation.resume(throwing: CancellationError())
            return
        }
        waiters.append(w)
        condition.signal()
        condition.unlock()
    }

    private func remove(_ id: UInt64) -> Waiter? {
        condition.lock(); defer { condition.unlock() }
        return waiters.firstIndex { $0.id == id }.map { waiters.remove(at: $0) }
    }

    /// Fails every waiting request and ends the thread after the batch in progress.
    func stop() {
        condition.lock()
        stopped = true
        let pending = waiters
        waiters.removeAll()
        condition.broadcast()
        condition.unlock()
        pending.forEach { $0.continuation.resume(throwing: CancellationError()) }
    }

    /// Requests waiting for a batch.
    var queued: Int {
        condition.lock(); defer { condition.unlock() }
        return waiters.count
    }

    var recordedBatchSizes: [Int] {
        condition.lock(); defer { condition.unlock() }
        return batchSizes
    }

    private func loop() {
        while true {
            condition.lock()
            while waiters.isEmpty && !stopped { condition.wait() }
            if stopped { condition.unlock(); return }
            if maxWait > 0 {
                let deadline = Date().addingTimeInterval(maxWait)
                while waiters.count < maxBatch && !stopped && condition.wait(until: deadline) {}
            }
            let batch = Array(waiters.prefix(maxBatch))
            waiters.removeFirst(batch.count)
            if !batch.isEmpty { batchSizes.append(batch.count) }
            condition.unlock()
            if batch.isEmpty { continue }
            let results = run(batch.map(\.job))
            for (w, r) in zip(batch, results) { w.continuation.resume(with: r) }
        }
    }
}
