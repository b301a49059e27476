// HeaderEncoding.swift — builds the 8-byte length prefix and the JSON header for both writers.
//
// Matches what the reference crate (`prepare` in safetensors/src/tensor.rs, used by the Python package)
// emits: compact JSON, `__metadata__` first (only when non-empty), then the tensors in data order, each as
// {"dtype":..,"shape":[..],"data_offsets":[begin,end]}, and the header padded with spaces to a multiple of
// 8 bytes so the data section starts 8-byte aligned. Metadata keys are written sorted so output is
// byte-for-byte reproducible.

/// One tensor as laid out by a writer.
struct PlannedTensor {
    let name: String
    let dtype: SafeTensorsDType
    let shape: [Int]
    let begin: Int
    let end: Int
}

/// Validates a tensor declaration for writing; returns its byte count.
func validateForWriting(file: String, name: String, dtype: SafeTensorsDType, shape: [Int]) throws -> Int {
    guard name != "__metadata__" else {
        throw SafeTensorsError.invalidArgument(file: file, tensor: name, reason: "'__metadata__' is reserved for the metadata map")
    }
    if let i = shape.firstIndex(where: { $0 < 0 }) {
        throw SafeTensorsError.invalidArgument(file: file, tensor: name, reason: "shape \(shape) has negative dimension \(i)")
    }
    guard let bytes = checkedByteCount(shape, dtype) else {
        throw SafeTensorsError.invalidArgument(file: file, tensor: name, reason: "shape \(shape) of \(dtype.rawValue) overflows Int bytes")
    }
    return bytes
}

/// Appends `s` as a JSON string literal (quotes included). Non-ASCII text is written as raw UTF-8.
func appendJSONString(_ s: String, to out: inout [UInt8]) {
    let hex: [UInt8] = Array("0123456789abcdef".utf8)
    out.append(UInt8(ascii: "\""))
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
        case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
        case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        case 0..<0x20:
            out.append(contentsOf: Array("\\u00".utf8))
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0xF)])
        default: out.append(b)
        }
    }
    out.append(UInt8(ascii: "\""))
}

/// The complete file prefix: u64 little-endian N followed by the N-byte padded header.
func encodeSafeTensorsHeader(_ tensors: [PlannedTensor], metadata: [String: String]) -> [UInt8] {
    var json: [UInt8] = [UInt8(ascii: "{")]
    var first = true
    func separator() {
        if !first { json.append(UInt8(ascii: ",")) }
        first = false
    }
    if !metadata.isEmpty {
        separator()
        appendJSONString("__metadata__", to: &json)
        json.append(contentsOf: Array(":{".utf8))
        for (i, key) in metadata.keys.sorted().enumerated() {
            if i > 0 { json.append(UInt8(ascii: ",")) }
            appendJSONString(key, to: &json)
            json.append(UInt8(ascii: ":"))
            appendJSONString(metadata[key]!, to: &json)
        }
        json.append(UInt8(ascii: "}"))
    }
    for t in tensors {
        separator()
        appendJSONString(t.name, to: &json)
        json.append(contentsOf: Array(":{\"dtype\":".utf8))
        appendJSONString(t.dtype.rawValue, to: &json)
        json.append(contentsOf: Array(",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))]".utf8))
        json.append(contentsOf: Array(",\"data_offsets\":[\(t.begin),\(t.end)]}".utf8))
    }
    json.append(UInt8(ascii: "}"))
    let padding = (8 - json.count % 8) % 8
    json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
    var out: [UInt8] = []
    out.reserveCapacity(8 + json.count)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: json)
    return out
}
