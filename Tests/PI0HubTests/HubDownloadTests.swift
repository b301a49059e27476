// HubDownload against tools/download/fake_hub.py (a 127.0.0.1-only stand-in for the hub with its URL layout,
// redirects, headers, Range support and fault modes), and SHA256 against FIPS 180-2 vectors and Python's hashlib.
// Expected hashes come from Python (hashlib), never from the code under test.
import Foundation
import XCTest
@testable import PI0Hub
import PI0Runtime

final class HubDownloadTests: XCTestCase {
    static let commit = "0123456789abcdef0123456789abcdef01234567"
    var tmp: URL!
    var root: URL { sharedHub!.root }
    var cache: String { tmp.appendingPathComponent("cache").path }
    var repoDir: String { cache + "/models--org--pi0" }

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("hubdl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    override class func tearDown() {
        sharedHub?.stop()
        sharedHub = nil
        super.tearDown()
    }

    // MARK: SHA-256

    func testSHA256KnownVectors() {
        // FIPS 180-2 appendix B examples, and the empty message.
        let cases: [(String, String)] = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
             "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
        ]
        for (msg, hex) in cases { XCTAssertEqual(SHA256.hex(SHA256.hash(Array(msg.utf8))), hex, "message '\(msg)'") }
        // One million 'a', fed in uneven pieces.
        var s = SHA256()
        var left = 1_000_000, piece = 1
        while left > 0 {
            let n = min(piece, left)
            s.update([UInt8](repeating: 0x61, count: n))
            left -= n
            piece = piece * 3 % 997 + 1
        }
        XCTAssertEqual(SHA256.hex(s.finalize()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA256MatchesHashlibOnRandomData() throws {
        try requirePython()
        var rng = SystemRandomNumberGenerator()
        // Lengths around the block and padding boundaries (55, 56, 63, 64, 119, 120) and some larger ones.
        let lengths = Array(0...130) + [1000, 4095, 4096, 65_537]
        var files: [String] = [], ours: [String] = []
        for n in lengths {
            let data = [UInt8](Self.randomData(n))
            let path = tmp.appendingPathComponent("r\(n)").path
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(data)))
            files.append(path)
            // Incremental, split at random points.
            var s = SHA256(), i = 0
            while i < n { let k = Int.random(in: 1...200, using: &rng); s.update(Array(data[i..<min(n, i + k)])); i += k }
            ours.append(SHA256.hex(s.finalize()))
        }
        XCTAssertEqual(ours, try pythonSHA256(files))
    }

    // MARK: downloads

    func testDownloadWritesHubCacheLayoutAndLocatorFindsIt() async throws {
        let hub = try startHub()
        let events = EventLog()
        let snap = try await HubDownload.download(repo: "org/pi0", endpoint: hub.endpoint, token: nil, cache: cache,
                                                  progress: { events.add($0) })
        XCTAssertEqual(snap, repoDir + "/snapshots/" + Self.commit)
        XCTAssertEqual(try String(contentsOfFile: repoDir + "/refs/main", encoding: .utf8), Self.commit)
        let lfs = ["model.safetensors", "policy_preprocessor_step_3_normalizer_processor.safetensors",
                   "policy_postprocessor_step_0_unnormalizer_processor.safetensors"]
        let plain = ["config.json", "policy_preprocessor.json", "policy_postprocessor.json"]
        let served = (lfs + plain).map { root.appendingPathComponent("org/pi0/\($0)").path }
        for (i, file) in (lfs + plain).enumerated() {
            // LFS files are named by their SHA-256, the others by their git blob id (as the hub's ETags).
            let h = try XCTUnwrap(hub.hashes["org/pi0/\(file)"])
            let etag = i < lfs.count ? h.sha256 : h.gitSHA1
            let link = snap + "/" + file
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), "../../blobs/\(etag)", file)
            XCTAssertEqual(FileManager.default.contents(atPath: link), FileManager.default.contents(atPath: served[i]), file)
            XCTAssertFalse(FileManager.default.fileExists(atPath: repoDir + "/blobs/\(etag).incomplete"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: snap + "/tokenizer.model"))
        XCTAssertTrue(events.all.contains { if case .skipped("tokenizer.model") = $0 { return true }; return false })
        let verified = events.all.compactMap { e -> String? in if case .finished(let f, _, true) = e { return f }; return nil }
        XCTAssertEqual(Set(verified), Set(lfs))
        // No token given: no Authorization header went out.
        XCTAssertFalse(hubRequests().contains { $0.contains("Bearer") })

        try withHubCache(cache) {
            XCTAssertEqual(try CheckpointLocator.resolve("org/pi0"), snap)
            XCTAssertEqual(CheckpointLocator.cachedSnapshot("org/pi0"), snap)
            XCTAssertEqual(HubCache.snapshot("org/pi0"), snap)
        }

        // A second run finds every blob in the cache: metadata requests only, no content transfer.
        let before = hubRequests().count
        _ = try await HubDownload.download(repo: "org/pi0", endpoint: hub.endpoint, token: nil, cache: cache)
        let again = hubRequests().dropFirst(before)
        XCTAssertFalse(again.isEmpty)
        XCTAssertTrue(again.allSatisfy { $0.hasPrefix("HEAD ") }, "\(again)")
    }

    func testExplicitFilesInSubfolderLinkWithDeeperRelativePath() async throws {
        let hub = try startHub()
        let snap = try await HubDownload.download(repo: "org/pi0", files: ["sub/dir/extra.safetensors"],
                                                  endpoint: hub.endpoint, token: nil, cache: cache)
        let sha = try XCTUnwrap(hub.hashes["org/pi0/sub/dir/extra.safetensors"]).sha256
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: snap + "/sub/dir/extra.safetensors"),
                       "../../../../blobs/\(sha)")
        XCTAssertEqual(FileManager.default.contents(atPath: snap + "/sub/dir/extra.safetensors"),
                       FileManager.default.contents(atPath: root.appendingPathComponent("org/pi0/sub/dir/extra.safetensors").path))
    }

    func testRelativeRedirectOfARenamedRepoIsFollowed() async throws {
        let hub = try startHub()
        let snap = try await HubDownload.download(repo: "old/pi0", files: ["config.json", "model.safetensors"],
                                                  endpoint: hub.endpoint, token: nil, cache: cache)
        // Stored under the id asked for, as huggingface_hub does.
        XCTAssertEqual(snap, cache + "/models--old--pi0/snapshots/" + Self.commit)
        let sha = try XCTUnwrap(hub.hashes["org/pi0/model.safetensors"]).sha256
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: snap + "/model.safetensors"), "../../blobs/\(sha)")
        XCTAssertEqual(FileManager.default.contents(atPath: snap + "/config.json"),
                       FileManager.default.contents(atPath: root.appendingPathComponent("org/pi0/config.json").path))
        XCTAssertTrue(hubRequests().contains("HEAD /old/pi0/resolve/main/config.json - -"))
    }

    func testResumeAfterDroppedConnection() async throws {
        let hub = try startHub(dropOnce: ["model.safetensors"])
        let modelPath = root.appendingPathComponent("org/pi0/model.safetensors").path
        let sha = try XCTUnwrap(hub.hashes["org/pi0/model.safetensors"]).sha256
        let total = try XCTUnwrap(Session.fileSize(modelPath))
        do {
            _ = try await HubDownload.download(repo: "org/pi0", endpoint: hub.endpoint, token: nil, cache: cache, retries: 0, timeout: 10)
            XCTFail("the dropped connection should fail with no retries")
        } catch let e as HubDownloadError {
            guard case .network(let url, _) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(url.contains("/cdn/org/pi0/model.safetensors"), url)
        }
        let partial = repoDir + "/blobs/\(sha).incomplete"
        let have = try XCTUnwrap(Session.fileSize(partial), "the partial download is kept")
        XCTAssertGreaterThan(have, 0)
        XCTAssertLessThan(have, total)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repoDir + "/blobs/\(sha)"))

        let snap = try await HubDownload.download(repo: "org/pi0", endpoint: hub.endpoint, token: nil, cache: cache, retries: 0)
        let log = hubRequests()
        XCTAssertTrue(log.contains("GET /cdn/org/pi0/model.safetensors bytes=\(have)- -"), "\(log)")
        XCTAssertEqual(FileManager.default.contents(atPath: snap + "/model.safetensors"), FileManager.default.contents(atPath: modelPath))
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial))
    }

    func testBrokenTransferIsRetriedInTheSameCall() async throws {
        let hub = try startHub(dropOnce: ["model.safetensors"])
        let events = EventLog()
        let snap = try await HubDownload.download(repo: "org/pi0", files: ["model.safetensors"], endpoint: hub.endpoint,
                                                  token: nil, cache: cache, retries: 2, progress: { events.add($0) })
        XCTAssertTrue(events.all.contains { if case .retrying("model.safetensors", 1, _) = $0 { return true }; return false })
        XCTAssertTrue(hubRequests().contains { $0.hasPrefix("GET /cdn/org/pi0/model.safetensors bytes=") })
        XCTAssertEqual(FileManager.default.contents(atPath: snap + "/model.safetensors"),
                       FileManager.default.contents(atPath: root.appendingPathComponent("org/pi0/model.safetensors").path))
    }

    func testContentRedirectKeepsTheRangeHeader() async throws {
        let hub = try startHub(dropOnce: ["hop.safetensors"])
        let snap = try await HubDownload.download(repo: "org/pi0", files: ["hop.safetensors"], endpoint: hub.endpoint,
                                                  token: nil, cache: cache, retries: 1)
        let requests = hubRequests()
        // The resumed GET goes to /cdn-hop/ (302) and then /cdn/, both with the same Range.
        let resumed = try XCTUnwrap(requests.last { $0.hasPrefix("GET /cdn-hop/org/pi0/hop.safetensors bytes=") }, "\(requests)")
        let range = resumed.split(separator: " ")[2]
        XCTAssertNotEqual(range, "-")
        XCTAssertTrue(requests.contains("GET /cdn/org/pi0/hop.safetensors \(range) -"), "\(requests)")
        XCTAssertEqual(FileManager.default.contents(atPath: snap + "/hop.safetensors"),
                       FileManager.default.contents(atPath: root.appendingPathComponent("org/pi0/hop.safetensors").path))
    }

    func testServerIgnoringRangeStartsOver() async throws {
        let hub = try startHub(ignoreRange: true)
        let modelPath = root.appendingPathComponent("org/pi0/model.safetensors").path
        let sha = try XCTUnwrap(hub.hashes["org/pi0/model.safetensors"]).sha256
        // A partial file whose bytes are wrong: appending to it would fail the SHA-256 check.
        try FileManager.default.createDirectory(atPath: repoDir + "/blobs", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: repoDir + "/blobs/\(sha).incomplete", contents: Data(repeating: 0xAB, count: 1000)))
        let snap = try await HubDownload.download(repo: "org/pi0", files: ["model.safetensors"], endpoint: hub.endpoint,
                                                  token: nil, cache: cache)
        XCTAssertTrue(hubRequests().contains("GET /cdn/org/pi0/model.safetensors bytes=1000- -"))
        XCTAssertEqual(FileManager.default.contents(atPath: snap + "/model.safetensors"), FileManager.default.contents(atPath: modelPath))
    }

    func testCompletePartialFileIsVerifiedWithoutTransfer() async throws {
        let hub = try startHub()
        let modelPath = root.appendingPathComponent("org/pi0/model.safetensors").path
        let sha = try XCTUnwrap(hub.hashes["org/pi0/model.safetensors"]).sha256
        // A previous run got every byte but stopped before the check and rename.
        try FileManager.default.createDirectory(atPath: repoDir + "/blobs", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: modelPath, toPath: repoDir + "/blobs/\(sha).incomplete")
        let snap = try await HubDownload.download(repo: "org/pi0", files: ["model.safetensors"], endpoint: hub.endpoint,
                                                  token: nil, cache: cache)
        XCTAssertEqual(hubRequests(), ["HEAD /org/pi0/resolve/main/model.safetensors - -"])
        XCTAssertEqual(FileManager.default.contents(atPath: snap + "/model.safetensors"), FileManager.default.contents(atPath: modelPath))
        XCTAssertFalse(FileManager.default.fileExists(atPath: repoDir + "/blobs/\(sha).incomplete"))
    }

    func testWaitsWhileAnotherProcessHoldsTheBlobLock() async throws {
        let hub = try startHub()
        let modelPath = root.appendingPathComponent("org/pi0/model.safetensors").path
        let sha = try XCTUnwrap(hub.hashes["org/pi0/model.safetensors"]).sha256
        // huggingface_hub's lock file for this blob; a separate open file description conflicts even in-process.
        let lockPath = cache + "/.locks/models--org--pi0/\(sha).lock"
        try FileManager.default.createDirectory(atPath: cache + "/.locks/models--org--pi0", withIntermediateDirectories: true)
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(flock(fd, LOCK_EX), 0)
        let events = EventLog()
        let (endpoint, cache) = (hub.endpoint, self.cache)
        let task = Task {
            try await HubDownload.download(repo: "org/pi0", files: ["model.safetensors"], endpoint: endpoint, token: nil,
                                           cache: cache, progress: { events.add($0) })
        }
        func waiting() -> Bool { events.all.contains { if case .waitingForLock("model.safetensors", lockPath) = $0 { return true }; return false } }
        for _ in 0..<250 where !waiting() { try await Task.sleep(nanoseconds: 20_000_000) }
        XCTAssertTrue(waiting())
        XCTAssertFalse(hubRequests().contains { $0.hasPrefix("GET ") }, "no transfer while the lock is held")
        flock(fd, LOCK_UN)
        close(fd)
        let snap = try await task.value
        XCTAssertEqual(FileManager.default.contents(atPath: snap + "/model.safetensors"), FileManager.default.contents(atPath: modelPath))
    }

    func testChecksumMismatchThrowsAndLeavesNoBlob() async throws {
        let hub = try startHub(corrupt: ["model.safetensors"])
        let sha = try XCTUnwrap(hub.hashes["org/pi0/model.safetensors"]).sha256
        do {
            _ = try await HubDownload.download(repo: "org/pi0", endpoint: hub.endpoint, token: nil, cache: cache)
            XCTFail("corrupt content must not be accepted")
        } catch let e as HubDownloadError {
            guard case .checksumMismatch(let repo, let file, let expected, let actual) = e else { return XCTFail("\(e)") }
            XCTAssertEqual([repo, file, expected], ["org/pi0", "model.safetensors", sha])
            XCTAssertNotEqual(actual, sha)
            XCTAssertTrue(e.description.contains("model.safetensors") && e.description.contains("corrupt"), e.description)
        }
        let blobs = try FileManager.default.contentsOfDirectory(atPath: repoDir + "/blobs")
        XCTAssertFalse(blobs.contains { $0.hasPrefix(sha) }, "\(blobs)")
        XCTAssertNil(try? FileManager.default.attributesOfItem(atPath: repoDir + "/snapshots/\(Self.commit)/model.safetensors"))
    }

    func testNotFoundAndUnauthorizedErrors() async throws {
        let hub = try startHub()
        func error(_ repo: String, revision: String = "main", files: [String]? = nil, token: String? = nil) async -> HubDownloadError? {
            do {
                _ = try await HubDownload.download(repo: repo, revision: revision, files: files, endpoint: hub.endpoint, token: token, cache: cache)
                return nil
            } catch { return error as? HubDownloadError }
        }
        let missing = await error("org/pi0", files: ["nope.bin"])
        XCTAssertEqual(missing, .fileNotFound(repo: "org/pi0", revision: "main", file: "nope.bin"))
        XCTAssertTrue(missing?.description.contains("nope.bin") == true && missing?.description.contains("org/pi0") == true)
        let absent = await error("org/absent"), badRevision = await error("org/pi0", revision: "v9")
        XCTAssertEqual(absent, .repoNotFound(repo: "org/absent", status: 401, hadToken: false))
        XCTAssertEqual(badRevision, .revisionNotFound(repo: "org/pi0", revision: "v9"))

        let gated = await error("gated/pi0")
        XCTAssertEqual(gated, .unauthorized(repo: "gated/pi0", file: "config.json", status: 401, hadToken: false))
        XCTAssertTrue(gated?.description.contains("HF_TOKEN") == true && gated?.description.contains("license") == true)
        let wrongToken = await error("gated/pi0", token: "wrong")
        XCTAssertEqual(wrongToken, .unauthorized(repo: "gated/pi0", file: "config.json", status: 401, hadToken: true))
        // The right token opens it, sent as a Bearer header.
        let rightToken = await error("gated/pi0", token: "secret-token")
        XCTAssertNil(rightToken)
        let requests = hubRequests()
        XCTAssertTrue(requests.contains("HEAD /gated/pi0/resolve/main/config.json - Bearer_secret-token"), "\(requests)")
        // ... but never to the CDN host the content is redirected to (as huggingface_hub).
        XCTAssertTrue(requests.contains("GET /cdn/gated/pi0/model.safetensors - -"), "\(requests)")
        let noSlash = await error("noslash")
        XCTAssertEqual(noSlash, .invalidRepoID("noslash"))
    }

    func testUnreachableEndpointGivesNetworkError() async throws {
        // Port 1 on loopback: nothing listens there, the connection is refused at once.
        do {
            _ = try await HubDownload.download(repo: "org/pi0", endpoint: "http://127.0.0.1:1", token: nil, cache: cache, timeout: 5)
            XCTFail("expected a network error")
        } catch let e as HubDownloadError {
            guard case .network(let url, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(url, "http://127.0.0.1:1/org/pi0/resolve/main/config.json")
            XCTAssertTrue(e.description.contains("cannot download") && e.description.contains("HF_ENDPOINT"), e.description)
        }
    }

    func testProcessorStateFileMustStayInsideTheSnapshot() async throws {
        let hub = try startHub()
        do {
            _ = try await HubDownload.download(repo: "org/evil", endpoint: hub.endpoint, token: nil, cache: cache)
            XCTFail("expected badProcessorConfig")
        } catch let e as HubDownloadError {
            guard case .badProcessorConfig(let file, let reason) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(file, "policy_preprocessor.json")
            XCTAssertTrue(reason.contains("steps[0].state_file"), reason)
        }
        XCTAssertEqual(HubDownload.invalidFileNameReason("a/../b"), "empty, '.' or '..' path component")
        XCTAssertNil(HubDownload.invalidFileNameReason("sub/x.safetensors"))
    }
}
