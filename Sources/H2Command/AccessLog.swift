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
        var bytes = ByteBuffer()
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
    /// straight into the pending bytes in one go; writes what has gathered once it is large.
    func append(address: SocketAddress?, method: String, path: String, status: Int, length: String?, elapsed: Duration) {
        let tenths = max(0, Int(elapsed / .microseconds(100)))  // no 128-bit division, as `components` does
        let length = length ?? "-"
        let full = shard().pending.withLockedValue { pending -> ByteBuffer? in
            if pending.address != address {
                pending.address = address
                pending.addressText = Array((address?.ipAddress ?? "-").utf8)
            }
            let addressText = pending.addressText
            let most = addressText.count + method.utf8.count + path.utf8.count + length.utf8.count + 64
            pending.bytes.writeWithUnsafeMutableBytes(minimumWritableBytes: most) { space in
                var line = LineWriter(space: space)
                addressText.withUnsafeBufferPointer { line.put($0) }
                line.put(" \"")
                line.put(method)
                line.put(UInt8(ascii: " "))
                line.put(path)
                line.put("\" ")
                line.putDecimal(status)
                line.put(UInt8(ascii: " "))
                line.put(length)
                line.put(UInt8(ascii: " "))
                line.putDecimal(tenths / 10)
                line.put(UInt8(ascii: "."))
                line.putDecimal(tenths % 10)
                line.put("ms\n")
                return line.count
            }
            guard pending.bytes.readableBytes >= Self.flushSize else { return nil }
            defer { pending.bytes.clear() }
            return pending.bytes
        }
        if let full { Self.write(full) }
    }

    /// Writes a line into space reserved for it (the caller reserves enough).
    private struct LineWriter {
        let space: UnsafeMutableRawBufferPointer
        var count = 0

        mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
            (space.baseAddress! + count).copyMemory(from: source, byteCount: bytes.count)
            count += bytes.count
        }

        mutating func put(_ byte: UInt8) {
            space[count] = byte
            count += 1
        }

        mutating func put(_ text: String) {
            if text.utf8.withContiguousStorageIfAvailable({ put($0) }) == nil {
                for byte in text.utf8 { put(byte) }
            }
        }

        /// A non-negative number in decimal.
        mutating func putDecimal(_ value: Int) {
            var digits = 1
            var rest = max(value, 0)
            while rest >= 10 {
                digits += 1
                rest /= 10
            }
            rest = max(value, 0)
            for index in stride(from: count + digits - 1, through: count, by: -1) {
                space[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            count += digits
        }
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
            let lines = shard.pending.withLockedValue { pending -> ByteBuffer in
                defer { pending.bytes.clear() }
                return pending.bytes
            }
            if lines.readableBytes > 0 { Self.write(lines) }
        }
    }

    private static func write(_ bytes: ByteBuffer) {
        writing.lock()
        defer { writing.unlock() }
        bytes.withUnsafeReadableBytes { raw in
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
}
#endif
