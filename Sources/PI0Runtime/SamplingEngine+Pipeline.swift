// Pipelined sampling (docs/ARCHITECTURE.md, "Life of one observation"; docs/CUDA.md, "Streams"):
// `submit` issues one observation and returns a ticket at once; `collect` waits for that observation's
// actions. Up to `pipelineDepth` (2) observations are in flight, each in its own plan of the shape
// (double-buffered: the second plan is made the first time two observations of a shape overlap), so on a
// backend with a transfer queue (`AsyncTransfers`, CUDA's second stream) observation k+1 uploads while
// observation k computes:
//   transfer queue  wait(done[s]) · uploads of k+1 from pinned staging · record(uploaded[s])
//   compute queue   wait(uploaded[s]) · replay (or eager / capture) · async download · record(done[s])
//   collect         hostWait(done[s]) · read the pinned results · finite checks
// The copy into a plan waits until the work that last read it (its previous replay and download) is
// done; the replay waits until its copies are done. A plan is reused only after its ticket was
// collected, so its pinned staging is free by then (the host waited for `done`, which follows the
// replay, which waited for `uploaded`). On any other backend `submit` runs the sample in order and
// `collect` returns it. Results are bit-identical to `sampleActions` in every case: the same plan
// operations run on the same inputs; only the queue the uploads travel on changes.
import Foundation
import PI0
import PI0Tensor

/// One submitted observation, to be collected once, in submission order.
public struct SampleTicket: Hashable, Sendable, CustomStringConvertible {
    public let number: Int
    let engine: ObjectIdentifier
    public var description: String { "ticket \(number)" }
}

/// Misuse of `submit` / `collect` (typed, never a crash).
public enum PipelineError: Error, Equatable, CustomStringConvertible {
    /// `collect` of a ticket that was already collected.
    case alreadyCollected(ticket: Int)
    /// `collect` of a ticket while an earlier one is still in flight (tickets are collected in order).
    case outOfOrder(ticket: Int, expected: Int)
    /// A ticket this engine did not issue.
    case unknownTicket(ticket: Int)
    /// `submit` with `depth` observations already in flight.
    case full(depth: Int)
    /// `sampleActions` while submitted observations are in flight.
    case busy(inFlight: Int)

    public var description: String {
        switch self {
        case let .alreadyCollected(t): return "ticket \(t) was already collected"
        case let .outOfOrder(t, e): return "ticket \(t) collected out of order: collect ticket \(e) first (tickets are collected in submission order)"
        case let .unknownTicket(t): return "ticket \(t) was not issued by this engine"
        case let .full(d): return "\(d) observations are already in flight: collect the oldest before submitting another"
        case let .busy(n): return "\(n) submitted observation(s) in flight: collect them before calling sampleActions"
        }
    }
}

extension SamplingEngine {
    /// Observations in flight at most (submitted, not collected).
    public static let pipelineDepth = 2

    struct Pending {
        let number: Int
        let slot: Slot
        /// Downloaded at submit (backends without a transfer queue); else read from the slot's pinned results.
        let values: [Float]?
    }

    /// Issues one observation (the arguments as `sampleActions`) and returns without waiting for it.
    /// Throws `PipelineError.full` with `pipelineDepth` observations in flight, and the input errors
    /// `sampleActions` throws.
    public func submit(_ inputs: PI0Inputs, steps: Int? = nil, seed: UInt64 = 0, rtcConfig: RTCConfig? = nil) throws -> SampleTicket {
        lock.lock(); defer { lock.unlock() }
        return try submitLocked(inputs, steps: steps, seed: seed, rtcConfig: rtcConfig)
    }

    /// The actions [B, H, A] of a submitted observation (waits for them). Tickets are collected once, in
    /// submission order; throws `PipelineError` otherwise, or the sample's own `NonFiniteError`.
    /// `submit` and `collect` are serialised on the engine's lock (a collect that waits holds it): drive
    /// the pipeline from one thread, as a control loop does.
    public func collect(_ ticket: SampleTicket) throws -> Tensor {
        lock.lock(); defer { lock.unlock() }
        return try collectLocked(ticket)
    }

    /// Observations submitted and not yet collected.
    public var inFlightCount: Int { lock.withLock { inFlight.count } }

    func submitLocked(_ inputs: PI0Inputs, steps: Int?, seed: UInt64, rtcConfig: RTCConfig?) throws -> SampleTicket {
        guard inFlight.count < Self.pipelineDepth else { throw PipelineError.full(depth: Self.pipelineDepth) }
        let (shape, guide) = try model.prepare(inputs, steps: steps, rtcConfig: rtcConfig, dropPadding: mode != .loop)
        let state = touch(shape)
        let slot: Slot
        if let free = state.slots.first(where: { !$0.busy }) {
            slot = free
        } else {
            slot = Slot(plan: SamplingPlan(model: model, shape: shape), transfers: transfers)
            state.slots.append(slot)
        }
        let plan = slot.plan
        let noise = inputs.noise ?? GaussianNoise.sample(count: inputs.batch * model.config.chunkSize * model.config.maxActionDim, seed: seed)
        if let transfers, let staging = slot.staging, let uploaded = slot.uploaded, let done = slot.done {
            transfers.wait(.transfer, for: done)
            try plan.upload(inputs, noise: noise, guide: guide, via: StagedUploads(transfers: transfers, staging: staging))
            transfers.record(uploaded, on: .transfer)
            transfers.wait(.compute, for: uploaded)
        } else {
            try plan.upload(inputs, noise: noise, guide: guide)
        }
        try enqueue(slot, of: state)
        var values: [Float]?
        if let transfers, let results = slot.results, let done = slot.done {
            transfers.downloadAsync(plan.outputs, count: plan.outputCount, into: results, offset: 0)
            transfers.record(done, on: .compute)
        } else {
            values = model.backend.download(plan.outputs, count: plan.outputCount)
        }
        slot.busy = true
        issued += 1
        inFlight.append(Pending(number: issued, slot: slot, values: values))
        return SampleTicket(number: issued, engine: ObjectIdentifier(self))
    }

    func collectLocked(_ ticket: SampleTicket) throws -> Tensor {
        guard ticket.engine == ObjectIdentifier(self), ticket.number >= 1, ticket.number <= issued else {
            throw PipelineError.unknownTicket(ticket: ticket.number)
        }
        guard ticket.number > collected else { throw PipelineError.alreadyCollected(ticket: ticket.number) }
        let next = inFlight[0]
        guard ticket.number == next.number else { throw PipelineError.outOfOrder(ticket: ticket.number, expected: next.number) }
        inFlight.removeFirst()
        collected = next.number
        defer { next.slot.busy = false }
        if let values = next.values { return try next.slot.plan.finish(downloaded: values) }
        guard let transfers, let done = next.slot.done, let results = next.slot.results else {
            preconditionFailure("an asynchronous download without a transfer queue")
        }
        transfers.hostWait(done)
        return try next.slot.plan.finish(downloaded: Array(results.floats))
    }
}

/// A plan's uploads staged in pinned memory and issued on the transfer queue, in order, each at the next
/// free offset (the plan's `uploadCapacity` floats fit by construction).
final class StagedUploads: TensorUploading {
    let transfers: AsyncTransfers
    let staging: PinnedHostBuffer
    private(set) var used = 0

    init(transfers: AsyncTransfers, staging: PinnedHostBuffer) { self.transfers = transfers; self.staging = staging }

    func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef) {
        guard let base = source.baseAddress, source.count > 0 else { return }
        precondition(used + source.count <= staging.count, "staged uploads exceed the plan's upload capacity (\(staging.count) floats)")
        (staging.floats.baseAddress! + used).update(from: base, count: source.count)
        transfers.uploadAsync(staging, offset: used, count: source.count, to: destination)
        used += source.count
    }
}
