#if CLI
import Dispatch
import Foundation
import NIOConcurrencyHelpers

/// `h2 serve`'s access log: one line per request on stderr, gathered and written at most every 100 ms (or once 16 KiB
/// have gathered), as nginx's `access_log … buffer=` does, so that logging costs no write(2) per request.
final class AccessLog: Sendable {
    private let pending = NIOLockedValueBox<[UInt8]>([])
    /// Set once in `init`; a dispatch source may be cancelled from any thread.
    nonisolated(unsafe) private let timer: any DispatchSourceTimer
    static let flushSize = 16 << 10

    init() {
        timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100))
        timer.setEventHandler { [weak self] in self?.flush() }
        timer.resume()
    }

    deinit { timer.cancel() }

    /// Adds a line; writes what has gathered once it is large.
    func append(_ line: String) {
        let full = pending.withLockedValue { pending -> [UInt8]? in
            pending.append(contentsOf: line.utf8)
            pending.append(UInt8(ascii: "\n"))
            guard pending.count >= Self.flushSize else { return nil }
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        if let full { Self.write(full) }
    }

    /// Writes what has gathered (the timer, and the server's stop).
    func flush() {
        let lines = pending.withLockedValue { pending -> [UInt8] in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        if !lines.isEmpty { Self.write(lines) }
    }

    private static func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Foundation.write(2, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    /// Milliseconds with one decimal, as `%.1f` prints them (without a format string per line).
    static func milliseconds(_ duration: Duration) -> String {
        let tenths = (duration.components.seconds * 10_000) + duration.components.attoseconds / 100_000_000_000_000
        return "\(tenths / 10).\(tenths % 10)ms"
    }
}
#endif
