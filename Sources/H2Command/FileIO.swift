import Foundation
import NIOCore

/// File reads and writes straight between a descriptor and a `ByteBuffer`'s storage, with no intermediate `Data`:
/// the bodies `h2` streams from and to files (uploads, downloads, served files) are copied once.
enum FileIO {
    /// Reads up to `count` bytes with read(2) into `buffer`; returns how many (0 at the end of the file).
    /// - Throws: `POSIXError` on a read error, so that a body is failed rather than cut short.
    static func read(_ descriptor: Int32, into buffer: inout ByteBuffer, upTo count: Int) throws -> Int {
        while true {
            var result = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: max(count, 1)) { bytes in
                result = Glibc.read(descriptor, bytes.baseAddress, min(count, bytes.count))
                return max(0, result)
            }
            if result < 0, errno == EINTR { continue }
            guard result >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            return result
        }
    }

    /// Writes all of `chunk` to `descriptor`.
    /// - Throws: `POSIXError` on a write error.
    static func write(_ chunk: ByteBuffer, to descriptor: Int32) throws {
        try chunk.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                offset += written
            }
        }
    }
}
