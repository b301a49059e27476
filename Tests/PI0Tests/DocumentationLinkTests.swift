// Every document the code cites exists in the repository: each `docs/…` path named in a source, test or
// tool file (and in Package.swift) is a file under the repository root, and no file cites a document by a
// bare file name, without the folder a reader would need to find it. The root is found from this file's path.
import Foundation
import XCTest

final class DocumentationLinkTests: XCTestCase {
    /// The repository root: this file is Tests/PI0Tests/DocumentationLinkTests.swift.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// (relative path, text) of every code and script file under Sources/, Tests/ (fixtures excluded) and tools/.
    func citingFiles() throws -> [(path: String, text: String)] {
        let fm = FileManager.default
        guard fm.fileExists(atPath: root.appendingPathComponent("Package.swift").path) else {
            throw XCTSkip("repository sources not found at \(root.path) (tests run from a relocated build)")
        }
        var out: [(String, String)] = [("Package.swift", try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8))]
        let extensions: Set<String> = ["swift", "c", "h", "py", "sh"]
        for top in ["Sources", "Tests", "tools"] {
            guard let e = fm.enumerator(atPath: root.appendingPathComponent(top).path) else { continue }
            while let rel = e.nextObject() as? String {
                if rel.split(separator: "/").contains(where: { $0 == "Fixtures" || $0 == "Resources" }) { continue }
                guard extensions.contains((rel as NSString).pathExtension) else { continue }
                let url = root.appendingPathComponent(top).appendingPathComponent(rel)
                if let text = try? String(contentsOf: url, encoding: .utf8) { out.append((top + "/" + rel, text)) }
            }
        }
        return out
    }

    func matches(_ pattern: String, in text: String) -> [String] {
        let re = try! NSRegularExpression(pattern: pattern)
        return re.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { String(text[Range($0.range(at: 1), in: text)!]) }
    }

    func testEveryCitedDocsPathExists() throws {
        let files = try citingFiles()
        XCTAssertGreaterThan(files.count, 100, "the scan must see the sources")
        var cited = 0
        for (path, text) in files {
            for doc in matches(#"(?:^|[^\w/.])(docs/[\w./-]*\w)"#, in: text) {
                cited += 1
                XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent(doc).path),
                              "\(path) cites \(doc), which does not exist")
            }
        }
        XCTAssertGreaterThan(cited, 20, "the scan must find the code's citations")
    }

    func testNoDocumentIsCitedByABareName() throws {
        // `README.md` is a fixture's own README next to it; every other document is cited with its path.
        for (path, text) in try citingFiles() {
            for name in matches(#"(?:^|[^\w/.-])([A-Za-z][A-Za-z0-9_]*\.md)\b"#, in: text) where name != "README.md" {
                XCTFail("\(path) cites \(name) without a path; cite docs/… (e.g. docs/SPEC.md §N)")
            }
        }
    }

    /// The documents point back into the code: every `Sources/…`, `Tests/…` or `tools/…` file path that
    /// README.md or a file in docs/ names exists (a renamed or deleted file leaves no stale pointer).
    func testEveryCodePathCitedByTheDocumentsExists() throws {
        _ = try citingFiles()   // skips away from the sources
        let fm = FileManager.default
        let docs = root.appendingPathComponent("docs")
        var texts: [(String, String)] = [("README.md", try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8))]
        for name in try fm.contentsOfDirectory(atPath: docs.path) where name.hasSuffix(".md") {
            texts.append(("docs/" + name, try String(contentsOf: docs.appendingPathComponent(name), encoding: .utf8)))
        }
        var cited = 0
        for (path, text) in texts {
            for file in matches(#"(?:^|[^\w/.])((?:Sources|Tests|tools)/[\w./+-]*\.(?:swift|c|h|py|sh))"#, in: text) {
                cited += 1
                XCTAssertTrue(fm.fileExists(atPath: root.appendingPathComponent(file).path), "\(path) names \(file), which does not exist")
            }
        }
        XCTAssertGreaterThan(cited, 50, "the scan must find the documents' pointers into the code")
    }
}
