public import HTTPTypes
import NGHTTP2

extension ClientSession {
    /// A two-way byte stream over one HTTP/2 stream, opened with CONNECT: to a TCP host and port through the server
    /// ([RFC 9113 §8.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.5)), or to a protocol the server
    /// speaks itself, such as WebSocket, with extended CONNECT ([RFC 8441 §4](https://www.rfc-editor.org/rfc/rfc8441.html#section-4)).
    ///
    /// ```swift
    /// let tunnel = try await client.openTunnel(to: "db.internal:5432")
    /// try await tunnel.outbound.write(hello)          // DATA frames to the far end
    /// for try await chunk in tunnel.inbound { … }     // DATA frames from it
    /// try await tunnel.outbound.finish()              // END_STREAM: like a TCP half-close
    /// ```
    ///
    /// Both directions are flow-controlled like any body: ``outbound`` waits while the server's windows are full,
    /// and ``inbound`` credits the window as it is read.
    ///
    /// > Warning: read or cancel ``inbound``. Dropping it resets the stream with CANCEL (the far end sees the
    /// > connection reset, RFC 9113 §8.5).
    public struct Tunnel: Sendable {
        /// The server's 2xx answer to the CONNECT ([RFC 9113 §8.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.5);
        /// 200 for a WebSocket, [RFC 8441 §5](https://www.rfc-editor.org/rfc/rfc8441.html#section-5)).
        public let response: HTTPResponse
        /// The stream that carries the tunnel ([RFC 9113 §5](https://www.rfc-editor.org/rfc/rfc9113.html#section-5)).
        public let streamID: Int32
        /// The bytes from the far end, as they arrive in DATA frames; it ends when the server ends the stream
        /// (END_STREAM, [RFC 9113 §8.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.5)).
        public let inbound: StreamReader
        /// Writes bytes to the far end in DATA frames; ``BodyWriter/finish(trailers:)`` (without trailers) ends this
        /// direction with END_STREAM, while ``inbound`` goes on
        /// ([RFC 9113 §8.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.5)).
        public let outbound: BodyWriter

        /// Resets the tunnel's stream with CANCEL at once, in both directions (RFC 9113 §8.5: a TCP connection error
        /// or reset is signalled the same way). Later reads and writes throw `CancellationError`.
        public func cancel() {
            inbound.cancel()
        }
    }

    /// Opens a tunnel to `authority` (`host:port`) through the server: a CONNECT request with only `:method` and
    /// `:authority` ([RFC 9113 §8.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.5)), such as a forward
    /// proxy over HTTP/2 takes.
    ///
    /// - Parameters:
    ///   - authority: the host and port to connect to, for example `example.org:443` or `[::1]:22`.
    ///   - headers: more header fields (for example `proxy-authorization`).
    /// - Returns: the tunnel, once the server answered 2xx.
    /// - Throws: ``HTTP2Error/Code/invalidArgument`` when `authority` has no port, ``HTTP2Error/Code/connectRefused``
    ///   when the server answered with another status (its stream is then cancelled), or what a request throws.
    public func openTunnel(to authority: String, headers: HTTPFields = [:]) async throws -> Tunnel {
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]),
            (0...65535).contains(port), colon != authority.startIndex
        else {
            throw HTTP2Error.invalidArgument("CONNECT needs host:port as its authority (RFC 9113 §8.5), not \(authority)")
        }
        let request = HTTPRequest(method: .connect, scheme: nil, authority: authority, path: nil, headerFields: headers)
        return try await tunnel(request)
    }

    /// Opens a tunnel that speaks `protocol` (for example `"websocket"`) with the server itself: an extended CONNECT
    /// with `:protocol`, `:scheme`, `:path` and `:authority` ([RFC 8441 §4](https://www.rfc-editor.org/rfc/rfc8441.html#section-4)).
    ///
    /// It is sent only once the server's SETTINGS said SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 §3); right
    /// after connecting, this first waits for them (a PING's round trip, since the server's SETTINGS come before its
    /// answer to it).
    ///
    /// - Parameters:
    ///   - protocol: the `:protocol` pseudo-header field, a token registered for it (RFC 8441 §4; `websocket` is
    ///     RFC 8441 §5's).
    ///   - path: the `:path`, with the query.
    ///   - headers: more header fields (for example `sec-websocket-version: 13` and `sec-websocket-protocol`).
    /// - Returns: the tunnel, once the server answered 2xx.
    /// - Throws: ``HTTP2Error/Code/extendedConnectNotEnabled`` when the server did not allow extended CONNECT,
    ///   ``HTTP2Error/Code/connectRefused`` when it answered with a status other than 2xx, or what a request throws.
    public func openTunnel(protocol: String, path: String, headers: HTTPFields = [:]) async throws -> Tunnel {
        var request = HTTPRequest(method: .connect, scheme: scheme, authority: authority, path: path, headerFields: headers)
        request.extendedConnectProtocol = `protocol`
        return try await tunnel(request)
    }

    private func tunnel(_ request: HTTPRequest) async throws -> Tunnel {
        if request.extendedConnectProtocol != nil {
            var allowed = try await connection.allowsExtendedConnect()
            if allowed == nil {
                _ = try await ping()
                allowed = try await connection.allowsExtendedConnect()
            }
            guard allowed == true else { throw HTTP2Error.extendedConnectNotEnabled }
        }
        let (received, writer) = try await connection.openTunnel(request.http2Fields, cancellation: RequestCancellation())
        guard received.status.kind == .successful else {
            received.body.cancel()
            throw HTTP2Error.connectRefused(String(received.status.code))
        }
        return Tunnel(
            response: received.head,
            streamID: received.streamID,
            inbound: received.body,
            outbound: BodyWriter(storage: writer)
        )
    }
}
