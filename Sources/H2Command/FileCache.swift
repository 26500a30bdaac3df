import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore

/// Small files `h2 serve` has read, kept with the head they are answered with. An entry is used only while the file
/// on disk is the same one (device, inode, size and modification time from a `stat` per request, as nginx's
/// `open_file_cache` checks), so an edited or replaced file is read again; a request costs one `stat` instead of
/// `open`, `fstat`, `read` and `close`, and no copy of the bytes.
final class FileCache: Sendable {
    struct Entry: Sendable {
        var device: UInt64
        var inode: UInt64
        var size: Int
        var modified: timespec
        var contents: ByteBuffer
        var headers: HTTPFields

        func matches(_ status: stat) -> Bool {
            UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode && Int(status.st_size) == size
                && status.st_mtim.tv_sec == modified.tv_sec && status.st_mtim.tv_nsec == modified.tv_nsec
        }
    }

    /// Files up to this size are cached (and answered from one read when not).
    static let fileLimit = 64 << 10
    /// At most this many files (so at most 64 MiB of contents).
    static let capacity = 1024

    private let entries = NIOLockedValueBox<[String: Entry]>([:])

    /// The cached file at `path` if it is still the file `status` describes.
    func lookup(_ path: String, _ status: stat) -> Entry? {
        guard let entry = entries.withLockedValue({ $0[path] }), entry.matches(status) else { return nil }
        return entry
    }

    /// Keeps `contents` of the file `status` describes (read after that `fstat`).
    func insert(_ path: String, _ status: stat, contents: ByteBuffer, headers: HTTPFields) {
        let entry = Entry(
            device: UInt64(status.st_dev), inode: UInt64(status.st_ino), size: Int(status.st_size),
            modified: status.st_mtim, contents: contents, headers: headers
        )
        entries.withLockedValue { entries in
            if entries.count >= Self.capacity, entries[path] == nil, let victim = entries.keys.randomElement() {
                entries[victim] = nil
            }
            entries[path] = entry
        }
    }
}
