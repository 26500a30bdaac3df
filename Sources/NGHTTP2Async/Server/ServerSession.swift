public import NIOCore
public import NGHTTP2
public import NIOPosix
public import Logging
import ServiceLifecycle

/// An HTTP/2 server: accepts connections (cleartext with prior knowledge, or TLS with ALPN `h2` when
/// ``Configuration/tls`` is set) and answers each request with a handler. By default it also serves HTTP/1.1 through
/// the same handler (cleartext, the h2c Upgrade, ALPN `http/1.1`; see ``Protocols``).
///
/// ```swift
/// let server = try await ServerSession.bind(host: "127.0.0.1", port: 8080) { request in
///     let body = try await request.body.collect(upTo: 1 << 20)
///     return ServerSession.Response(status: .ok, headers: [.contentType: "text/plain"], body: .bytes(body))
/// }
/// try await server.run()   // until closed; cancelling run() shuts down gracefully
/// ```
///
/// Each request runs in its own task; connections are spread over the event loops of the group. A handler that
/// throws gives 500 (or RST_STREAM INTERNAL_ERROR once the response has started), is logged, and harms nothing
/// else. A handler's task is cancelled when its stream is reset or its connection goes away.
public final class ServerSession: Sendable {
    /// Answers one request.
    public typealias Handler = @Sendable (ServerSession.Request) async throws -> ServerSession.Response
    /// Answers a request at once, without a task of its own, or returns `nil` to leave it to the ``Handler``.
    ///
    /// It runs on the connection's event loop, right where the request is read (an HTTP/2 request answered here
    /// costs no task: about 15% of a hello-world server's CPU time per request), so it must return quickly and never
    /// block. It suits answers that need no waiting: fixed or cached responses, redirects, health checks,
    /// rejections. A response whose body is a writer (``MessageBody/writer(_:)``, ``MessageBody/stream(_:trailers:)``)
    /// gets a task for that writer only. Over HTTP/1.1, and while ``Configuration/observability`` is on, it runs in
    /// the request's task before the handler, with the same result.
    public typealias ImmediateHandler = @Sendable (ServerSession.Request) -> ServerSession.Response?

    let channel: any Channel
    let connections: ServerConnections
    let configuration: Configuration

    /// The port the server listens on (useful after binding port 0).
    public var port: Int { channel.localAddress?.port ?? 0 }
    /// The address the server listens on.
    public var localAddress: SocketAddress? { channel.localAddress }
    /// How many connections are open.
    public var connectionCount: Int { connections.count }

    init(channel: any Channel, connections: ServerConnections, configuration: Configuration) {
        self.channel = channel
        self.connections = connections
        self.configuration = configuration
    }

    /// Starts listening on `host:port` (port 0 picks a free port; see ``port``).
    ///
    /// - Parameters:
    ///   - host: The address to listen on. Default `127.0.0.1`.
    ///   - port: The port to listen on; 0 picks a free one.
    ///   - configuration: What the server advertises and how it treats its connections (``Configuration``).
    ///   - eventLoopGroup: Where connections run. Default NIO's singleton group (one loop per core).
    ///   - immediateHandler: Answers the requests it can at once, on the event loop and without a task (see
    ///     ``ImmediateHandler``); those it returns `nil` for go to `handler`.
    ///   - handler: Answers each request (each in its own task).
    public static func bind(
        host: String = "127.0.0.1",
        port: Int,
        configuration: Configuration = Configuration(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        immediateHandler: ImmediateHandler? = nil,
        handler: @escaping Handler
    ) async throws -> ServerSession {
        let connections = ServerConnections(limit: configuration.maxConnections)
        // Observability is off by default: then nothing is made and the handler is the application's own.
        let observer = ServerObserver(configuration.observability)
        // Where a request gets a task anyway (HTTP/1.1, or measured and traced), the immediate handler runs first in it.
        var combined = handler
        if let immediateHandler {
            combined = { request in
                if let response = immediateHandler(request) { return response }
                return try await handler(request)
            }
        }
        let connectionConfiguration = {
            var connection = configuration.connectionConfiguration
            connection.metrics = observer?.connectionMetrics
            if observer == nil { connection.immediateHandler = immediateHandler }
            return connection
        }()
        let http1Handler = observer?.instrument(combined) ?? combined
        let handler = observer.map { $0.instrument(combined) } ?? handler
        let logger = configuration.logger
        var setup = ChannelSetup(
            tls: try configuration.tls.map { tls in
                var tls = tls
                tls.applicationProtocols = configuration.protocols.applicationProtocols(from: tls)
                return try TLSContext(configuration: tls)
            },
            role: .server,
            serverHostname: nil,
            handshakeTimeout: configuration.handshakeTimeout,
            makeHTTP2Handler: {
                try ConnectionHandler(role: .server(handler: handler), configuration: connectionConfiguration, delegate: connections)
            }
        )
        if configuration.protocols.http1 {
            setup.makeHTTP1Handler = configuration.http1Handler(handler: http1Handler, connection: connectionConfiguration, delegate: connections)
            setup.sniffTimeout = configuration.prefaceTimeout ?? configuration.idleTimeout
        }
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: Int32(clamping: configuration.listenBacklog))
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.recvAllocator, value: ConnectionHandler.receiveAllocator)
            .childChannelInitializer { [setup] channel in
                channel.eventLoop.makeCompletedFuture {
                    try setup.configure(channel).whenFailure { error in
                        logger.debug("connection from \(channel.remoteAddress.map { "\($0)" } ?? "?") not set up: \(error)")
                    }
                }
            }
            .bind(host: host, port: port)
            .get()
        configuration.logger.debug("listening on \(channel.localAddress.map { "\($0)" } ?? "?")")
        return ServerSession(channel: channel, connections: connections, configuration: configuration)
    }

    /// Waits until the server is closed and its last connection is gone. Cancelling the waiting task closes the
    /// server gracefully (see ``close(gracePeriod:)``); this then returns once that is done.
    ///
    /// This is also the server's `Service.run()`: in a `ServiceGroup`, the group's graceful shutdown (for example
    /// on SIGTERM) closes the server the same way (see the `Service` conformance).
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                try? await channel.closeFuture.get()
                await connections.waitUntilAllClosed()
            } onCancel: {
                beginClosing(gracePeriod: configuration.gracePeriod)
            }
        } onGracefulShutdown: {
            self.beginClosing(gracePeriod: self.configuration.gracePeriod)
        }
    }

    /// Closes gracefully: stops accepting, tells every connection to finish (GOAWAY notice, then the final GOAWAY
    /// one round trip later), lets their streams run for up to `gracePeriod` (default ``Configuration/gracePeriod``),
    /// then closes what is left; returns when every connection is closed.
    public func close(gracePeriod: Duration? = nil) async {
        beginClosing(gracePeriod: gracePeriod ?? configuration.gracePeriod)
        try? await channel.closeFuture.get()
        await connections.waitUntilAllClosed()
    }

    private func beginClosing(gracePeriod: Duration) {
        channel.close(promise: nil)
        connections.shutDown(gracePeriod: gracePeriod)
    }
}

extension ServerSession {
    /// What a ``ServerSession`` advertises and how it treats its connections.
    public struct Configuration: Sendable {
        /// SETTINGS_MAX_CONCURRENT_STREAMS: streams one client may have open at once. Default 100.
        public var maxConcurrentStreams: UInt32 = 100
        /// SETTINGS_MAX_HEADER_LIST_SIZE, enforced here (libnghttp2 1.52 does not): a larger request gets 431.
        /// Over HTTP/1.1 the same bound applies to the bytes of a request head's field names and values (431, then
        /// the connection closes). Default 32 KiB.
        public var maxHeaderListSize: UInt32 = 32 << 10
        /// This side's receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE): how much of one request body a
        /// client may send before the handler reads. Default 1 MiB.
        public var streamWindowSize: UInt32 = 1 << 20
        /// This side's receive window for each connection. Default 8 MiB.
        public var connectionWindowSize: Int32 = 8 << 20
        /// Allows extended CONNECT: sends SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, so that clients may open streams with
        /// a `:protocol` (for example WebSocket over HTTP/2), which handlers see in
        /// ``ServerSession/Request/extendedConnectProtocol`` ([RFC 8441 §3](https://www.rfc-editor.org/rfc/rfc8441.html#section-3)).
        /// Default `false`: libnghttp2 then rejects a request with `:protocol` (RST_STREAM PROTOCOL_ERROR). Plain
        /// CONNECT ([RFC 9113 §8.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.5)) needs no setting.
        public var enableConnectProtocol = false
        /// More SETTINGS to send (the ones above and SETTINGS_NO_RFC7540_PRIORITIES = 1 are always sent).
        public var additionalSettings: [Setting] = []
        /// libnghttp2 tuning (`Session.Options.noAutoWindowUpdate` is always on: reading credits the windows).
        public var options = Session.Options()
        /// TLS: the certificate and key to serve (``NGHTTP2TLSConfiguration/makeServerConfiguration(certificateChain:privateKey:)``),
        /// and optionally client-certificate verification. `nil` serves cleartext HTTP/2 (h2c, prior knowledge).
        public var tls: NGHTTP2TLSConfiguration?
        /// The listening socket's queue of connections not yet accepted (`listen(2)`'s backlog; the kernel caps it at
        /// `net.core.somaxconn`). A burst of new connections larger than this waits for SYN retransmits (1 s, 3 s, …).
        /// Default 4,096.
        public var listenBacklog = 4096
        /// How long a client may take to finish the TLS handshake. Default 10 seconds.
        public var handshakeTimeout: Duration = .seconds(10)
        /// How long a graceful close waits for streams in flight. Default 10 seconds.
        public var gracePeriod: Duration = .seconds(10)
        /// How long a client may take to send its connection preface (RFC 9113 §3.4) once the connection is up (after
        /// the TLS handshake, with TLS). Then it gets GOAWAY NO_ERROR and is closed. Default 10 seconds.
        public var prefaceTimeout: Duration? = .seconds(10)
        /// How long a header block (a request head or trailers: HEADERS and its CONTINUATIONs) may stay incomplete.
        /// Then the connection gets GOAWAY NO_ERROR naming the last complete request (the stalled one was not processed
        /// and may be retried) and is closed: a half-decoded header block cannot be skipped, so resetting only its
        /// stream is not possible (RFC 9113 §4.3). Default 20 seconds.
        public var headerTimeout: Duration? = .seconds(20)
        /// How long a connection may stay without an open stream. Then it gets GOAWAY NO_ERROR and is closed. Default
        /// 60 seconds.
        public var idleTimeout: Duration? = .seconds(60)
        /// The age at which a connection is shut down gracefully (GOAWAY notice, then the final GOAWAY; streams in
        /// flight finish, within ``gracePeriod``). Over HTTP/1.1 an idle connection then closes, and the request in
        /// flight finishes (with `Connection: close` when its response has not started) before it does. Default `nil`
        /// (no limit).
        public var maxConnectionAge: Duration?
        /// The number of requests after which a connection is sent a GOAWAY naming the last one: those finish, the
        /// client opens a new connection for the next. Over HTTP/1.1 the last one's response says `Connection: close`
        /// (RFC 9112 §9.6). Default `nil` (no limit).
        public var maxRequestsPerConnection: Int?
        /// The most connections open at once. One more is refused cleanly (its SETTINGS, then GOAWAY with last stream 0
        /// and NO_ERROR: its requests were not processed and may be retried) while the others keep working. Connections
        /// still in their TLS handshake are not counted (``handshakeTimeout`` bounds them). Default `nil` (no limit).
        public var maxConnections: Int?
        /// How many stream errors and invalid frames one client may cause before its connection gets GOAWAY
        /// ENHANCE_YOUR_CALM (CVE-2025-8671). Default ``GlitchLimit/init(burst:perSecond:)`` (1,000 at once, 33 per
        /// second); `nil` turns the limit off.
        public var glitchLimit: GlitchLimit? = GlitchLimit()
        /// A streaming response body's writer waits while more than this many bytes are queued.
        public var bodyHighWatermark = 256 << 10
        /// Where connection events (debug) and frames (trace) are logged.
        public var logger = Logger(label: "nghttp2.server")
        /// Sees every frame sent and received (``FrameDirection``), e.g. to print them like `nghttp -v`.
        public var frameObserver: FrameObserver?
        /// Metrics and a span per request (see ``Observability``). Default ``Observability/disabled``.
        public var observability = Observability.disabled
        /// Which protocols are served (see ``ServerSession/Protocols``). Default: HTTP/2, HTTP/1.1 and the h2c Upgrade.
        public var protocols = Protocols()

        /// The defaults described on each property.
        public init() {}

        var connectionConfiguration: ConnectionConfiguration {
            ConnectionConfiguration(
                settings: [
                    Setting(.maxConcurrentStreams, maxConcurrentStreams),
                    Setting(.initialWindowSize, streamWindowSize),
                    Setting(.maxHeaderListSize, maxHeaderListSize),
                    Setting(.noRFC7540Priorities, 1),
                ] + (enableConnectProtocol ? [Setting(.enableConnectProtocol, 1)] : []) + additionalSettings,
                options: options,
                connectionWindowSize: connectionWindowSize,
                bodyHighWatermark: bodyHighWatermark,
                timeouts: ConnectionStateMachine.Timeouts(
                    preface: prefaceTimeout,
                    headerBlock: headerTimeout,
                    idle: idleTimeout,
                    maxAge: maxConnectionAge,
                    maxStreams: maxRequestsPerConnection,
                    gracePeriod: gracePeriod,
                    glitches: glitchLimit
                ),
                logger: logger,
                frameObserver: frameObserver
            )
        }
    }
}
