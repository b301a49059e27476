// SIGINT/SIGTERM as an async stream, with no window in which a signal is lost.
//
// A dispatch signal source is armed asynchronously (libdispatch registers it on its manager thread
// after `resume()`), and the signal must be ignored before that for the source to see it: a signal
// that arrives in between is dropped, and a server that announced itself waits forever. Here a plain
// `sigaction` handler, installed synchronously, writes the signal number into a pipe (`write` is
// async-signal-safe); a dispatch read source drains the pipe, so a signal that arrives before the
// source is armed waits in the pipe instead of being lost.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// The write end of the signal pipe, set once before any handler is installed.
nonisolated(unsafe) private var signalPipeWrite: Int32 = -1

final class SignalWatch: @unchecked Sendable {
    let signals: AsyncStream<Int32>
    private let source: DispatchSourceRead
    private let readEnd: Int32, writeEnd: Int32
    private let watched: [Int32]

    /// Starts watching `watched` (their handlers are installed before this returns).
    init(_ watched: [Int32]) {
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0, "pipe() failed for the signal watch")
        readEnd = fds[0]; writeEnd = fds[1]
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(writeEnd, F_SETFL, fcntl(writeEnd, F_GETFL) | O_NONBLOCK)
        signalPipeWrite = writeEnd
        self.watched = watched
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        signals = stream
        source = DispatchSource.makeReadSource(fileDescriptor: readEnd, queue: .global())
        let fd = readEnd
        source.setEventHandler {
            var byte: UInt8 = 0
            while read(fd, &byte, 1) == 1 { continuation.yield(Int32(byte)) }
        }
        source.resume()
        for sig in watched {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = { sig in
                var b = UInt8(truncatingIfNeeded: sig)
                _ = write(signalPipeWrite, &b, 1)
            }
            #else
            action.__sigaction_u.__sa_handler = { sig in
                var b = UInt8(truncatingIfNeeded: sig)
                _ = write(signalPipeWrite, &b, 1)
            }
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
    }

    /// Restores the default actions and closes the pipe.
    func stop() {
        for sig in watched { signal(sig, SIG_DFL) }
        source.cancel()
        close(readEnd); close(writeEnd)
    }
}
