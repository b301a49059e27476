// SafeTensorsStreamWriter.swift — writes a safetensors file of any size with bounded memory.
//
// All tensor declarations are given up front, so the header (offsets included) is written first; the
// data then follows in exactly the order of `entries` (no reordering: the caller decides the layout; to
// get every tensor aligned for its dtype, order entries by dtype size, largest first, as
// `SafeTensorsWriter` and the reference crate do). Each tensor's bytes may arrive in several `write`
// calls (chunks), but tensors must be completed in entry order; tensors with zero bytes need no call.
// Misuse (unknown name, out of order, too many bytes, unfinished tensors at `finish`) throws
// `invalidArgument` before anything is written for that call. The output goes to a temporary file that
// `finish` renames to `path`; a writer dropped without `finish` removes its temporary file.

public final class SafeTensorsStreamWriter {
    public let path: String
    private let planned: [PlannedTensor]
    private var sink: FileSink?
    private var current = 0          // index of the tensor being written
    private var writtenInCurrent = 0 // bytes of it written so far

    public init(
        path: String, entries: [(name: String, dtype: SafeTensorsDType, shape: [Int])], metadata: [String: String] = [:]
    ) throws {
        self.path = path
        var seen: Set<String> = []
        var planned: [PlannedTensor] = []
        var offset = 0
        for e in entries {
            let bytes = try validateForWriting(file: path, name: e.name, dtype: e.dtype, shape: e.shape)
            guard seen.insert(e.name).inserted else { throw SafeTensorsError.duplicateTensor(file: path, tensor: e.name) }
            let (end, overflow) = offset.addingReportingOverflow(bytes)
            guard !overflow else {
                throw SafeTensorsError.invalidArgument(file: path, tensor: e.name, reason: "total data size overflows Int")
            }
            planned.append(PlannedTensor(name: e.name, dtype: e.dtype, shape: e.shape, begin: offset, end: end))
            offset = end
        }
        self.planned = planned
        let sink = try FileSink(path: path)
        try sink.write(encodeSafeTensorsHeader(planned, metadata: metadata))
        self.sink = sink
        skipEmptyTensors()
    }

    /// The tensor the next `write` must belong to, or nil when all data has been written.
    public var nextTensor: String? { current < planned.count ? planned[current].name : nil }

    /// Appends bytes of tensor `name` (a whole tensor or the next chunk of it).
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws {
        guard let sink else {
            throw SafeTensorsError.invalidArgument(file: path, tensor: name, reason: "writer already finished or failed")
        }
        guard current < planned.count else {
            throw SafeTensorsError.invalidArgument(file: path, tensor: name, reason: "all tensors are already complete")
        }
        let t = planned[current]
        if bytes.isEmpty && t.name != name && planned.contains(where: { $0.name == name && $0.begin == $0.end }) {
            return  // an explicit empty write for a zero-byte tensor (already skipped) is harmless
        }
        guard t.name == name else {
            let known = planned.contains { $0.name == name }
            let reason = known
                ? "written out of order: tensor '\(t.name)' is next (\(writtenInCurrent) of \(t.end - t.begin) bytes written)"
                : "not declared in the entries of this writer"
            throw SafeTensorsError.invalidArgument(file: path, tensor: name, reason: reason)
        }
        let remaining = t.end - t.begin - writtenInCurrent
        guard bytes.count <= remaining else {
            throw SafeTensorsError.invalidArgument(
                file: path, tensor: name,
                reason: "\(bytes.count) bytes given but only \(remaining) of \(t.end - t.begin) remain")
        }
        do {
            try sink.write(bytes)
        } catch {
            self.sink = nil  // the temporary file is removed when the sink is released
            throw error
        }
        writtenInCurrent += bytes.count
        if writtenInCurrent == t.end - t.begin {
            current += 1
            writtenInCurrent = 0
            skipEmptyTensors()
        }
    }

    /// Convenience for `[UInt8]` and other contiguous byte collections.
    public func write(_ name: String, bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write(name, bytes: $0) }
    }

    /// Checks every tensor is complete, flushes, and renames the file into place.
    public func finish() throws {
        guard let sink else {
            throw SafeTensorsError.invalidArgument(file: path, tensor: "", reason: "writer already finished or failed")
        }
        if current < planned.count {
            let t = planned[current]
            throw SafeTensorsError.invalidArgument(
                file: path, tensor: t.name,
                reason: "finish() called with \(writtenInCurrent) of \(t.end - t.begin) bytes of this tensor written "
                    + "and \(planned.count - current - 1) more tensor(s) pending")
        }
        self.sink = nil
        try sink.commit()
    }

    private func skipEmptyTensors() {
        while current < planned.count && planned[current].begin == planned[current].end { current += 1 }
    }
}
