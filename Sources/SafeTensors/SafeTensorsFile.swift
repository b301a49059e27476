// SafeTensorsFile.swift — a read-only, memory-mapped safetensors file.
//
// Layout (huggingface/safetensors README): 8-byte little-endian u64 N, N bytes of UTF-8 JSON header, then
// the data section; `data_offsets` are relative to the data section start. Opening maps the whole file
// with mmap(PROT_READ, MAP_PRIVATE) and parses only the header, so a multi-GB checkpoint opens in
// microseconds and only the pages of tensors actually read are faulted in. All validation happens in
// `init` (see SafeTensorsHeader.swift), so after a successful open every accessor is in bounds.
//
// Caveat inherent to mmap: if another process truncates the file while it is mapped, touching the lost
// pages raises SIGBUS. Checkpoints are not expected to change under a running policy.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import InputFiles

public final class SafeTensorsFile: @unchecked Sendable {
    // @unchecked Sendable: every stored property is immutable after init and the mapping is read-only.

    /// Header lengths above this are rejected, as in the reference crate (MAX_HEADER_SIZE).
    public static let maxHeaderLength = 100_000_000

    public let path: String
    /// The string -> string map stored under `__metadata__` (empty when absent or null).
    public let metadata: [String: String]
    /// N, the JSON header length in bytes (including any padding).
    public let headerLength: Int
    /// Absolute file offset of the data section (8 + N).
    public let dataStart: Int
    /// Size of the data section in bytes.
    public let dataSize: Int

    private let base: UnsafeRawPointer
    private let mappedLength: Int
    private let table: [String: SafeTensorInfo]
    private let sortedInfos: [SafeTensorInfo]

    /// Opens and validates `path` with the reference crate's strict coverage rule.
    public convenience init(path: String) throws {
        try self.init(path: path, allowUncoveredData: false)
    }

    /// Opens and validates `path`. With `allowUncoveredData`, data bytes that belong to no tensor (holes
    /// or trailing bytes, which the reference crate rejects) are tolerated; overlap is always an error.
    public init(path: String, allowUncoveredData: Bool) throws {
        self.path = path
        // A FIFO, device or directory is refused before any blocking open or read (InputFiles).
        let fd: Int32, fileSize: Int
        do { (fd, fileSize) = try InputFile.openRegular(path) } catch let e as InputFileError {
            throw SafeTensorsError.cannotOpen(file: path, reason: e.reason)
        }
        defer { close(fd) }
        guard fileSize >= 8 else {
            throw SafeTensorsError.truncated(
                file: path, reason: "file is \(fileSize) bytes, shorter than the 8-byte header length prefix")
        }
        guard let mapping = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), mapping != MAP_FAILED else {
            throw SafeTensorsError.cannotOpen(file: path, reason: "mmap failed: \(Self.errnoText())")
        }
        let base = UnsafeRawPointer(mapping)
        // From here on, any throw must unmap: deinit does not run for a partially initialised object.
        do {
            let n = base.loadUnaligned(as: UInt64.self).littleEndian
            guard n <= UInt64(Self.maxHeaderLength) else {
                throw SafeTensorsError.headerTooLarge(file: path, headerLength: n, limit: Self.maxHeaderLength)
            }
            let headerLength = Int(n)
            guard headerLength <= fileSize - 8 else {
                throw SafeTensorsError.truncated(
                    file: path, reason: "header length \(headerLength) exceeds the \(fileSize - 8) bytes after the prefix")
            }
            let header = UnsafeRawBufferPointer(start: base + 8, count: headerLength)
            let parsed = try parseSafeTensorsHeader(
                file: path, header: header, dataSize: fileSize - 8 - headerLength, allowUncoveredData: allowUncoveredData)
            self.headerLength = headerLength
            self.dataStart = 8 + headerLength
            self.dataSize = fileSize - 8 - headerLength
            self.metadata = parsed.metadata
            self.table = parsed.tensors
            self.sortedInfos = parsed.tensors.values.sorted { $0.name < $1.name }
        } catch {
            munmap(mapping, fileSize)
            throw error
        }
        self.base = base
        self.mappedLength = fileSize
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), mappedLength)
    }

    /// Drops the mapping's pages from this process's resident memory (madvise MADV_DONTNEED). The data
    /// stays readable: pages are read back from the file on the next access. Call after weights have
    /// been copied into packed buffers, so a checkpoint is not held twice.
    public func releaseResidentPages() {
        #if os(Linux)
        _ = madvise(UnsafeMutableRawPointer(mutating: base), mappedLength, Int32(MADV_DONTNEED))
        #else
        _ = madvise(UnsafeMutableRawPointer(mutating: base), mappedLength, MADV_DONTNEED)
        #endif
    }

    /// Like `releaseResidentPages()`, for the pages holding one tensor (rounded out to whole pages).
    public func releaseResidentPages(of name: String) {
        guard let info = table[name], info.byteCount > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = dataStart + info.dataOffset, end = start + info.byteCount
        let lo = start / page * page, hi = min(mappedLength, (end + page - 1) / page * page)
        guard hi > lo else { return }
        #if os(Linux)
        _ = madvise(UnsafeMutableRawPointer(mutating: base + lo), hi - lo, Int32(MADV_DONTNEED))
        #else
        _ = madvise(UnsafeMutableRawPointer(mutating: base + lo), hi - lo, MADV_DONTNEED)
        #endif
    }

    private static func errnoText() -> String {
        let code = errno
        return "\(String(cString: strerror(code))) (errno \(code))"
    }

    // MARK: - Directory

    /// Tensor names, sorted (Swift String order, i.e. by Unicode scalar values for ASCII names).
    public var names: [String] { sortedInfos.map(\.name) }

    /// All tensor infos, sorted by name.
    public var infos: [SafeTensorInfo] { sortedInfos }

    public func contains(_ name: String) -> Bool { table[name] != nil }

    public func info(_ name: String) throws -> SafeTensorInfo {
        guard let info = table[name] else { throw SafeTensorsError.missingTensor(file: path, tensor: name) }
        return info
    }

    /// The tensor's bytes inside the mapping (little-endian elements). Valid only while `self` is alive.
    /// The pointer is NOT necessarily aligned for the element type (files from other writers need not
    /// align tensors), so read elements with `loadUnaligned` or use the typed accessors.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let info = try info(name)
        return rawBytes(info)
    }

    func rawBytes(_ info: SafeTensorInfo) -> UnsafeRawBufferPointer {
        // Offsets were validated against the data section size in init.
        UnsafeRawBufferPointer(start: base + dataStart + info.dataOffset, count: info.byteCount)
    }
}
