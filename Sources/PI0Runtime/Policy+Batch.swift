// Several observations as one model batch (batched serving, docs/SERVER.md): each row is preprocessed
// on its own, with its own noise seed and its own real-time chunking request, so every row equals what
// `predictActionChunk` returns for it alone (the kernels compute each row's products in the same order
// whatever the batch; what can differ is a softmax sum over a few more exactly-zero terms where another
// row keeps a position this row pads, far below 1e-6 relative).
import Foundation
import PI0
import PI0Tensor

extension PI0Policy {
    /// One observation of a batch, already checked and preprocessed.
    public struct PreparedObservation: Sendable {
        let inputs: PI0Inputs
        let rtc: RTCRequest.Row?
    }

    /// Preprocesses and checks one observation (throws what `predictActionChunk` would throw for it),
    /// so that a bad observation never joins, and never fails, a batch.
    public func prepare(_ obs: Observation) throws -> PreparedObservation {
        PreparedObservation(inputs: try preprocess(obs), rtc: try obs.previousChunk.map(rtcRow))
    }

    /// Runs prepared observations as one batch; seeds[i] is row i's noise seed (as `predictActionChunk`'s
    /// `seed`). Returns one chunk per row.
    public func predictActionChunks(_ rows: [PreparedObservation], seeds: [UInt64], steps: Int? = nil,
                                    timings: StageTimings? = nil, width: Int? = nil) throws -> [ActionChunk] {
        precondition(rows.count == seeds.count && !rows.isEmpty)
        let c = checkpoint.config, perRow = c.chunkSize * c.maxActionDim
        var inputs = rows[0].inputs
        inputs.batch = rows.count
        inputs.images = (0..<inputs.images.count).map { cam in rows.flatMap { $0.inputs.images[cam] } }
        inputs.imageMasks = (0..<inputs.imageMasks.count).map { cam in rows.flatMap { $0.inputs.imageMasks[cam] } }
        inputs.langTokens = rows.flatMap(\.inputs.langTokens)
        inputs.langMasks = rows.flatMap(\.inputs.langMasks)
        inputs.state = rows.flatMap(\.inputs.state)
        inputs.noise = seeds.flatMap { GaussianNoise.sample(count: perRow, seed: $0) }
        inputs.rtc = rows.contains { $0.rtc != nil } ? RTCRequest(rows: rows.map(\.rtc)) : nil
        let raw = try withModel { try $0.sampleActions(inputs, steps: steps, timings: timings) }.array
        return try (0..<rows.count).map { try postprocess(Array(raw[($0 * perRow)..<(($0 + 1) * perRow)]), width: width) }
    }
}
