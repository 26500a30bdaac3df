import NIOCore
import NIOHTTP1

/// A protocol a connection can speak once its channel is set up, by its ALPN name (RFC 7301).
enum ApplicationProtocol: String, Sendable, Hashable {
    /// HTTP/2 (RFC 9113): over TLS by ALPN `h2`, or cleartext with prior knowledge.
    case http2 = "h2"
    /// HTTP/1.1 (RFC 9112): over TLS by ALPN `http/1.1`, or cleartext when the first bytes are not the HTTP/2 preface.
    case http1 = "http/1.1"
}

/// A connection whose protocol is known, with the handle to use it.
enum NegotiatedConnection: Sendable {
    case http2(ConnectionReference)
    /// Server: an HTTP/1.1 connection (``HTTP1ServerHandler``).
    case http1
    /// Client: an HTTP/1.1 connection, with the handle to send requests on it.
    case http1Client(HTTP1ClientConnection)
}

/// How a connection's channel is built, for clients and servers alike:
///
/// ```
/// TCP ─▶ [client: a proxy CONNECT tunnel] ─▶ [TLS, offering/accepting the configured ALPN list] ─▶ negotiated protocol
///                                                                                                 └─▶ http2: ConnectionHandler
/// ```
///
/// With ``proxyTunnel`` set, ``ProxyTunnelHandler`` comes first: it asks the proxy for the tunnel, and only once the
/// proxy answered 2xx are the other stages added (so TLS starts its handshake, or HTTP/2 its preface, through the
/// tunnel). Its failure (a non-2xx answer, or no answer in time) fails the setup.
///
/// Without TLS the connection is HTTP/2 with prior knowledge (RFC 9113 §3.3), or, on a server that serves HTTP/1.1
/// (``makeHTTP1Handler`` set), whichever the first bytes say (``CleartextProtocolSniffer``). With TLS,
/// ``ProtocolNegotiationHandler`` waits for the handshake and installs the handler of the protocol ALPN chose
/// (`h2`, or `http/1.1` on a server that serves it); a protocol this package cannot serve (or
/// none) fails the setup with ``TLSError/alpnMismatch(offered:negotiated:)``.
struct ChannelSetup: Sendable {
    var tls: TLSContext?
    var role: TLSHandler.Role
    /// Client: the host connected to (SNI and certificate verification).
    var serverHostname: String?
    /// How long the TLS handshake may take. With ``proxyTunnel``, the time allowed for the tunnel and the handshake
    /// together, counted from ``configure(_:)`` (which a client bootstrap calls before it connects).
    var handshakeTimeout: Duration
    /// Client: a forward proxy's tunnel to open first (the channel is then connected to the proxy, and
    /// ``serverHostname`` is still the target's).
    var proxyTunnel: ProxyTunnel? = nil
    /// Makes the HTTP/2 handler, once the channel is known to speak HTTP/2.
    var makeHTTP2Handler: @Sendable () throws -> ConnectionHandler
    /// Server: makes the HTTP/1.1 handler (its argument: whether the connection is TLS); `nil` serves HTTP/2 only.
    var makeHTTP1Handler: (@Sendable (_ overTLS: Bool) -> HTTP1ServerHandler)? = nil
    /// Server, cleartext with HTTP/1.1: how long the first bytes may take to tell the protocol.
    var sniffTimeout: Duration? = nil
    /// Client: makes the HTTP/1.1 handler when the server picks `http/1.1` by ALPN, or picks nothing (RFC 7301 §3.2:
    /// a server that ignores ALPN speaks HTTP/1.1); `nil` speaks HTTP/2 only.
    var makeHTTP1ClientHandler: (@Sendable () -> HTTP1ClientHandler)? = nil
    /// Client, cleartext: HTTP/1.1 rather than HTTP/2 with prior knowledge.
    var cleartextHTTP1 = false

    /// The protocol of a cleartext connection that does not sniff (every client's, and an HTTP/2-only server's).
    private var cleartextProtocol: ApplicationProtocol { cleartextHTTP1 && makeHTTP1ClientHandler != nil ? .http1 : .http2 }

    /// Adds the stages to `channel` (call it on the channel's event loop, e.g. from a channel initializer). The
    /// future succeeds once the protocol's handler is in place.
    func configure(_ channel: any Channel) throws -> EventLoopFuture<NegotiatedConnection> {
        let pipeline = channel.pipeline.syncOperations
        if let proxyTunnel {
            let promise = channel.eventLoop.makePromise(of: NegotiatedConnection.self)
            let deadline = NIODeadline.now() + TimeAmount(handshakeTimeout)
            try pipeline.addHandler(
                ProxyTunnelHandler(tunnel: proxyTunnel, deadline: deadline, promise: promise) { [self] _, promise in
                    // What is left of the time, for the handshake (at least a millisecond: the tunnel was in time).
                    let left = max(deadline - .now(), .milliseconds(1))
                    return try addStages(to: channel, promise: promise, handshakeTimeout: .nanoseconds(left.nanoseconds))
                }
            )
            return promise.futureResult
        }
        guard tls != nil else {
            guard makeHTTP1Handler != nil else {
                return channel.eventLoop.makeSucceededFuture(try install(cleartextProtocol, in: pipeline, after: nil))
            }
            let promise = channel.eventLoop.makePromise(of: NegotiatedConnection.self)
            try pipeline.addHandler(CleartextProtocolSniffer(promise: promise, timeout: sniffTimeout) { [self] found, sniffer in
                try install(found, in: channel.pipeline.syncOperations, after: sniffer)
            })
            return promise.futureResult
        }
        let promise = channel.eventLoop.makePromise(of: NegotiatedConnection.self)
        _ = try addStages(to: channel, promise: promise, handshakeTimeout: handshakeTimeout)
        return promise.futureResult
    }

    /// Adds the stages after TCP (or the tunnel): TLS and the negotiation handler, which completes `promise` once the
    /// handshake is done (returns `nil`), or, without TLS, the HTTP/2 handler at once (returns its connection).
    private func addStages(
        to channel: any Channel,
        promise: EventLoopPromise<NegotiatedConnection>,
        handshakeTimeout: Duration
    ) throws -> NegotiatedConnection? {
        let pipeline = channel.pipeline.syncOperations
        guard let tls else { return try install(cleartextProtocol, in: pipeline, after: nil) }
        try pipeline.addHandler(TLSHandler(context: tls, role: role, serverHostname: serverHostname, handshakeTimeout: handshakeTimeout))
        let fallback: ApplicationProtocol? = makeHTTP1ClientHandler != nil ? .http1 : nil
        try pipeline.addHandler(ProtocolNegotiationHandler(promise: promise, fallback: fallback) { [self] negotiated, negotiation in
            try install(negotiated, in: channel.pipeline.syncOperations, after: negotiation)
        })
        return nil
    }

    private func install(
        _ negotiated: ApplicationProtocol,
        in pipeline: ChannelPipeline.SynchronousOperations,
        after previous: (any ChannelHandler)?
    ) throws -> NegotiatedConnection {
        switch negotiated {
        case .http2:
            let handler = try makeHTTP2Handler()
            try pipeline.addHandler(handler, position: previous.map { .after($0) } ?? .last)
            guard let reference = handler.reference else { throw HTTP2Error.sessionClosed }
            return .http2(reference)
        case .http1:
            if let makeHTTP1ClientHandler {
                let handler = makeHTTP1ClientHandler()
                // The decoder sees each request go out (a HEAD response has no body) and hands up 1xx heads; after an
                // h2c 101 it forwards what followed (the server's HTTP/2 SETTINGS) once removed.
                let leftOver: RemoveAfterUpgradeStrategy = handler.mayUpgrade ? .forwardBytes : .dropBytes
                let handlers: [any ChannelHandler] = [
                    HTTPRequestEncoder(),
                    ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: leftOver, informationalResponseStrategy: .forward)),
                    handler,
                ]
                try add(handlers, to: pipeline, after: previous)
                guard let connection = handler.connection else { throw HTTP2Error.sessionClosed }
                return .http1Client(connection)
            }
            guard let makeHTTP1Handler else {
                throw TLSError.alpnMismatch(offered: [], negotiated: ApplicationProtocol.http1.rawValue)
            }
            // The decoder forwards what follows an h2c Upgrade request (the client's HTTP/2 preface) once removed.
            let handler = makeHTTP1Handler(tls != nil)
            let decoder = HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: handler.configuration.decoderLimits)
            let handlers: [any ChannelHandler] = [ByteToMessageHandler(decoder), HTTPResponseEncoder(), handler]
            try add(handlers, to: pipeline, after: previous)
            return .http1
        }
    }

    private func add(_ handlers: [any ChannelHandler], to pipeline: ChannelPipeline.SynchronousOperations, after previous: (any ChannelHandler)?) throws {
        if let previous {
            for handler in handlers.reversed() { try pipeline.addHandler(handler, position: .after(previous)) }
        } else {
            try pipeline.addHandlers(handlers)
        }
    }
}

/// Sits above the TLS handler until the handshake completes, then installs the handler of the protocol ALPN chose
/// and removes itself (the TLS details go on up, for the new handler's logs). A failure (the handshake's, or ALPN
/// choosing nothing this package speaks) fails the promise, goes up the pipeline as an error, and closes the channel.
final class ProtocolNegotiationHandler<Result: Sendable>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var promise: EventLoopPromise<Result>?
    /// The protocol when the handshake chose none (the client offered no ALPN); `nil` fails the setup.
    private let fallback: ApplicationProtocol?
    private let install: (ApplicationProtocol, ProtocolNegotiationHandler) throws -> Result

    init(
        promise: EventLoopPromise<Result>,
        fallback: ApplicationProtocol? = nil,
        install: @escaping (ApplicationProtocol, ProtocolNegotiationHandler) throws -> Result
    ) {
        self.promise = promise
        self.fallback = fallback
        self.install = install
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let handshake = event as? TLSHandshakeCompleted, let promise else {
            return context.fireUserInboundEventTriggered(event)
        }
        self.promise = nil
        let chosen: ApplicationProtocol? =
            if let name = handshake.negotiatedProtocol { ApplicationProtocol(rawValue: name) } else { fallback }
        guard let negotiated = chosen else {
            return fail(
                context: context,
                TLSError.alpnMismatch(offered: handshake.offeredProtocols, negotiated: handshake.negotiatedProtocol),
                promise
            )
        }
        do {
            promise.succeed(try install(negotiated, self))
        } catch {
            return fail(context: context, error, promise)
        }
        context.fireUserInboundEventTriggered(event)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let promise else { return context.fireErrorCaught(error) }
        self.promise = nil
        fail(context: context, error, promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let promise {
            self.promise = nil
            promise.fail(HTTP2Error.connectionClosed(errorCode: nil))
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let promise {
            self.promise = nil
            promise.fail(HTTP2Error.connectionClosed(errorCode: nil))
        }
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error, _ promise: EventLoopPromise<Result>) {
        promise.fail(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ProtocolNegotiationHandler: Sendable {}
