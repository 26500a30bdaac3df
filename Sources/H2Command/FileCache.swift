import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NGHTTP2Async

/// Small files `h2 serve` has read, kept with the head they are answered with. An entry is used only while the file
/// on disk is the same one (device, inode, size and modification time from a `stat`, as nginx's `open_file_cache`
/// checks), so an edited or replaced file is read again; a request costs at most one `stat` instead of `open`,
/// `fstat`, `read` and `close`, and no copy of the bytes.
///
/// A check holds for every request that arrived before it was made: a request whose
/// ``ServerSession/Request/receivedAt`` is no later than the last check of its path is answered from that check
/// (``checkedEntry(path:receivedAt:)``). Requests that one read brought share one `stat`, and a request that arrives
/// after an edit is never answered with what the edit replaced. Each thread keeps its own checks.
final class FileCache: Sendable {
    /// A file's contents and head (a class: a check or an answer holds it with one reference count).
    final class Entry: Sendable {
        let device: UInt64
        let inode: UInt64
        let size: Int
        let modified: timespec
        let contents: ByteBuffer
        let headers: HTTPFields
        /// The answers to a GET and to a HEAD, built once.
        let get: ServerSession.Response
        let head: ServerSession.Response

        init(_ status: stat, contents: ByteBuffer, headers: HTTPFields) {
            device = UInt64(status.st_dev)
            inode = UInt64(status.st_ino)
            size = Int(status.st_size)
            modified = status.st_mtim
            self.contents = contents
            self.headers = headers
            get = ServerSession.Response(headers: headers, body: .bytes(contents))
            head = ServerSession.Response(headers: headers)
        }

        /// The answer to `method` (GET or HEAD).
        func response(to method: HTTPRequest.Method) -> ServerSession.Response { method == .head ? head : get }

        func matches(_ status: stat) -> Bool {
            UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode && Int(status.st_size) == size
                && status.st_mtim.tv_sec == modified.tv_sec && status.st_mtim.tv_nsec == modified.tv_nsec
        }
    }

    /// Files up to this size are cached (and answered from one read when not).
    static let fileLimit = 64 << 10
    /// At most this many files (so at most 64 MiB of contents).
    static let capacity = 1024

    private struct Check {
        var entry: Entry
        /// Read from the clock before the `stat` that found `entry` current.
        var checkedAt: ContinuousClock.Instant
    }

    /// One thread's last check of each request path (the `:path`, before it was resolved to a file); only that thread
    /// touches it, so an event loop's lookups take no lock.
    private final class Checks: @unchecked Sendable {
        var byPath: [String: Check] = [:]
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    private let checksOfThread = ThreadSpecificVariable<Checks>()

    /// This thread's checks.
    private var checks: Checks {
        if let checks = checksOfThread.currentValue { return checks }
        let checks = Checks()
        checksOfThread.currentValue = checks
        return checks
    }

    /// The cached file at `path` if it is still the file `status` describes.
    func lookup(_ path: String, _ status: stat) -> Entry? {
        guard let entry = entries.withLockedValue({ $0[path] }), entry.matches(status) else { return nil }
        return entry
    }

    /// The entry a check of the request path `path` found current, if that check began no earlier than
    /// `receivedAt`: then it was made after the request arrived, and holds for it.
    func checkedEntry(path: String, receivedAt: ContinuousClock.Instant) -> Entry? {
        guard let check = checks.byPath[path], receivedAt <= check.checkedAt else { return nil }
        return check.entry
    }

    /// Notes that a check of the request path `path`, begun at `checkedAt` (before its `stat`), found `entry` current.
    func noteChecked(path: String, entry: Entry, at checkedAt: ContinuousClock.Instant) {
        let checks = self.checks
        if checks.byPath.count >= Self.capacity, checks.byPath[path] == nil, let victim = checks.byPath.keys.randomElement() {
            checks.byPath[victim] = nil
        }
        checks.byPath[path] = Check(entry: entry, checkedAt: checkedAt)
    }

    /// Keeps `contents` of the file `status` describes (read after that `fstat`).
    func insert(_ path: String, _ status: stat, contents: ByteBuffer, headers: HTTPFields) {
        let entry = Entry(status, contents: contents, headers: headers)
        entries.withLockedValue { entries in
            if entries.count >= Self.capacity, entries[path] == nil, let victim = entries.keys.randomElement() {
                entries[victim] = nil
            }
            entries[path] = entry
        }
    }
}
