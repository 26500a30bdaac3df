public import NIOCore
public import HTTPTypes

/// Writes a streaming body. Each write waits while the stream has more than a window's worth queued, so a
/// producer never runs ahead of the peer.
public struct BodyWriter: Sendable {
    let storage: OutboundBody.Reference

    /// Queues `chunk`, waiting first if earlier chunks are still waiting for the flow-control window.
    /// - Throws: ``HTTP2Error`` if the stream was reset or the connection closed.
    public func write(_ chunk: ByteBuffer) async throws {
        try await storage.write(chunk)
    }

    /// Queues these bytes; see ``write(_:)-(ByteBuffer)``.
    public func write(_ bytes: some Sequence<UInt8>) async throws {
        try await storage.write(ByteBuffer(bytes: bytes))
    }

    /// Queues this text in UTF-8; see ``write(_:)-(ByteBuffer)``.
    public func write(_ text: String) async throws {
        try await storage.write(ByteBuffer(string: text))
    }

    /// Ends the body, sending `trailers` after it. Later writes throw.
    public func finish(trailers: HTTPFields? = nil) async throws {
        try await storage.finish(trailers: trailers)
    }
}
