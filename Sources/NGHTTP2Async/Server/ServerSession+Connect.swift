import HTTPTypes

extension ServerSession.Request {
    /// The `:protocol` of an extended CONNECT, for example `"websocket"`
    /// ([RFC 8441 §4](https://www.rfc-editor.org/rfc/rfc8441.html#section-4)); `nil` for every other request, plain
    /// CONNECT included. Such requests arrive only when ``ServerSession/Configuration/enableConnectProtocol`` is on.
    ///
    /// A handler that accepts one answers 2xx with a streaming body and goes on reading ``body``: both directions then
    /// carry the protocol's bytes (RFC 8441 §5 for WebSocket).
    public var extendedConnectProtocol: String? {
        head.extendedConnectProtocol
    }

    /// Whether this is a plain CONNECT ([RFC 9113 §8.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.5)):
    /// method CONNECT without `:protocol`, asking for a tunnel to ``authority`` (`host:port`). It has no `:scheme`
    /// and no `:path` (libnghttp2 rejects one that has; ``path`` then reads `/`).
    ///
    /// A handler that opens the tunnel answers 2xx with a streaming body (the bytes from the far end) while it reads
    /// ``body`` (the bytes to it); the response may start before the request's body ends.
    public var isConnectTunnel: Bool {
        head.method == .connect && head.extendedConnectProtocol == nil
    }
}
