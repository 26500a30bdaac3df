#if CLI
import Dispatch
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// `h2 serve`'s access log: one line per request on stderr, gathered and written at most every 100 ms (or once 16 KiB
/// have gathered), as nginx's `access_log … buffer=` does, so that logging costs no write(2) per request. Each thread
/// gathers its own lines (nginx's workers each have their buffer too), so lines from two event loops can be out of
/// order by up to 100 ms.
final class AccessLog: Sendable {
    private struct Pending {
        var bytes: [UInt8] = []
        /// The last client address and its text (`inet_ntop` once per client rather than per request).
        var address: SocketAddress?
        var addressText: [UInt8] = Array("-".utf8)
    }

    /// One thread's lines: each event loop appends to its own (a lock of its own, which only the flush timer shares);
    /// one lock for all made the loops wait on each other, a third of the time the log took.
    private final class Shard: Sendable {
        let pending = NIOLockedValueBox(Pending())
    }

    private let shards = NIOLockedValueBox<[Shard]>([])
    private let shardOfThread = ThreadSpecificVariable<Shard>()
    /// Held while writing, so that one shard's batch is never interleaved with another's on a pipe.
    private static let writing = NIOLock()
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

    /// Adds the line `address "method path" status length elapsed` (`-` for a missing address or length), written
    /// straight into the pending bytes; writes what has gathered once it is large.
    func append(address: SocketAddress?, method: String, path: String, status: Int, length: String?, elapsed: Duration) {
        let full = shard().pending.withLockedValue { pending -> [UInt8]? in
            if pending.address != address {
                pending.address = address
                pending.addressText = Array((address?.ipAddress ?? "-").utf8)
            }
            pending.bytes.append(contentsOf: pending.addressText)
            pending.bytes.append(contentsOf: " \"".utf8)
            pending.bytes.append(contentsOf: method.utf8)
            pending.bytes.append(UInt8(ascii: " "))
            pending.bytes.append(contentsOf: path.utf8)
            pending.bytes.append(contentsOf: "\" ".utf8)
            Self.appendDecimal(status, to: &pending.bytes)
            pending.bytes.append(UInt8(ascii: " "))
            pending.bytes.append(contentsOf: (length ?? "-").utf8)
            pending.bytes.append(UInt8(ascii: " "))
            let tenths = Self.tenthsOfMilliseconds(elapsed)
            Self.appendDecimal(tenths / 10, to: &pending.bytes)
            pending.bytes.append(UInt8(ascii: "."))
            Self.appendDecimal(tenths % 10, to: &pending.bytes)
            pending.bytes.append(contentsOf: "ms\n".utf8)
            guard pending.bytes.count >= Self.flushSize else { return nil }
            defer { pending.bytes.removeAll(keepingCapacity: true) }
            return pending.bytes
        }
        if let full { Self.write(full) }
    }

    private static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        guard value >= 10 else { return bytes.append(UInt8(ascii: "0") + UInt8(max(value, 0))) }
        appendDecimal(value / 10, to: &bytes)
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    /// This thread's shard (made on its first line).
    private func shard() -> Shard {
        if let shard = shardOfThread.currentValue { return shard }
        let shard = Shard()
        shardOfThread.currentValue = shard
        shards.withLockedValue { $0.append(shard) }
        return shard
    }

    /// Writes what has gathered (the timer, and the server's stop).
    func flush() {
        for shard in shards.withLockedValue({ $0 }) {
            let lines = shard.pending.withLockedValue { pending -> [UInt8] in
                defer { pending.bytes.removeAll(keepingCapacity: true) }
                return pending.bytes
            }
            if !lines.isEmpty { Self.write(lines) }
        }
    }

    private static func write(_ bytes: [UInt8]) {
        writing.lock()
        defer { writing.unlock() }
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

    /// Tenths of a millisecond, as `%.1f` rounds them down.
    static func tenthsOfMilliseconds(_ duration: Duration) -> Int {
        Int((duration.components.seconds * 10_000) + duration.components.attoseconds / 100_000_000_000_000)
    }
}
#endif
