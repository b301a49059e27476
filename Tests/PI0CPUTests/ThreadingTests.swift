// The kernels' fork-join pool (pi0k_parallel_run via Threading.run): every task runs exactly once per
// region, across many regions in a row (workers spinning between them), nested regions (run inline),
// and regions started from several threads at once (one uses the pool, the others run inline).
import Dispatch
import XCTest
@testable import PI0CPU

final class ThreadingTests: XCTestCase {
    /// Task i adds i + 1 to counts[i] (each task owns its slot, so no atomics are needed).
    struct Job {
        let counts: UnsafeMutablePointer<Int>
        let nested: Bool
    }

    static func region(tasks: Int, counts: UnsafeMutablePointer<Int>, nested: Bool = false) {
        var job = Job(counts: counts, nested: nested)
        Threading.run(tasks: tasks, job: &job) { ctx, i in
            let j = ctx!.assumingMemoryBound(to: Job.self).pointee
            j.counts[i] += i + 1
            if j.nested { // a region inside a task: runs inline on this thread, same results
                var inner = Job(counts: j.counts + 64 + 4 * i, nested: false)
                Threading.run(tasks: 4, job: &inner) { ctx, k in ctx!.assumingMemoryBound(to: Job.self).pointee.counts[k] += 1 }
            }
        }
    }

    func testEveryTaskRunsOncePerRegion() {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        defer { counts.deallocate() }
        for tasks in [2, 3, 5, 16] {
            counts.initialize(repeating: 0, count: 16)
            for _ in 0..<2000 { Self.region(tasks: tasks, counts: counts) }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: counts, count: tasks)), (0..<tasks).map { 2000 * ($0 + 1) }, "\(tasks) tasks")
            XCTAssertEqual(Array(UnsafeBufferPointer(start: counts + tasks, count: 16 - tasks)), [Int](repeating: 0, count: 16 - tasks))
        }
    }

    func testNestedRegionsRunInline() {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 64 + 4 * 8)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: 64 + 4 * 8)
        for _ in 0..<200 { Self.region(tasks: 8, counts: counts, nested: true) }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: counts, count: 8)), (0..<8).map { 200 * ($0 + 1) })
        XCTAssertEqual(Array(UnsafeBufferPointer(start: counts + 64, count: 32)), [Int](repeating: 200, count: 32))
    }

    func testRegionsFromSeveralThreadsAtOnce() {
        let callers = 4, tasks = 3, rounds = 500
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: callers * tasks)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: callers * tasks)
        let base = SendablePointer(counts)
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            for _ in 0..<rounds { Self.region(tasks: tasks, counts: base.value + c * tasks) }
        }
        for c in 0..<callers {
            XCTAssertEqual(Array(UnsafeBufferPointer(start: counts + c * tasks, count: tasks)), (0..<tasks).map { rounds * ($0 + 1) }, "caller \(c)")
        }
    }

    func testClosureRunCoversEveryIndex() {
        let flags = UnsafeMutablePointer<Int>.allocate(capacity: 7)
        defer { flags.deallocate() }
        flags.initialize(repeating: 0, count: 7)
        let p = SendablePointer(flags)
        Threading.run(tasks: 7) { p.value[$0] += 1 }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: flags, count: 7)), [Int](repeating: 1, count: 7))
    }
}
