// SafeTensorsHeader.swift — turns the header bytes of a safetensors file into validated tensor infos.
//
// The rules mirror `SafeTensors::read_metadata` / `Metadata::validate` of the reference Rust crate
// (huggingface/safetensors, safetensors/src/tensor.rs):
//   * header: UTF-8, one JSON object (trailing whitespace allowed, it is how writers pad to 8 bytes);
//   * `__metadata__`: optional object (or null) of string -> string;
//   * every other key is a tensor: an object with "dtype" (string), "shape" (array of non-negative
//     integers) and "data_offsets" ([begin, end], non-negative integers); unknown extra fields are ignored
//     like serde does; numbers must be plain integers that fit in Int ("1.0", "1e3", "-1" are rejected);
//   * product(shape) * dtype size is computed with overflow checks and must equal end - begin;
//   * begin <= end <= data section size; tensors may not share bytes;
//   * coverage: the reference crate requires the tensors to tile the data section exactly (no hole, no
//     trailing byte). We do the same by default (a hole usually means a corrupt or hand-edited file) and
//     report `uncoveredData`; `allowUncoveredData: true` accepts holes and trailing bytes (overlap is
//     always an error). Strict mode also pins empty tensors to tensor boundaries, as the reference does.
// Stricter than the reference: duplicate keys, in the header or in __metadata__ (serde silently keeps the
// last one), are errors. Checked against safetensors 0.8.0 (Python): it also accepts leading whitespace,
// `"__metadata__": null`, unknown extra fields in an entry, and an empty tensor name, and so do we.

struct ParsedHeader {
    var metadata: [String: String]
    var tensors: [String: SafeTensorInfo]
}

/// Parses and validates the `headerLength` header bytes. `dataSize` is the size of the data section.
func parseSafeTensorsHeader(
    file: String, header: UnsafeRawBufferPointer, dataSize: Int, allowUncoveredData: Bool
) throws -> ParsedHeader {
    if let bad = firstInvalidUTF8Offset(header) {
        throw SafeTensorsError.invalidHeader(file: file, reason: "header is not valid UTF-8 (byte \(bad) of the header)")
    }
    let root: JSONValue
    do {
        root = try HeaderJSONParser.parse(header)
    } catch {
        throw SafeTensorsError.invalidHeader(
            file: file, reason: "invalid JSON at byte \(error.offset) of the header: \(error.message)")
    }
    guard case .object(let members) = root else {
        throw SafeTensorsError.invalidHeader(file: file, reason: "header is JSON \(root.kind), not an object")
    }

    var metadata: [String: String] = [:]
    var sawMetadata = false
    var tensors: [String: SafeTensorInfo] = [:]
    tensors.reserveCapacity(members.count)
    for member in members {
        let key = member.key, value = member.value
        if key == "__metadata__" {
            guard !sawMetadata else { throw SafeTensorsError.invalidMetadata(file: file, key: "", reason: "appears more than once") }
            sawMetadata = true
            metadata = try parseMetadata(file: file, value)
            continue
        }
        guard tensors[key] == nil else { throw SafeTensorsError.duplicateTensor(file: file, tensor: key) }
        tensors[key] = try parseTensorEntry(file: file, name: key, value, dataSize: dataSize)
    }
    try checkLayout(file: file, tensors: Array(tensors.values), dataSize: dataSize, allowUncoveredData: allowUncoveredData)
    return ParsedHeader(metadata: metadata, tensors: tensors)
}

private func parseMetadata(file: String, _ value: JSONValue) throws -> [String: String] {
    switch value {
    case .null:
        return [:]  // serde reads `Option<HashMap>` from null as None.
    case .object(let members):
        var out: [String: String] = [:]
        for member in members {
            let k = member.key, v = member.value
            guard case .string(let s) = v else {
                throw SafeTensorsError.invalidMetadata(file: file, key: k, reason: "value is \(v.kind), not a string")
            }
            guard out[k] == nil else { throw SafeTensorsError.invalidMetadata(file: file, key: k, reason: "duplicate key") }
            out[k] = s
        }
        return out
    default:
        throw SafeTensorsError.invalidMetadata(file: file, key: "", reason: "is \(value.kind), not an object")
    }
}

/// A JSON number that is a plain non-negative integer fitting in Int, else nil.
private func exactNonNegativeInt(_ value: JSONValue) -> Int? {
    guard case .number(let text) = value, !text.isEmpty,
          text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
    return Int(text)  // nil on overflow; the JSON grammar already excluded leading zeros.
}

private func parseTensorEntry(file: String, name: String, _ value: JSONValue, dataSize: Int) throws -> SafeTensorInfo {
    func bad(_ reason: String) -> SafeTensorsError { .invalidTensorEntry(file: file, tensor: name, reason: reason) }
    guard case .object(let fields) = value else { throw bad("entry is \(value.kind), not an object") }
    var dtypeValue: JSONValue?, shapeValue: JSONValue?, offsetsValue: JSONValue?
    for field in fields {
        let k = field.key, v = field.value
        switch k {
        case "dtype": guard dtypeValue == nil else { throw bad("duplicate field 'dtype'") }; dtypeValue = v
        case "shape": guard shapeValue == nil else { throw bad("duplicate field 'shape'") }; shapeValue = v
        case "data_offsets": guard offsetsValue == nil else { throw bad("duplicate field 'data_offsets'") }; offsetsValue = v
        default: continue  // unknown fields are ignored, as serde does in the reference crate
        }
    }
    guard let dtypeValue else { throw bad("missing field 'dtype'") }
    guard let shapeValue else { throw bad("missing field 'shape'") }
    guard let offsetsValue else { throw bad("missing field 'data_offsets'") }

    guard case .string(let dtypeText) = dtypeValue else { throw bad("'dtype' is \(dtypeValue.kind), not a string") }
    guard let dtype = SafeTensorsDType(rawValue: dtypeText) else {
        throw SafeTensorsError.unknownDType(file: file, tensor: name, dtype: dtypeText)
    }

    guard case .array(let dims) = shapeValue else { throw bad("'shape' is \(shapeValue.kind), not an array") }
    var shape: [Int] = []
    shape.reserveCapacity(dims.count)
    for (i, d) in dims.enumerated() {
        guard let n = exactNonNegativeInt(d) else {
            throw bad("shape[\(i)] = \(describe(d)) is not a non-negative integer that fits in Int")
        }
        shape.append(n)
    }

    guard case .array(let offsets) = offsetsValue else {
        throw bad("'data_offsets' is \(offsetsValue.kind), not an array")
    }
    guard offsets.count == 2 else { throw bad("'data_offsets' has \(offsets.count) entries, expected 2") }
    guard let begin = exactNonNegativeInt(offsets[0]) else {
        throw bad("data_offsets[0] = \(describe(offsets[0])) is not a non-negative integer that fits in Int")
    }
    guard let end = exactNonNegativeInt(offsets[1]) else {
        throw bad("data_offsets[1] = \(describe(offsets[1])) is not a non-negative integer that fits in Int")
    }
    guard begin <= end else { throw SafeTensorsError.invalidOffsets(file: file, tensor: name, begin: begin, end: end) }
    guard end <= dataSize else {
        throw SafeTensorsError.offsetsOutOfRange(file: file, tensor: name, begin: begin, end: end, dataSize: dataSize)
    }
    guard let expected = checkedByteCount(shape, dtype), expected == end - begin else {
        throw SafeTensorsError.sizeMismatch(file: file, tensor: name, shape: shape, dtype: dtype, byteCount: end - begin)
    }
    return SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataOffset: begin, byteCount: end - begin)
}

private func describe(_ v: JSONValue) -> String {
    switch v {
    case .number(let text): return text
    case .string(let s): return "\"\(s)\""
    default: return v.kind
    }
}

/// Overlap (always an error) and coverage (an error unless allowed) of the data section.
/// Strict mode follows the reference crate's walk exactly: sorted by offsets, each tensor must begin where
/// the previous one ended, which also pins empty tensors to tensor boundaries (an empty tensor "inside"
/// another is reported as overlapping it). Lenient mode ignores empty tensors (they occupy no bytes).
private func checkLayout(file: String, tensors: [SafeTensorInfo], dataSize: Int, allowUncoveredData: Bool) throws {
    // Sort by (begin, end, name) so the report is deterministic whatever the header order was.
    let sorted = tensors.sorted {
        ($0.dataOffset, $0.byteCount, $0.name) < ($1.dataOffset, $1.byteCount, $1.name)
    }
    var coveredUpTo = 0
    var previous = ""
    for t in sorted {
        if t.byteCount == 0 && allowUncoveredData { continue }
        if t.dataOffset < coveredUpTo {
            throw SafeTensorsError.overlappingTensors(file: file, first: previous, second: t.name)
        }
        if t.dataOffset > coveredUpTo && !allowUncoveredData {
            throw SafeTensorsError.uncoveredData(file: file, begin: coveredUpTo, end: t.dataOffset, previous: previous)
        }
        coveredUpTo = t.dataOffset + t.byteCount
        previous = t.name
    }
    if coveredUpTo < dataSize && !allowUncoveredData {
        throw SafeTensorsError.uncoveredData(file: file, begin: coveredUpTo, end: dataSize, previous: previous)
    }
}
