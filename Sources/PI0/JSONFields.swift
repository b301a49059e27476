// Typed, field-naming access to a parsed JSON object (used by the config readers).
import Foundation
import InputFiles

/// JSONSerialization gives NSNumber for both numbers and booleans (and `0 is Bool` is true on
/// Linux); booleans are the CFBoolean subclass.
func isJSONBool(_ v: Any) -> Bool {
    String(describing: type(of: v)).contains("Boolean") || type(of: v) == Bool.self
}

struct JSONFields {
    private(set) var dict: [String: Any]
    let file: String
    private(set) var seen: Set<String> = []
    var prefix = ""

    init(dict: [String: Any], file: String, prefix: String = "") {
        self.dict = dict; self.file = file; self.prefix = prefix
    }

    var remaining: [String] { dict.keys.filter { !seen.contains($0) } }

    mutating func take(_ key: String) -> Any? {
        seen.insert(key)
        return dict[key]
    }

    private func fail(_ key: String, _ expected: String) -> PI0ConfigError {
        .wrongType(file: file, field: prefix + key, expected: expected)
    }

    mutating func string(_ key: String) throws -> String? {
        guard let v = take(key), !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw fail(key, "a string") }
        return s
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let v = take(key), !(v is NSNull) else { return nil }
        guard isJSONBool(v), let b = v as? Bool else { throw fail(key, "true or false") }
        return b
    }

    mutating func double(_ key: String) throws -> Double? {
        guard let v = take(key), !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, !isJSONBool(v) else { throw fail(key, "a number") }
        let d = n.doubleValue
        guard d.isFinite else { throw fail(key, "a finite number") }
        return d
    }

    mutating func int(_ key: String) throws -> Int? {
        guard let d = try double(key) else { return nil }
        guard d == d.rounded(), abs(d) < 1e15 else { throw fail(key, "an integer") }
        return Int(d)
    }

    mutating func positiveInt(_ key: String) throws -> Int? {
        guard let i = try int(key) else { return nil }
        guard i > 0 else { throw PI0ConfigError.invalidValue(file: file, field: prefix + key, reason: "must be > 0, got \(i)") }
        return i
    }

    mutating func nonNegativeInt(_ key: String) throws -> Int? {
        guard let i = try int(key) else { return nil }
        guard i >= 0 else { throw PI0ConfigError.invalidValue(file: file, field: prefix + key, reason: "must be >= 0, got \(i)") }
        return i
    }

    mutating func intArray(_ key: String) throws -> [Int]? {
        guard let v = take(key), !(v is NSNull) else { return nil }
        guard let a = v as? [Any] else { throw fail(key, "an array of integers") }
        return try a.map { e in
            guard let n = e as? NSNumber, n.doubleValue == n.doubleValue.rounded() else { throw fail(key, "an array of integers") }
            return n.intValue
        }
    }

    mutating func object(_ key: String) throws -> [String: Any]? {
        guard let v = take(key), !(v is NSNull) else { return nil }
        guard let o = v as? [String: Any] else { throw fail(key, "an object") }
        return o
    }

    mutating func nested(_ key: String) throws -> JSONFields? {
        guard let o = try object(key) else { return nil }
        return JSONFields(dict: o, file: file, prefix: prefix + key + ".")
    }

    /// A LeRobot feature map `{name: {"type": ..., "shape": [...]}}`, in the order the names appear in
    /// the JSON text (JSONSerialization loses key order; LeRobot's camera order is the JSON order).
    mutating func features(_ key: String, order data: Data) throws -> [(name: String, feature: PolicyFeature)] {
        guard let o = try object(key) else { return [] }
        var out: [(String, PolicyFeature)] = []
        for (name, v) in o {
            guard let f = v as? [String: Any], let t = f["type"] as? String, let shape = f["shape"] as? [Any] else {
                throw fail("\(key).\(name)", "an object with 'type' and 'shape'")
            }
            guard let kind = PolicyFeature.Kind(rawValue: t) else {
                throw PI0ConfigError.invalidValue(file: file, field: "\(prefix)\(key).\(name).type", reason: "unknown feature type '\(t)'")
            }
            let dims = try shape.map { e -> Int in
                guard let n = e as? NSNumber, n.intValue > 0 else { throw fail("\(key).\(name).shape", "positive integers") }
                return n.intValue
            }
            out.append((name, PolicyFeature(kind: kind, shape: dims)))
        }
        let text = String(decoding: data, as: UTF8.self)
        func position(_ name: String) -> Int {
            guard let r = text.range(of: "\"\(name)\"") else { return Int.max }
            return text.distance(from: text.startIndex, to: r.lowerBound)
        }
        return out.sorted { position($0.0) < position($1.0) }.map { (name: $0.0, feature: $0.1) }
    }
}

/// The bytes of a config file; a FIFO, device or directory is refused without blocking (InputFiles).
func readConfigFile(_ path: String) throws -> Data {
    do { return Data(try InputFile.readAll(path, limit: 64 << 20)) } catch let e as InputFileError {
        throw PI0ConfigError.cannotRead(file: path, reason: e.reason)
    }
}
