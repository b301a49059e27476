// `pi0 serve` end to end with the real openpi client (openpi-client from PyPI, in its own virtualenv
// because it pins numpy<2): metadata, LIBERO- and ALOHA-style observations, actions compared with the
// library's own result for the same observation. `.ci/run` creates the virtualenv and sets
// PI0_OPENPI_PYTHON; without it the test skips and says how to run it.
import Foundation
import XCTest
import PI0
@testable import PI0Runtime
import PI0TestSupport

final class ServeEndToEndTests: XCTestCase {
    var fixtures: String { Bundle.module.resourcePath! + "/Fixtures" }
    var repoRoot: String { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path }

    func python() throws -> String {
        if let p = ProcessInfo.processInfo.environment["PI0_OPENPI_PYTHON"], FileManager.default.isExecutableFile(atPath: p) { return p }
        let local = repoRoot + "/.venv-openpi/bin/python"
        if FileManager.default.isExecutableFile(atPath: local) { return local }
        throw XCTSkip("openpi-client not installed: run `bash .ci/run` (it creates .venv-openpi) or set PI0_OPENPI_PYTHON to a Python with openpi-client")
    }

    /// The pattern tools/server/pi0_serve_e2e.py sends for camera k.
    func pattern(_ k: Int) -> CameraFrame {
        var px = [UInt8](repeating: 0, count: 3 * 224 * 224)
        for c in 0..<3 { for y in 0..<224 { for x in 0..<224 { px[(c * 224 + y) * 224 + x] = UInt8((7 * x + 13 * y + 29 * c + 31 * k) % 256) } } }
        return CameraFrame(height: 224, width: 224, layout: .chw, pixels: .uint8(px))
    }

    func serve(layout: String, extra: [String] = []) throws -> (Process, Int) {
        guard let exe = CLI.executable else { throw XCTSkip("pi0 executable not built; run `swift build` first") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["serve", "--checkpoint", fixtures + "/end_to_end", "--tokenizer", fixtures + "/tokenizer/demo_bpe.model",
                       "--port", "0", "--layout", layout, "--seed", "11", "--threads", "2",
                       // The example clients send fewer state values than this checkpoint's 14: pad them.
                       "--no-strict-observations"] + extra
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        // The first stdout line is "listening on ws://127.0.0.1:PORT".
        var line = Data()
        let deadline = Date().addingTimeInterval(60)
        while !line.contains(UInt8(ascii: "\n")) && Date() < deadline {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            line += d
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let port = text.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            p.terminate(); XCTFail("no port in server output: \(text)"); throw XCTSkip("server did not start")
        }
        return (p, port)
    }

    /// SIGTERM the moment the server has announced itself: it must stop within seconds every time (a
    /// dispatch signal source armed asynchronously used to drop such a signal and leave the server running).
    func testSIGTERMRightAfterTheAnnouncementAlwaysStopsTheServer() throws {
        for attempt in 0..<5 {
            let (server, _) = try serve(layout: "libero")
            server.terminate()
            let deadline = Date().addingTimeInterval(20)
            while server.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if server.isRunning { kill(server.processIdentifier, SIGKILL) }
            XCTAssertFalse(server.isRunning || server.terminationReason == .uncaughtSignal && server.terminationStatus == SIGKILL,
                           "attempt \(attempt): the server ignored SIGTERM")
            server.waitUntilExit()
            XCTAssertEqual(server.terminationStatus, 0, "attempt \(attempt): graceful exit")
        }
    }

    func runClient(layout: String, port: Int) throws -> [String: Any] {
        try runScript("tools/server/pi0_serve_e2e.py", ["--port", "\(port)", "--layout", layout])
    }

    /// Runs a tools/server script in the openpi-client environment with `--out FILE` appended; expects
    /// exit status 0 and returns the JSON object it wrote.
    func runScript(_ script: String, _ args: [String]) throws -> [String: Any] {
        let out = NSTemporaryDirectory() + "pi0-e2e-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try python())
        p.arguments = [repoRoot + "/" + script] + args + ["--out", out]
        let err = Pipe()
        p.standardError = err
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, String(decoding: e, as: UTF8.self))
        return try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
    }

    func testOpenPIClientAgainstPi0Serve() throws {
        _ = try python()
        let policy = try PI0Policy(checkpoint: fixtures + "/end_to_end", tokenizer: fixtures + "/tokenizer/demo_bpe.model",
                                   backend: try Backends.cpu(threads: 2))
        for (layout, actionDim) in [("libero", 7), ("aloha", 14)] {
            let (server, port) = try serve(layout: layout)
            defer { server.terminate(); server.waitUntilExit() }
            let r = try runClient(layout: layout, port: port)
            let meta = r["metadata"] as? [String: Any]
            XCTAssertEqual(meta?["action_horizon"] as? Int, 50)
            XCTAssertEqual(meta?["action_dim"] as? Int, actionDim)
            XCTAssertEqual(r["dtype"] as? String, "float32")
            let rows = r["actions"] as! [[Double]]
            XCTAssertEqual(rows.count, 50); XCTAssertEqual(rows.first?.count, actionDim)
            // The library on the same observation (state padded to 14, same cameras, same seed).
            var state = (r["state"] as! [Double]).map(Float.init)
            state += [Float](repeating: 0, count: 14 - state.count)
            let obs = Observation(images: ["top": pattern(0), "wrist": pattern(1)], state: state, prompt: r["prompt"] as! String)
            let lib = try policy.predictActionChunk(obs, seed: 11)
            let expected = (0..<50).flatMap { t in (0..<actionDim).map { lib.values[t * 14 + $0] } }
            let got = rows.flatMap { $0 }.map(Float.init)
            XCTAssertTrue(ParityResult(name: layout, actual: got, expected: expected).passes(minPCC: 0.999999, maxRelL2: 1e-6),
                          "\(layout): \(ParityResult(name: layout, actual: got, expected: expected))")
        }
    }

    /// clients/python's AsyncActionChunkBroker with the real openpi client against `pi0 serve`: the control
    /// loop keeps its period while chunks are computed, every request after the first carries the RTC
    /// fields (the unexecuted rows of the current chunk and the delay measured on the previous request),
    /// and the server answers them with finite actions.
    func testAsyncBrokerWithRealTimeChunkingAgainstPi0Serve() throws {
        let (server, port) = try serve(layout: "libero")
        defer { server.terminate(); server.waitUntilExit() }
        let r = try runScript("tools/server/rtc_broker_e2e.py", ["--port", "\(port)", "--steps", "40", "--hz", "10"])
        for mode in ["rtc", "plain"] {
            let m = r[mode] as! [String: Any]
            let executed = (m["executed"] as! [[Double]])
            XCTAssertEqual(executed.count, 40, mode)
            XCTAssertTrue(executed.allSatisfy { $0.count == 7 && $0.allSatisfy(\.isFinite) }, mode)
            let requests = m["requests"] as! [[String: Any]]
            XCTAssertGreaterThanOrEqual(requests.count, 2, "\(mode): no second chunk was requested")
            XCTAssertTrue(requests[0].isEmpty, "\(mode): the first request carries no RTC fields")
            let delays = m["delays"] as! [Int]
            for (i, q) in requests.enumerated().dropFirst() {
                if mode == "plain" { XCTAssertTrue(q.isEmpty); continue }
                let prev = q["rtc_prev_chunk"] as! [[Double]]
                XCTAssertEqual(prev.first?.count, 7)
                XCTAssertEqual(q["rtc_execution_horizon"] as? Int, 10)
                // The delay sent is the one measured on the previous request (0 before any was measured).
                XCTAssertEqual(q["rtc_inference_delay"] as? Int, i >= 2 && i - 2 < delays.count ? delays[i - 2] : 0, "request \(i)")
            }
        }
        let bad = r["bad_request"] as! [String: Any]
        XCTAssertTrue((bad["error"] as? String)?.contains("rtc_prev_chunk") == true, "\(bad)")
        XCTAssertEqual(bad["after"] as? Int, 50, "the connection stays usable after a bad RTC field: \(bad)")
    }

    /// The Python client package's own unit tests (clients/python/tests), in the openpi-client environment.
    func testPythonClientPackageUnitTests() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try python())
        p.arguments = ["-m", "unittest", "discover", "-s", repoRoot + "/clients/python/tests"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, e)
        XCTAssertTrue(e.contains("OK"), e)
    }

    /// Batching across clients (`pi0 serve --max-batch 4`, fixed seed): three openpi clients at once and one
    /// that hangs up right after sending; every client's answer equals what it gets alone.
    func testBatchedClientsGetTheAnswersTheyWouldGetAlone() throws {
        let (server, port) = try serve(layout: "libero", extra: ["--max-batch", "4"])
        defer { server.terminate(); server.waitUntilExit() }
        let r = try runScript("tools/server/batch_clients.py", ["--port", "\(port)", "--clients", "3", "--requests", "1",
                       "--disconnecting", "1", "--check-alone"])
        XCTAssertEqual(r["errors"] as? [String], [])
        XCTAssertEqual(r["requests"] as? Int, 3)
        XCTAssertEqual(r["distinct_answers"] as? Int, 3, "three different observations, three different answers")
        let rel = r["rel_l2_vs_alone"] as! [Double]
        XCTAssertEqual(rel.count, 3)
        XCTAssertTrue(rel.allSatisfy { $0 <= 1e-6 }, "\(rel)")
    }
}
