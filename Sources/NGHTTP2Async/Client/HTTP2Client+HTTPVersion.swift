extension HTTP2Client {
    /// Which HTTP versions an ``HTTP2Client`` speaks to an origin.
    ///
    /// Over TLS the choice is the server's, by ALPN ([RFC 7301](https://www.rfc-editor.org/rfc/rfc7301.html)): the
    /// client offers the versions the policy allows and speaks what the server picks; a server that picks none speaks
    /// HTTP/1.1. Over cleartext (`http://`) the policy decides: HTTP/2 with prior knowledge
    /// ([RFC 9113 §3.3](https://www.rfc-editor.org/rfc/rfc9113.html#section-3.3)) for ``automatic`` and
    /// ``http2Only``, HTTP/1.1 for ``http1Only``, or HTTP/1.1 that asks to become HTTP/2 for ``h2cUpgrade``. Either way the ``ClientSession/Response`` and its ``StreamReader`` are the same; over HTTP/1.1 a
    /// connection carries one request at a time (with keep-alive) and the pool opens up to
    /// ``Configuration/maxConnectionsPerOrigin`` of them, a cancelled request closes its connection, and
    /// ``ClientSession/Response/streamID`` counts the connection's requests from 1.
    ///
    /// When the server does not speak what the policy requires, the typed error says what it speaks:
    /// ``TLSError/alpnMismatch(offered:negotiated:)`` over TLS, ``HTTP2Error/peerSpeaksHTTP1(statusLine:)`` for
    /// HTTP/2 with prior knowledge to an HTTP/1.1 server.
    public struct HTTPVersionPolicy: Sendable, Hashable {
        enum Kind: Hashable { case automatic, http2Only, http1Only, h2cUpgrade }
        let kind: Kind

        /// TLS offers `h2` and `http/1.1` (the server picks); cleartext speaks HTTP/2 with prior knowledge. The default.
        public static let automatic = HTTPVersionPolicy(kind: .automatic)
        /// HTTP/2 only: TLS offers `h2` alone; cleartext speaks HTTP/2 with prior knowledge.
        public static let http2Only = HTTPVersionPolicy(kind: .http2Only)
        /// HTTP/1.1 only: TLS offers `http/1.1` alone; cleartext speaks HTTP/1.1.
        public static let http1Only = HTTPVersionPolicy(kind: .http1Only)
        /// TLS as ``automatic``; cleartext starts as HTTP/1.1 and asks to continue as HTTP/2 (`curl --http2`,
        /// `nghttp -u`): the first request without a body carries `Upgrade: h2c` and `HTTP2-Settings`
        /// ([RFC 7540 §3.2](https://www.rfc-editor.org/rfc/rfc7540.html#section-3.2)). A server that answers
        /// `101 Switching Protocols` answers that request on HTTP/2 stream 1, and the connection then carries many
        /// requests at once; a server that answers anything else stays HTTP/1.1 (the upgrade is not asked again on
        /// that connection). RFC 9113 deprecates the mechanism; prefer prior knowledge when the server is known to
        /// speak HTTP/2.
        public static let h2cUpgrade = HTTPVersionPolicy(kind: .h2cUpgrade)

        /// The ALPN names a TLS connection offers, most preferred first.
        var applicationProtocols: [String] {
            switch kind {
            case .automatic, .h2cUpgrade: [ApplicationProtocol.http2.rawValue, ApplicationProtocol.http1.rawValue]
            case .http2Only: [ApplicationProtocol.http2.rawValue]
            case .http1Only: [ApplicationProtocol.http1.rawValue]
            }
        }

        /// Whether a connection may turn out to speak HTTP/1.1 (over TLS; over cleartext only with ``http1Only``).
        var allowsHTTP1: Bool { kind != .http2Only }
        /// Whether a cleartext connection starts as HTTP/1.1.
        var cleartextIsHTTP1: Bool { kind == .http1Only || kind == .h2cUpgrade }
        /// Whether a cleartext HTTP/1.1 connection asks for h2c.
        var upgradesCleartext: Bool { kind == .h2cUpgrade }
    }
}
