import Logging

extension ServerSession {
    /// Which protocols a ``ServerSession`` speaks: HTTP/2 always; HTTP/1.1 (RFC 9112) and the h2c Upgrade
    /// (RFC 7540 §3.2) by default, as a user of an HTTP server library expects.
    ///
    /// ```swift
    /// var configuration = ServerSession.Configuration()
    /// configuration.protocols = .http2Only   // h2c with prior knowledge; ALPN h2 only
    /// ```
    ///
    /// HTTP/1.1 requests go to the same ``ServerSession/Handler`` as HTTP/2 ones, with the same
    /// ``ServerSession/Request`` (its body a ``StreamReader``) and ``ServerSession/Response``. On HTTP/1.1 the
    /// server's ``Configuration/idleTimeout`` applies between requests, ``Configuration/headerTimeout`` to a request
    /// head (then 408), ``Configuration/streamWindowSize`` is how much of a request body is read ahead of the handler
    /// (then the socket is not read: the client waits), and a graceful close lets the request in flight finish
    /// (within ``Configuration/gracePeriod``) and closes after its response.
    public struct Protocols: Sendable, Hashable {
        /// Serves HTTP/1.1: on cleartext connections whose first bytes are not the HTTP/2 client preface
        /// (RFC 9113 §3.4), and over TLS when ALPN (RFC 7301) chooses `http/1.1` (a TLS client that offers no ALPN is
        /// still refused, as before). Default `true`.
        public var http1: Bool = true
        /// Accepts the h2c Upgrade on cleartext HTTP/1.1 (RFC 7540 §3.2): a request with `Upgrade: h2c`,
        /// `Connection: Upgrade, HTTP2-Settings` and one valid `HTTP2-Settings` is answered 101 and then on HTTP/2
        /// stream 1. A request with a body is answered over HTTP/1.1 instead (and its connection then closes). Needs
        /// ``http1``. Default `true`.
        public var h2cUpgrade: Bool = true

        /// HTTP/1.1 and the h2c Upgrade (the defaults described on each property).
        public init() {}

        /// HTTP/2 only: cleartext connections must start with the HTTP/2 preface (prior knowledge, RFC 9113 §3.3) and
        /// TLS connections must choose ALPN `h2`.
        public static let http2Only: Protocols = {
            var protocols = Protocols()
            protocols.http1 = false
            protocols.h2cUpgrade = false
            return protocols
        }()

        /// The ALPN list a TLS server accepts, most preferred first: the TLS configuration's
        /// (``NGHTTP2TLSConfiguration/applicationProtocols``, `["h2"]` by default), then `http/1.1` when HTTP/1.1 is
        /// served and the list does not name it already (list it first to prefer it).
        public func applicationProtocols(from tls: NGHTTP2TLSConfiguration) -> [String] {
            var names = tls.applicationProtocols
            if !http1 { names.removeAll { $0 == ApplicationProtocol.http1.rawValue } }
            if http1, !names.contains(ApplicationProtocol.http1.rawValue) { names.append(ApplicationProtocol.http1.rawValue) }
            return names
        }
    }
}

extension ServerSession.Configuration {
    /// Makes each HTTP/1.1 connection's handler (the argument: whether it is TLS).
    func http1Handler(
        handler: @escaping ServerSession.Handler,
        connection: ConnectionConfiguration,
        delegate: ServerConnections
    ) -> @Sendable (Bool) -> HTTP1ServerHandler {
        let limits = HTTP1ConnectionStateMachine.Limits(
            idle: idleTimeout,
            header: headerTimeout,
            gracePeriod: gracePeriod,
            bodyBuffer: Int(streamWindowSize),
            drain: Int(streamWindowSize),
            maxRequests: maxRequestsPerConnection,
            maxAge: maxConnectionAge
        )
        let upgrades = protocols.h2cUpgrade
        let maxHeaderListSize = Int(self.maxHeaderListSize)
        let bodyHighWatermark = self.bodyHighWatermark
        let logger = self.logger
        let upgrade: @Sendable (H2CUpgradeRequest) throws -> ConnectionHandler = { upgrade in
            let http2 = try ConnectionHandler(role: .server(handler: handler), configuration: connection, delegate: delegate)
            http2.upgrade = upgrade
            return http2
        }
        return { (overTLS: Bool) -> HTTP1ServerHandler in
            let configuration = HTTP1Configuration(
                limits: limits,
                bodyHighWatermark: bodyHighWatermark,
                logger: logger,
                scheme: overTLS ? "https" : "http",
                upgrade: upgrades && !overTLS ? upgrade : nil,
                maxHeaderListSize: maxHeaderListSize
            )
            return HTTP1ServerHandler(configuration: configuration, handler: handler, delegate: delegate)
        }
    }
}
