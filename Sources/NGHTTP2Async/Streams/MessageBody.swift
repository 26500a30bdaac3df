public import NIOCore
public import HTTPTypes

/// The body of a message this side sends: none, bytes, an `AsyncSequence` of chunks, or written by a closure.
///
/// Sending never fails because a flow-control window is full: a streaming body's writer simply waits until the
/// stream and connection windows (and the socket) take more.
public struct MessageBody: Sendable {
    enum Storage: Sendable {
        case empty
        case bytes(ByteBuffer, trailers: HTTPFields?)
        /// Kept as the string until it is sent: its UTF-8 goes straight into DATA frames (no buffer to allocate).
        case text(String, trailers: HTTPFields?)
        case writer(@Sendable (BodyWriter) async throws -> Void)
    }

    let storage: Storage

    /// No body: END_STREAM goes on the HEADERS frame.
    public static let empty = MessageBody(storage: .empty)

    /// A body of these bytes, then `trailers` if given.
    public static func bytes(_ bytes: ByteBuffer, trailers: HTTPFields? = nil) -> MessageBody {
        MessageBody(storage: .bytes(bytes, trailers: trailers))
    }

    /// A body of these bytes, then `trailers` if given.
    public static func bytes(_ bytes: some Sequence<UInt8>, trailers: HTTPFields? = nil) -> MessageBody {
        MessageBody(storage: .bytes(ByteBuffer(bytes: bytes), trailers: trailers))
    }

    /// A body of this text in UTF-8.
    public static func text(_ text: String, trailers: HTTPFields? = nil) -> MessageBody {
        MessageBody(storage: .text(text, trailers: trailers))
    }

    /// A body streamed from `chunks` as they come. Each chunk is sent as soon as flow control allows.
    public static func stream<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, trailers: HTTPFields? = nil) -> MessageBody
    where Chunks.Element == ByteBuffer {
        MessageBody(storage: .writer { writer in
            for try await chunk in chunks { try await writer.write(chunk) }
            if let trailers { try await writer.finish(trailers: trailers) }
        })
    }

    /// A body written by `produce`, which may call `write(_:)` of ``BodyWriter`` any number of times and
    /// ``BodyWriter/finish(trailers:)`` once; the body ends when `produce` returns.
    public static func writer(_ produce: @escaping @Sendable (BodyWriter) async throws -> Void) -> MessageBody {
        MessageBody(storage: .writer(produce))
    }

    /// Whether this is ``empty``: no body at all.
    public var isEmpty: Bool {
        if case .empty = storage { return true }
        return false
    }
}
