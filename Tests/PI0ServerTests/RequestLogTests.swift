// The server logs each answered request at debug (`pi0 serve --log-level debug` shows them) and
// connections at info, so a busy server does not flood an operator's terminal (docs/CLI.md).
import Foundation
import Logging
import XCTest
@testable import PI0Server

/// Records every log message with its level.
final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(Logger.Level, String)] = []
    func add(_ level: Logger.Level, _ message: String) { lock.lock(); entries.append((level, message)); lock.unlock() }
    var all: [(Logger.Level, String)] { lock.lock(); defer { lock.unlock() }; return entries }

    struct Handler: LogHandler {
        let sink: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] } set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                 file: String, function: String, line: UInt) {
            sink.add(level, message.description)
        }
    }
}

final class RequestLogTests: XCTestCase {
    func testEachRequestIsLoggedAtDebugConnectionsAtInfo() throws {
        let log = CapturedLog()
        let logger = Logger(label: "pi0.server.test") { _ in CapturedLog.Handler(sink: log) }
        let server = PolicyServer(service: FakePolicy(), configuration: .init(host: "127.0.0.1", port: 0, shutdownGraceSeconds: 5),
                                  logger: logger)
        let port = try runBlocking { try await server.start() }
        let client = try connectedClient(port: port)
        for i in 0..<3 { _ = try request(client, state: [Float(i), 1, 2]) }
        client.abort()
        try runBlocking { try await server.shutdown() }
        let answered = log.all.filter { $0.1 == "request answered" }
        XCTAssertEqual(answered.count, 3, "\(log.all)")
        XCTAssertTrue(answered.allSatisfy { $0.0 == .debug }, "\(answered)")
        XCTAssertTrue(log.all.contains { $0.1 == "client connected" && $0.0 == .info }, "\(log.all)")
    }
}
