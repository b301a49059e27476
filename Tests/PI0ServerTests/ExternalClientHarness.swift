// Serves the fake policy for an external client (tools/server/run_openpi_client_check.sh drives it
// with the real Python openpi-client). Skipped unless PI0_SERVER_E2E_PORT is set.
// Also: SIGTERM handling of runUntilSignal.
import Foundation
import MessagePack
import XCTest
@testable import PI0Server

final class ExternalClientHarness: XCTestCase {
    func testServeFakePolicyForExternalClients() throws {
        let env = ProcessInfo.processInfo.environment
        guard let portText = env["PI0_SERVER_E2E_PORT"], let port = Int(portText) else {
            throw XCTSkip("set PI0_SERVER_E2E_PORT (and PI0_SERVER_E2E_STOP_FILE) to serve the fake policy")
        }
        let stopFile = env["PI0_SERVER_E2E_STOP_FILE"] ?? "/tmp/pi0_server_e2e.stop"
        let seconds = Double(env["PI0_SERVER_E2E_SECONDS"] ?? "300") ?? 300
        let configuration = PolicyServerConfiguration(host: "127.0.0.1", port: port, apiKey: env["PI0_SERVER_E2E_API_KEY"])
        var logger = quietLogger()
        logger.logLevel = .info
        let server = PolicyServer(service: FakePolicy(), configuration: configuration, logger: logger)
        _ = try runBlocking { try await server.start() }
        // `swift test` relays our output only at the end, so the pid (for RSS figures) goes to a file.
        if let pidFile = env["PI0_SERVER_E2E_PID_FILE"] { try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8) }
        print("[e2e] serving the fake policy on port \(port), pid \(getpid()); stop by creating \(stopFile)")
        let deadline = Date().addingTimeInterval(seconds)
        while !FileManager.default.fileExists(atPath: stopFile) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
        }
        try runBlocking { try await server.shutdown() }
    }

    func testSIGTERMShutsDownGracefully() throws {
        let server = PolicyServer(service: FakePolicy(), configuration: .init(host: "127.0.0.1", port: 0), logger: quietLogger())
        let port = try runBlocking { try await server.start() }
        let done = DispatchSemaphore(value: 0)
        Task {
            try? await server.runUntilSignal()
            done.signal()
        }
        let client = try connectedClient(port: port)
        Thread.sleep(forTimeInterval: 0.5)  // let runUntilSignal install its handlers
        kill(getpid(), SIGTERM)
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "runUntilSignal returned after SIGTERM")
        XCTAssertEqual(try client.readMessage(), .close(code: 1001, reason: "server shutting down"))
    }
}
