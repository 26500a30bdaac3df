public import NGHTTP2

/// Why an HTTP/2 request, response or connection failed.
public enum HTTP2Error: Error, Hashable, Sendable {
    /// The peer never processed this stream: it was above the last stream ID of the peer's GOAWAY, or refused
    /// with REFUSED_STREAM, or never sent because the connection was going away. Safe to retry on a new
    /// connection, whatever the method ([RFC 9113 §8.7](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.7)).
    case notProcessed(streamID: Int32)
    /// The stream was reset with `errorCode`, by the peer (`byPeer`) or by this side.
    case streamReset(streamID: Int32, errorCode: ErrorCode, byPeer: Bool)
    /// The connection ended while the stream was open: `errorCode` is the GOAWAY code if one was received.
    case connectionClosed(errorCode: ErrorCode?)
    /// libnghttp2 rejected the connection's input or state (fatal): the connection was closed with GOAWAY.
    case protocolViolation(NGHTTP2Error)
    /// A body was larger than the limit given to ``StreamReader/collect(upTo:)``.
    case bodyTooLarge(limit: Int)
    /// The URL could not be used: not `http://host[:port]/path` (or `https://` where TLS is available).
    case invalidURL(String)
    /// A received message was not valid HTTP (e.g. no `:status`).
    case malformedMessage(String)
    /// The connection could not be established in time.
    case connectTimeout
    /// The session was closed by the application; no new requests are accepted.
    case sessionClosed

    /// Whether the request can be sent again on a new connection without risk of it being processed twice.
    public var isRetrySafe: Bool {
        switch self {
        case .notProcessed: true
        case .streamReset(_, let code, _): code == .refusedStream
        default: false
        }
    }
}

extension HTTP2Error: CustomStringConvertible {
    /// A readable form, for logs and error messages.
    public var description: String {
        switch self {
        case .notProcessed(let id): "stream \(id) was not processed by the peer (safe to retry)"
        case .streamReset(let id, let code, let byPeer): "stream \(id) was reset \(byPeer ? "by the peer" : "locally") with \(code)"
        case .connectionClosed(let code): "the connection closed" + (code.map { " (GOAWAY \($0))" } ?? "")
        case .protocolViolation(let error): "HTTP/2 protocol violation: \(error)"
        case .bodyTooLarge(let limit): "the body is larger than \(limit) bytes"
        case .invalidURL(let url): "invalid URL: \(url)"
        case .malformedMessage(let what): "malformed HTTP message: \(what)"
        case .connectTimeout: "connect timed out"
        case .sessionClosed: "the session is closed"
        }
    }
}
