public import NIOCore
public import HTTPTypes
public import NGHTTP2
public import NIOPosix
import NIOConcurrencyHelpers
public import Logging
import Foundation

/// An HTTP/2 connection to one server, on which any number of requests run concurrently.
///
/// ```swift
/// let client = try await ClientSession.connect(to: "http://127.0.0.1:8080")
/// async let a = client.get("/a")
/// async let b = client.post("/b", body: .text("hello"))
/// for try await chunk in try await a.body { consume(chunk) }
/// print(try await b.text())
/// await client.close()
/// ```
///
/// Requests beyond the server's SETTINGS_MAX_CONCURRENT_STREAMS wait for a free stream; they do not fail.
/// Cancelling the task of a request resets that stream with CANCEL and nothing else. After a GOAWAY from the
/// server, requests it did not process fail with ``HTTP2Error/notProcessed(streamID:)`` (safe to retry).
public final class ClientSession: Sendable {
    /// `http`, or `https` over TLS.
    public let scheme: String
    /// `host[:port]`, sent as `:authority`.
    public let authority: String
    let channel: any Channel
    let connection: ConnectionReference

    /// Runs tasks on this connection's event loop. Code that sends many requests or reads a large body can prefer
    /// it, so that each response and each chunk reaches it without a hop between threads:
    ///
    /// ```swift
    /// try await withTaskExecutorPreference(client.taskExecutor) {
    ///     for try await chunk in try await client.get("/big").body { consume(chunk) }
    /// }
    /// ```
    ///
    /// Many requests at once go the same way, one child task each:
    ///
    /// ```swift
    /// await withTaskGroup(of: Void.self) { group in
    ///     for path in paths {
    ///         group.addTask(executorPreference: client.taskExecutor) { _ = try? await client.get(path).bytes() }
    ///     }
    /// }
    /// ```
    ///
    /// `h2 load` runs its workers so: with 100 requests in flight against nghttpd, 6.3 µs of CPU per request
    /// instead of 10.3 µs with the workers on the global executor (and 0.78× the requests/s).
    ///
    /// Code running there shares the thread with the connection's I/O: keep it short and non-blocking.
    public let taskExecutor: any TaskExecutor

    init(scheme: String, authority: String, channel: any Channel, connection: ConnectionReference) {
        self.scheme = scheme
        self.authority = authority
        self.channel = channel
        self.connection = connection
        self.taskExecutor = EventLoopExecutor(channel.eventLoop)
    }

    /// Connects to the server of `url`: `http://host[:port]` (HTTP/2 with prior knowledge) or `https://host[:port]`
    /// (TLS with ALPN `h2`, using ``Configuration/tls`` or, by default, the system's trust roots).
    ///
    /// - Throws: ``HTTP2Error/invalidURL(_:)``, ``HTTP2Error/connectTimeout``, ``TLSError`` (e.g.
    ///   "certificate verify failed: hostname mismatch"), or the socket's error (e.g. connection refused).
    public static func connect(
        to url: String,
        configuration: Configuration = Configuration(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ClientSession {
        let target = try Target(url)
        var configuration = configuration
        if target.scheme == "https", configuration.tls == nil { configuration.tls = .makeClientConfiguration() }
        if target.scheme == "http" { configuration.tls = nil }
        return try await connect(host: target.host, port: target.port, configuration: configuration, eventLoopGroup: eventLoopGroup)
    }

    /// Connects to `host:port`: over TLS when ``Configuration/tls`` is set, otherwise cleartext HTTP/2 with prior
    /// knowledge ([RFC 9113 §3.3](https://www.rfc-editor.org/rfc/rfc9113.html#section-3.3)).
    ///
    /// With ``Configuration/proxy`` set, the TCP connection goes to the proxy, which is asked for a tunnel to
    /// `host:port` (`CONNECT`); TLS (SNI and certificate verification for `host`) or HTTP/2 then runs through it.
    /// ``Configuration/connectTimeout`` covers connecting, the tunnel and the TLS handshake together.
    ///
    /// - Throws: ``HTTP2Error/connectTimeout``, ``HTTP2Error/proxyConnectFailed(_:)`` (the proxy refused the tunnel:
    ///   its status line, e.g. `407 Proxy Authentication Required`), ``TLSError``, or the socket's error.
    public static func connect(
        host: String,
        port: Int,
        configuration: Configuration = Configuration(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ClientSession {
        try await connect(host: host, port: port, configuration: configuration, eventLoopGroup: eventLoopGroup, delegate: nil)
    }

    /// Connects, with `delegate` (a pool) hearing the connection's events.
    static func connect(
        host: String,
        port: Int,
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup,
        delegate: (any ConnectionDelegate)?
    ) async throws -> ClientSession {
        let (channel, negotiated, setup) = try await openChannel(
            host: host, port: port, configuration: configuration, eventLoopGroup: eventLoopGroup, delegate: delegate, http1: nil)
        guard case .http2(let connection) = negotiated else {
            channel.close(promise: nil)
            throw TLSError.alpnMismatch(offered: setup.tls?.applicationProtocols ?? [], negotiated: ApplicationProtocol.http1.rawValue)
        }
        let scheme = setup.tls == nil ? "http" : "https"
        let defaultPort = setup.tls == nil ? 80 : 443
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let authority = port == defaultPort ? bracketed : "\(bracketed):\(port)"
        return ClientSession(scheme: scheme, authority: authority, channel: channel, connection: connection)
    }

    /// Opens a connection's channel (TCP, the proxy's tunnel, TLS) and waits for its protocol: HTTP/2, or, with
    /// `http1` set, HTTP/1.1 when ALPN says so (or says nothing), or always over cleartext when it asks.
    static func openChannel(
        host: String,
        port: Int,
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup,
        delegate: (any ConnectionDelegate)?,
        http1: HTTP1ClientOptions?
    ) async throws -> (any Channel, NegotiatedConnection, ChannelSetup) {
        let connectionConfiguration = configuration.connectionConfiguration
        var setup = ChannelSetup(
            tls: try configuration.tls.map { try TLSContext(configuration: $0) },
            role: .client,
            serverHostname: host,
            handshakeTimeout: configuration.connectTimeout,
            proxyTunnel: configuration.proxy.map {
                ProxyTunnel(host: host, port: port, authorization: $0.credentials?.authorization)
            },
            makeHTTP2Handler: {
                try ConnectionHandler(role: .client, configuration: connectionConfiguration, delegate: delegate)
            }
        )
        if let http1 {
            let limits = HTTP1ClientStateMachine.Limits(idle: configuration.idleTimeout, bodyBuffer: Int(configuration.streamWindowSize))
            let (watermark, logger) = (configuration.bodyHighWatermark, configuration.logger)
            // Cleartext only: over TLS, ALPN has chosen already.
            let upgrade = try http1.upgradesToHTTP2 && setup.tls == nil
                ? H2CUpgradeOffer(settings: connectionConfiguration.settings) { upgraded in
                    let handler = try ConnectionHandler(role: .client, configuration: connectionConfiguration, delegate: delegate)
                    handler.clientUpgrade = upgraded
                    return handler
                }
                : nil
            setup.makeHTTP1ClientHandler = { [delegate = http1.delegate] in
                HTTP1ClientHandler(limits: limits, bodyHighWatermark: watermark, logger: logger, delegate: delegate, upgrade: upgrade)
            }
            setup.cleartextHTTP1 = http1.cleartext
        }
        let bootstrap = ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.recvAllocator, value: ConnectionHandler.receiveAllocator)
        let (channel, negotiation): (any Channel, EventLoopFuture<NegotiatedConnection>)
        do {
            let peer = configuration.proxy.map { (host: $0.host, port: $0.port) } ?? (host: host, port: port)
            (channel, negotiation) = try await bootstrap.connect(host: peer.host, port: peer.port) { [setup] channel in
                channel.eventLoop.makeCompletedFuture { (channel, try setup.configure(channel)) }
            }
        } catch ChannelError.connectTimeout {
            throw HTTP2Error.connectTimeout
        }
        do {
            return (channel, try await negotiation.get(), setup)
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// Sends a request and waits for its response head.
    ///
    /// - Parameters:
    ///   - request: the head; `scheme` and `authority` default to the session's when `nil`, except that a plain
    ///     CONNECT (method CONNECT without an `extendedConnectProtocol`) is sent with only
    ///     `:method` and `:authority`, as [RFC 9113 §8.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.5)
    ///     requires (``openTunnel(to:headers:)`` is the simpler way to open one).
    ///   - body: the body (``MessageBody/empty`` by default).
    /// - Returns: the response; read or drop its ``ClientSession/Response/body``.
    /// - Throws: ``HTTP2Error`` (e.g. ``HTTP2Error/notProcessed(streamID:)``, ``HTTP2Error/streamReset(streamID:errorCode:byPeer:)``),
    ///   or `CancellationError` when the task was cancelled (the stream is then reset with CANCEL).
    nonisolated(nonsending) public func execute(_ request: HTTPRequest, body: MessageBody = .empty) async throws -> ClientSession.Response {
        var request = request
        if request.scheme == nil, request.method != .connect || request.extendedConnectProtocol != nil { request.scheme = scheme }
        if request.authority == nil { request.authority = authority }
        // Header conversion happens here, in the caller's task, not on the connection's (busier) event loop.
        let received = try await connection.sendRequest(request.http2Fields, body: body, cancellation: RequestCancellation(), timeouts: nil)
        return received.response
    }

    /// Sends a request to `path` (or to a full URL on this server) and waits for its response head.
    nonisolated(nonsending) public func request(_ method: HTTPRequest.Method, _ path: String, headers: HTTPFields = [:], body: MessageBody = .empty) async throws -> ClientSession.Response {
        let target = path.hasPrefix("/") ? path : try Target(path).pathAndQuery
        return try await execute(HTTPRequest(method: method, scheme: scheme, authority: authority, path: target, headerFields: headers), body: body)
    }

    /// GET `path`.
    nonisolated(nonsending) public func get(_ path: String, headers: HTTPFields = [:]) async throws -> ClientSession.Response {
        try await request(.get, path, headers: headers)
    }

    /// HEAD `path`.
    nonisolated(nonsending) public func head(_ path: String, headers: HTTPFields = [:]) async throws -> ClientSession.Response {
        try await request(.head, path, headers: headers)
    }

    /// POST `body` to `path`.
    nonisolated(nonsending) public func post(_ path: String, headers: HTTPFields = [:], body: MessageBody = .empty) async throws -> ClientSession.Response {
        try await request(.post, path, headers: headers, body: body)
    }

    /// PUT `body` to `path`.
    nonisolated(nonsending) public func put(_ path: String, headers: HTTPFields = [:], body: MessageBody = .empty) async throws -> ClientSession.Response {
        try await request(.put, path, headers: headers, body: body)
    }

    /// DELETE `path`.
    nonisolated(nonsending) public func delete(_ path: String, headers: HTTPFields = [:]) async throws -> ClientSession.Response {
        try await request(.delete, path, headers: headers)
    }

    /// Whether a new request may be sent now: false once either side sent GOAWAY, the connection is closing, or
    /// stream IDs ran out.
    public var isRequestAllowed: Bool {
        get async {
            (try? await connection.eventLoop.submit { [handler = connection.handler] in handler.value.isAcceptingRequests }.get()) ?? false
        }
    }

    /// Sends a PING and returns the time until its ACK arrived.
    public func ping() async throws -> Duration {
        let connection = self.connection
        return try await withCheckedThrowingContinuation { continuation in
            connection.execute { $0.ping(continuation) }
        }
    }

    /// Closes gracefully: sends GOAWAY, lets the requests in flight finish, then closes the connection.
    public func close() async {
        connection.execute { $0.beginGracefulShutdown() }
        try? await connection.closed.get()
    }

    /// Ends the connection at once with GOAWAY(`errorCode`); requests in flight fail.
    public func terminate(_ errorCode: ErrorCode = .noError) async {
        connection.execute { $0.terminate(errorCode) }
        try? await connection.closed.get()
    }

    /// Waits until the connection is closed (by either side).
    public func waitUntilClosed() async {
        try? await connection.closed.get()
    }
}

extension ClientSession {
    /// How a ``ClientSession`` connects and what it tells the server.
    public struct Configuration: Sendable {
        /// This side's receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE): how much of one response the
        /// server may send before the application reads. Default 1 MiB.
        public var streamWindowSize: UInt32 = 1 << 20
        /// This side's receive window for the whole connection. Default 8 MiB.
        public var connectionWindowSize: Int32 = 8 << 20
        /// More SETTINGS to send (SETTINGS_ENABLE_PUSH, the window size and SETTINGS_NO_RFC7540_PRIORITIES = 1 are
        /// always sent: this client signals priorities only the RFC 9218 way, and a server that falls back to RFC 7540
        /// priorities without that setting would otherwise ignore them, [RFC 9218 §2.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-2.1)).
        public var additionalSettings: [Setting] = []
        /// libnghttp2 tuning (`Session.Options.noAutoWindowUpdate` is always on: reading credits the windows).
        public var options = Session.Options()
        /// How long connecting may take (and, with TLS, the handshake too). Default 10 seconds.
        public var connectTimeout: Duration = .seconds(10)
        /// Keep-alive PINGs (RFC 9113 §6.7), to tell a dead server from a quiet one. Default `nil` (off): some servers
        /// (gRPC's among them) answer PINGs they did not expect with GOAWAY ENHANCE_YOUR_CALM.
        public var keepAlive: KeepAlive?
        /// Closes the connection (GOAWAY NO_ERROR) once no request has been open for this long. Default `nil`
        /// (never: a ``ClientSession`` is the application's to close).
        public var idleTimeout: Duration?
        /// TLS: set for `https://` (the default then is ``NGHTTP2TLSConfiguration/makeClientConfiguration()``: system trust
        /// roots, host-name verification, ALPN `h2`). Set it to trust a private CA, present a client certificate,
        /// or (explicitly, insecurely) skip verification.
        public var tls: NGHTTP2TLSConfiguration?
        /// A streaming request body's writer waits while more than this many bytes are queued.
        public var bodyHighWatermark = 256 << 10
        /// A forward proxy to reach the server through, with an HTTP/1.1 `CONNECT` tunnel
        /// ([RFC 9110 §9.3.6](https://www.rfc-editor.org/rfc/rfc9110.html#section-9.3.6)); TLS, when used, is still
        /// end to end with the server. Default `nil` (connect directly; the environment is not read, see
        /// ``HTTPProxy/fromEnvironment(for:host:environment:)``).
        public var proxy: HTTPProxy?
        /// Where connection events (debug) and frames (trace) are logged.
        public var logger = Logger(label: "nghttp2.client")
        /// Sees every frame sent and received (``FrameDirection``), e.g. to print them like `nghttp -v`.
        public var frameObserver: FrameObserver?
        /// Receives the server's pushes (RFC 9113 §8.4): with a handler, SETTINGS_ENABLE_PUSH = 1 is sent and each
        /// PUSH_PROMISE calls it with a ``ClientSession/PushPromise``. Default `nil`: SETTINGS_ENABLE_PUSH = 0, the
        /// server may not push.
        public var pushHandler: ClientSession.PushHandler?

        /// The connection metrics of the ``HTTP2Client`` that opened this connection, if it records them.
        var metrics: ConnectionMetrics?

        /// The defaults described on each property.
        public init() {}

        var connectionConfiguration: ConnectionConfiguration {
            ConnectionConfiguration(
                settings: [
                    Setting(.enablePush, pushHandler == nil ? 0 : 1), Setting(.initialWindowSize, streamWindowSize),
                    Setting(.noRFC7540Priorities, 1),
                ]
                    + additionalSettings,
                options: options,
                connectionWindowSize: connectionWindowSize,
                bodyHighWatermark: bodyHighWatermark,
                timeouts: ConnectionStateMachine.Timeouts(
                    idle: idleTimeout,
                    keepAliveInterval: keepAlive?.interval,
                    keepAliveTimeout: keepAlive?.timeout ?? .seconds(20)
                ),
                logger: logger,
                frameObserver: frameObserver,
                metrics: metrics,
                pushHandler: pushHandler
            )
        }
    }
}

extension ClientSession.Configuration {
    /// Keep-alive PINGs: after `interval` without a frame from the server, a PING; without its ACK within `timeout`
    /// the connection is given up: requests in flight fail with ``HTTP2Error/keepAliveTimeout(_:)``, and those it
    /// never sent with ``HTTP2Error/notProcessed(streamID:)`` (safe to retry).
    public struct KeepAlive: Sendable, Hashable {
        /// How long the connection may be silent before a PING.
        public var interval: Duration
        /// How long the PING may go unanswered. Default 20 seconds.
        public var timeout: Duration

        /// Keep-alive PINGs after `interval` of silence, each answered within `timeout`.
        public init(interval: Duration, timeout: Duration = .seconds(20)) {
            self.interval = interval
            self.timeout = timeout
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// The parts of an `http://` URL a client needs.
struct Target {
    let scheme: String
    let host: String
    let port: Int
    let pathAndQuery: String

    init(_ url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else { throw HTTP2Error.invalidURL(url) }
        guard scheme == "http" || scheme == "https" else { throw HTTP2Error.invalidURL("\(url) (use http:// or https://)") }
        self.scheme = scheme
        self.host = host
        self.port = components.port ?? (scheme == "https" ? 443 : 80)
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        self.pathAndQuery = components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
    }

    /// `host[:port]` as `:authority` carries it: IPv6 addresses in brackets, the port only when it is not the
    /// scheme's default.
    var authority: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return port == (scheme == "https" ? 443 : 80) ? bracketed : "\(bracketed):\(port)"
    }
}
