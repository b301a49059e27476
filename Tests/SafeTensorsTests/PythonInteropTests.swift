// PythonInteropTests.swift — a file written by SafeTensorsWriter must load in the real Python
// `safetensors` package (whose Rust core enforces the format rules), with identical dtypes, shapes, bytes
// and metadata. Needs a Python with `safetensors` and `numpy`: $SAFETENSORS_PYTHON, else
// /work/venvs/st/bin/python, else python3 on PATH. Skips with a message when none is usable.

import Foundation
import XCTest
@testable import SafeTensors

final class PythonInteropTests: XCTestCase {
    private let dir = ScratchDirectory()

    private func run(_ executable: String, _ arguments: [String]) -> (status: Int32, stdout: String, stderr: String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        guard (try? process.run()) != nil else { return nil }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    private func findPython() -> String? {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["SAFETENSORS_PYTHON"] { candidates.append(env) }
        candidates.append("/work/venvs/st/bin/python")
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append("\(dir)/python3")
        }
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
            if let r = run(c, ["-c", "import safetensors, numpy"]), r.status == 0 { return c }
        }
        return nil
    }

    func testPythonSafetensorsReadsOurFile() throws {
        guard let python = findPython() else {
            throw XCTSkip("no Python with `safetensors` and `numpy` found (set SAFETENSORS_PYTHON); skipping interop check")
        }
        var writer = SafeTensorsWriter()
        var expected: [String: (SafeTensorsDType, [Int], [UInt8])] = [:]
        for (i, dtype) in SafeTensorsDType.allCases.enumerated() {
            let shape = i % 3 == 0 ? [2, i + 1] : (i % 3 == 1 ? [i + 2] : [])
            let count = shape.reduce(1, *) * dtype.byteSize
            let data = (0..<count).map { k in dtype == .BOOL ? UInt8(k % 2) : UInt8(truncatingIfNeeded: k &* 37 &+ i) }
            let name = "w.\(dtype.rawValue)/ü"
            try writer.add(name, dtype: dtype, shape: shape, bytes: data)
            expected[name] = (dtype, shape, data)
        }
        try writer.add("empty", floats: [], shape: [0, 4])
        expected["empty"] = (.F32, [0, 4], [])
        let metadata = ["format": "pt", "tricky": "\"quoted\" \\ tab\t nl\n ü"]
        let path = dir.file("ours.safetensors")
        try writer.write(to: path, metadata: metadata)

        // deserialize() runs the reference Rust validation on the raw bytes; safe_open checks metadata too.
        let script = """
        import json, sys, safetensors
        from safetensors import safe_open
        raw = open(sys.argv[1], "rb").read()
        out = {"tensors": {n: {"dtype": t["dtype"], "shape": list(t["shape"]), "hex": bytes(t["data"]).hex()}
                           for n, t in safetensors.deserialize(raw)}}
        with safe_open(sys.argv[1], framework="numpy") as f:
            out["metadata"] = f.metadata()
            out["keys"] = sorted(f.keys())
            out["f32_sum"] = float(f.get_tensor("w.F32/ü").astype("float64").sum()) if "w.F32/ü" in f.keys() else None
        print(json.dumps(out))
        """
        guard let result = run(python, ["-c", script, path]) else { throw XCTSkip("could not launch \(python)") }
        XCTAssertEqual(result.status, 0, "python failed: \(result.stderr)")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["metadata"] as? [String: String], metadata)
        XCTAssertEqual(json["keys"] as? [String], expected.keys.sorted())
        let tensors = try XCTUnwrap(json["tensors"] as? [String: [String: Any]])
        XCTAssertEqual(Set(tensors.keys), Set(expected.keys))
        for (name, (dtype, shape, data)) in expected {
            XCTAssertEqual(tensors[name]?["dtype"] as? String, dtype.rawValue, name)
            XCTAssertEqual(tensors[name]?["shape"] as? [Int], shape, name)
            XCTAssertEqual(tensors[name]?["hex"] as? String, data.map { String(format: "%02x", $0) }.joined(), name)
        }
        let f32 = try SafeTensorsFile(path: path).doubles("w.F32/ü").reduce(0, +)
        XCTAssertEqual(try XCTUnwrap(json["f32_sum"] as? Double), f32, accuracy: abs(f32) * 1e-12)
    }
}
