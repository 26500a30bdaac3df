/// How a fuzz input is cut into `receive` calls.
///
/// The first byte picks the chunk size, the rest is the payload. The split matters: libnghttp2 1.52's Debian
/// backport counts CONTINUATION frames per `mem_recv` call that sees part of one's header, so the same bytes can
/// pass in 4 KiB reads and fail in 1-byte reads.
public struct FuzzInput {
    /// The sizes the first byte chooses from (`byte % count`); `Int.max` is the whole payload in one call.
    public static let chunkSizes = [1, 2, 3, 7, 16, 64, 512, 4096, Int.max]

    /// The bytes after the first.
    public let payload: UnsafeRawBufferPointer
    /// How many bytes each `receive` gets (the last chunk may be shorter).
    public let chunkSize: Int

    /// Splits `start..<start+count`; nil for an empty input.
    public init?(_ start: UnsafeRawPointer?, _ count: Int) {
        guard let start, count > 0 else { return nil }
        let bytes = UnsafeRawBufferPointer(start: start, count: count)
        chunkSize = Self.chunkSizes[Int(bytes[0]) % Self.chunkSizes.count]
        payload = UnsafeRawBufferPointer(rebasing: bytes[1...])
    }

    /// Calls `body` with consecutive chunks of `prefix + payload`; stops when it returns false.
    public func forEachChunk(prefix: [UInt8] = [], _ body: (UnsafeRawBufferPointer) -> Bool) {
        var bytes = prefix
        bytes.append(contentsOf: payload)
        bytes.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let end = all.count - offset <= chunkSize ? all.count : offset + chunkSize
                if !body(UnsafeRawBufferPointer(rebasing: all[offset..<end])) { return }
                offset = end
            }
        }
    }
}

/// The 24-byte client connection preface (RFC 9113 §3.4).
public let clientMagic: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

/// A check that holds for every input; a failure is a bug that libFuzzer reports as a crash.
@inline(__always)
public func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition() { fatalError("invariant: \(message())", file: file, line: line) }
}
