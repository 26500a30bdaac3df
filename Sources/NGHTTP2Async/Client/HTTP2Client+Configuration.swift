extension HTTP2Client {
    /// How an ``HTTP2Client`` connects, pools, retries, redirects and decodes. Every property has a documented
    /// default; `Configuration()` is what most applications want.
    public struct Configuration: Sendable {
        /// Each pooled connection's settings: windows, TLS (used for `https://` origins; the default is the system's
        /// trust roots), connect timeout, logger, frame observer. The pool's defaults differ from a lone
        /// ``ClientSession``'s in two places: keep-alive PINGs are on (``ClientSession/Configuration/KeepAlive``:
        /// after 30 s of silence, answered within 20 s), and a connection closes after 60 s without an open stream
        /// (``ClientSession/Configuration/idleTimeout``).
        public var connection: ClientSession.Configuration = {
            var configuration = ClientSession.Configuration()
            configuration.keepAlive = .init(interval: .seconds(30), timeout: .seconds(20))
            configuration.idleTimeout = .seconds(60)
            return configuration
        }()

        /// The most connections open to one origin at once. One connection carries up to the server's
        /// SETTINGS_MAX_CONCURRENT_STREAMS requests; only when every connection is full and requests wait does the
        /// pool open another. Default 8.
        public var maxConnectionsPerOrigin = 8

        /// Which HTTP versions are spoken: over TLS, ALPN offers `h2` and `http/1.1` and the server picks; over
        /// cleartext, HTTP/2 with prior knowledge. Default ``HTTP2Client/HTTPVersionPolicy/automatic``. It sets the
        /// ALPN list of ``connection``'s TLS configuration.
        public var httpVersion = HTTPVersionPolicy.automatic

        /// When requests are sent again. Default: up to 4 attempts for requests the server did not process.
        public var retry = RetryPolicy()

        /// Whether and how far redirects are followed. Default ``HTTP2Client/RedirectPolicy/none``: a 3xx is returned as is.
        public var redirects = RedirectPolicy.none

        /// Decoding of `gzip` and `deflate` bodies. Default on (``HTTP2Client/Decompression/enabled``): `accept-encoding:
        /// gzip, deflate` is sent when the request has none, and bodies decode as they are read.
        public var decompression = Decompression.enabled

        /// How long a request may take in all, from the call to the end of its response body, unless the call gives
        /// its own `timeout`. Default `nil` (no limit). When it passes the stream is reset and the call (or the body's
        /// read) throws ``HTTP2Error/requestTimeout(_:)``.
        public var timeout: Duration?

        /// How long a response may go without a byte (head or body) before the stream is reset and the wait throws
        /// ``HTTP2Error/readTimeout(_:)``. Default `nil` (no limit).
        public var readTimeout: Duration?

        /// The forward proxy every connection goes through (an HTTP/1.1 CONNECT tunnel). Default `nil`.
        public var proxy: HTTPProxy?

        /// Whether to take the proxy from `https_proxy`, `http_proxy` and `no_proxy` when ``proxy`` is `nil`, as
        /// curl does. Default `false`: the environment is read only when the application asks.
        public var proxyFromEnvironment = false

        /// Metrics (the pool's connections and each call) and a `.client` span per call, whose context is sent in
        /// the request's headers (see ``Observability``). Default ``Observability/disabled``.
        public var observability = Observability.disabled

        /// The defaults described on each property.
        public init() {}
    }

    /// When an ``HTTP2Client`` sends a request again after a failed attempt.
    ///
    /// A request the server did not process (above the last stream ID of its GOAWAY, refused with REFUSED_STREAM,
    /// or never sent because its connection was going away) is always safe to send again, whatever its method
    /// ([RFC 9113 §8.7](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.7)): it is, on another connection,
    /// up to ``maxAttempts``. A streaming body (``MessageBody/writer(_:)``) can be sent again only if it never
    /// started.
    public struct RetryPolicy: Sendable, Hashable {
        /// The most attempts of one request, the first included. Default 4; 1 turns retries off.
        public var maxAttempts = 4

        /// Whether an idempotent request (GET, HEAD, OPTIONS, PUT, DELETE, TRACE;
        /// [RFC 9110 §9.2.2](https://www.rfc-editor.org/rfc/rfc9110.html#section-9.2.2)) whose body can be sent again
        /// (none, bytes or text) is retried when its connection was lost before the response head arrived. Default
        /// `false`: the server may have processed it.
        public var retriesIdempotentRequestsAfterConnectionLoss = false

        /// Up to 4 attempts for requests that were not processed.
        public init() {}

        /// Up to `maxAttempts` attempts; `retriesIdempotentRequestsAfterConnectionLoss` as described on the property.
        public init(maxAttempts: Int, retriesIdempotentRequestsAfterConnectionLoss: Bool = false) {
            self.maxAttempts = max(1, maxAttempts)
            self.retriesIdempotentRequestsAfterConnectionLoss = retriesIdempotentRequestsAfterConnectionLoss
        }
    }

    /// Whether an ``HTTP2Client`` follows redirects ([RFC 9110 §15.4](https://www.rfc-editor.org/rfc/rfc9110.html#section-15.4)).
    ///
    /// Followed: 301, 302 and 303 become a GET without a body (303 always; 301 and 302 when the request was a POST,
    /// as browsers do and RFC 9110 allows), except that HEAD stays HEAD; 307 and 308 keep the method and the body
    /// (a streaming body cannot be sent twice: the 307/308 response is returned then). `authorization`, `cookie` and
    /// `proxy-authorization` are dropped when the redirect leaves the origin. A redirect to a URL already requested
    /// in the chain throws ``HTTP2Error/redirectLoop(_:)``; one more than ``maxRedirects`` throws
    /// ``HTTP2Error/tooManyRedirects(limit:)``.
    public struct RedirectPolicy: Sendable, Hashable {
        /// The most redirects followed for one call; 0 follows none.
        public var maxRedirects: Int
        /// Whether a redirect to another scheme, host or port is followed. Default `true`.
        public var allowsOtherOrigins: Bool

        /// Redirects are not followed: the 3xx response is returned.
        public static let none = RedirectPolicy(maxRedirects: 0)

        /// Up to `maxRedirects` redirects are followed (default 10, as AsyncHTTPClient's).
        public static func follow(maxRedirects: Int = 10, allowsOtherOrigins: Bool = true) -> RedirectPolicy {
            RedirectPolicy(maxRedirects: maxRedirects, allowsOtherOrigins: allowsOtherOrigins)
        }

        init(maxRedirects: Int, allowsOtherOrigins: Bool = true) {
            self.maxRedirects = max(0, maxRedirects)
            self.allowsOtherOrigins = allowsOtherOrigins
        }
    }

    /// Whether an ``HTTP2Client`` decodes compressed response bodies
    /// ([RFC 9110 §8.4](https://www.rfc-editor.org/rfc/rfc9110.html#section-8.4)).
    ///
    /// When on, a request without `accept-encoding` gets `accept-encoding: gzip, deflate`, and a response whose
    /// `content-encoding` is one of them is decoded as its body is read (flow control still follows reading). Its
    /// `content-encoding` and `content-length` headers are removed (they described the encoded body) and
    /// ``ClientSession/Response/decodedContentEncoding`` says which coding was removed.
    public struct Decompression: Sendable, Hashable {
        /// Whether bodies are decoded.
        public var isEnabled: Bool
        /// A body that decodes to more than `max(1 MiB, maxExpansionRatio × its encoded size)` is a decompression bomb:
        /// the stream is cancelled and the read throws ``HTTP2Error/decompressionLimit(ratio:)``. Default 100.
        public var maxExpansionRatio: Int

        /// Decoded, with an expansion limit of 100.
        public static let enabled = Decompression(isEnabled: true, maxExpansionRatio: ContentDecoding.defaultMaxExpansionRatio)
        /// Returned as received, with no `accept-encoding` added.
        public static let disabled = Decompression(isEnabled: false, maxExpansionRatio: ContentDecoding.defaultMaxExpansionRatio)

        /// Decoded, with an expansion limit of `maxExpansionRatio`.
        public static func enabled(maxExpansionRatio: Int) -> Decompression {
            Decompression(isEnabled: true, maxExpansionRatio: max(1, maxExpansionRatio))
        }
    }
}
