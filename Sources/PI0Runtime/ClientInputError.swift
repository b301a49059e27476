// Errors caused by what a client sent (a wrong observation, a bad real-time chunking field, a
// non-finite input). The server answers them with the error text and keeps the connection open, so the
// client can send a corrected observation; every other error is openpi's path: text, then close 1011
// (docs/SERVER.md, "Behaviour"). Declared here, where the model's input errors are known, so that the
// server needs no knowledge of the model's types.
import PI0

/// Marks an error as the client's: the connection stays usable after it.
public protocol ClientInputError: Error {}

extension PolicyError: ClientInputError {}
extension RTCError: ClientInputError {}
extension PI0InputError: ClientInputError {}

/// The stage timings of one prediction (the model's `StageTimings`), under the runtime's name.
public typealias PolicyTimings = StageTimings
