// Errors caused by what a client sent (a wrong observation, a bad real-time chunking field, a
// non-finite input). The server answers them with the error text and keeps the connection open, so the
// client can send a corrected observation; every other error is openpi's path: text, then close 1011
// (docs/SERVER.md, "Behaviour").
import PI0
import PI0Runtime

/// Marks an error as the client's: the connection stays usable after it.
public protocol ClientInputError: Error {}

extension ObservationError: ClientInputError {}
extension PolicyError: ClientInputError {}
extension RTCError: ClientInputError {}
extension PI0InputError: ClientInputError {}
