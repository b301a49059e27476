// Batched inference (batched serving): every row of a batch equals the same observation run alone
// with the same seed — different prompts, a missing camera, a real-time chunking request or none.
import Foundation
import XCTest
import PI0
@testable import PI0Runtime
import SafeTensors

final class PolicyBatchTests: XCTestCase {
    var dir: String { Bundle.module.resourcePath! + "/Fixtures/end_to_end" }

    func testEveryRowEqualsItsOwnRunAlone() throws {
        let io = try SafeTensorsFile(path: dir + "/io.safetensors")
        let policy = try PI0Policy(checkpoint: dir, backend: try Backends.cpu(threads: 2))
        let base = try PolicyEndToEndTests.observation(io)
        var shortPrompt = base
        shortPrompt.tokens = (Array(base.tokens!.ids.prefix(3)), [true, true, true])
        shortPrompt.state = base.state.map { $0 * 0.5 + 0.1 }
        var oneCamera = base
        oneCamera.images["top"] = nil
        var guided = base
        let previous = try policy.predictActionChunk(base, seed: 99)
        guided.previousChunk = PreviousChunk(actions: Array(previous.values[(5 * 14)...]), steps: 45, inferenceDelay: 3)
        let observations = [base, shortPrompt, oneCamera, guided]
        let seeds: [UInt64] = [1, 2, 3, 4]

        let batch = try policy.predictActionChunks(try observations.map(policy.prepare), seeds: seeds)
        XCTAssertEqual(batch.count, 4)
        var identical = 0
        for (i, obs) in observations.enumerated() {
            let alone = try policy.predictActionChunk(obs, seed: seeds[i])
            XCTAssertEqual(batch[i].horizon, 50); XCTAssertEqual(batch[i].actionDim, 14)
            let r = ParityResult(name: "row \(i)", actual: batch[i].values, expected: alone.values)
            XCTAssertLessThanOrEqual(r.relativeL2, 1e-6, "\(r)")
            if batch[i].values == alone.values { identical += 1 }
        }
        // Rows whose prefix has no positions that other rows keep are bit-identical.
        XCTAssertGreaterThanOrEqual(identical, 1)
        // A row's answer does not depend on its neighbours: the same row in another batch.
        let again = try policy.predictActionChunks(try [guided, base].map(policy.prepare), seeds: [4, 1])
        XCTAssertEqual(ParityResult(name: "guided", actual: again[0].values, expected: batch[3].values).relativeL2, 0, accuracy: 1e-6)
    }

    func testABadObservationFailsAloneBeforeJoiningABatch() throws {
        let io = try SafeTensorsFile(path: dir + "/io.safetensors")
        let policy = try PI0Policy(checkpoint: dir, backend: try Backends.cpu(threads: 2))
        var bad = try PolicyEndToEndTests.observation(io)
        bad.state[0] = .nan
        XCTAssertThrowsError(try policy.prepare(bad)) { XCTAssertEqual($0 as? PolicyError, .badState(reason: "non-finite value at index 0")) }
        bad = try PolicyEndToEndTests.observation(io)
        bad.previousChunk = PreviousChunk(actions: [1, 2, 3], steps: 1, inferenceDelay: 0)
        XCTAssertNoThrow(try policy.prepare(bad))      // 3 of 14 dims is a narrow chunk, allowed
        bad.previousChunk = PreviousChunk(actions: [Float](repeating: 0, count: 15), steps: 1, inferenceDelay: 0)
        XCTAssertThrowsError(try policy.prepare(bad))
    }
}
