// A fair FIFO gate in front of the policy: at most `limit` inferences run at once, waiting requests
// are served in arrival order across all connections. Each connection has at most one request here
// at a time (it waits for its answer before submitting the next), so FIFO order is also round-robin
// between clients. A waiter whose task is cancelled (its client went away) leaves the queue at once
// and never runs. (Upstream openpi runs inference inline on its event loop, so one slow request
// stalls every client; see docs/PROTOCOL.md.)

actor InferenceQueue {
    private let limit: Int
    private var running = 0
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, Error>)] = []
    private var nextID: UInt64 = 0

    init(limit: Int) {
        precondition(limit >= 1)
        self.limit = limit
    }

    /// Requests waiting for a slot (for logs and tests).
    var waiting: Int { waiters.count }

    /// Runs `body` once a slot is free. Throws CancellationError if the task is cancelled while
    /// waiting; a body that already started runs to its end (its result is then discarded by the caller).
    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await acquire()
        // Cancelled after being handed the slot: pass it on instead of running a dead request.
        if Task.isCancelled {
            release()
            throw CancellationError()
        }
        do {
            let value = try await body()
            release()
            return value
        } catch {
            release()
            throw error
        }
    }

    private func acquire() async throws {
        if running < limit && waiters.isEmpty {
            running += 1
            return
        }
        nextID += 1
        let id = nextID
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                if Task.isCancelled {
                    c.resume(throwing: CancellationError())
                } else {
                    waiters.append((id, c))
                }
            }
        } onCancel: {
            // Runs on the cancelling thread; hop onto the actor. If the waiter was already resumed
            // by `release`, `cancel` finds nothing and the request simply runs.
            Task { await self.cancel(id) }
        }
    }

    /// Hands the slot straight to the oldest waiter, or frees it.
    private func release() {
        if waiters.isEmpty {
            running -= 1
        } else {
            waiters.removeFirst().continuation.resume()
        }
    }

    private func cancel(_ id: UInt64) {
        if let i = waiters.firstIndex(where: { $0.id == id }) {
            waiters.remove(at: i).continuation.resume(throwing: CancellationError())
        }
    }
}
