import NIOCore
import HTTPTypes
import Logging
public import NGHTTP2

/// What a connection needs to know from its client or server configuration.
struct ConnectionConfiguration: Sendable {
    var settings: [Setting]
    var options: Session.Options
    var connectionWindowSize: Int32
    var bodyHighWatermark: Int
    var logger: Logger
    var frameObserver: FrameObserver?
}

/// Sees every frame a connection sends and receives, e.g. to print them like `nghttp -v`.
public typealias FrameObserver = @Sendable (_ direction: FrameDirection, _ frame: Frame) -> Void

/// Whether a frame was sent or received.
public enum FrameDirection: Sendable, Hashable {
    /// This side sent the frame.
    case sent
    /// The peer sent the frame.
    case received
}

/// Owns one ``Session`` on its channel's event loop: feeds it what the socket reads, writes what it has to send
/// once per read burst (or event-loop tick), and connects its streams to readers, writers and handler tasks.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role {
        case client
        case server(handler: ServerSession.Handler, pool: ConnectionPool)
    }

    let session: Session
    let role: Role
    let configuration: ConnectionConfiguration
    var logger: Logger
    var context: ChannelHandlerContext?
    var reference: ConnectionReference?
    /// Readers that wait for bytes received in this read burst; woken at its end.
    var readersToWake: [StreamReader.Storage] = []
    /// Whether the connection's end was handled (channel inactive, or the handler removed before that).
    private var hasEnded = false
    /// Runs the server's request handlers on this connection's event loop.
    var executor: EventLoopExecutor?
    /// The peer's address, read once (the channel takes a lock for it).
    var remoteAddress: SocketAddress?
    var streams: [Int32: StreamContext] = [:]
    /// The shared body of requests without one (server); dropped with ``reference`` (it holds one).
    var emptyRequestBody: StreamReader?
    /// Readers whose taken bytes wait to be credited, queued from other threads (see ``ConnectionReference/credit(_:)``).
    let pendingCredits = LoopInbox<StreamReader.Storage>()
    /// Requests queued from other threads (see ``ConnectionReference/startRequest(_:)``).
    let pendingRequests = LoopInbox<PendingRequest>()
    /// True between channelRead and channelReadComplete: the flush then happens once, at the end of the burst.
    var isReading = false
    var flushScheduled = false
    var isClosing = false
    /// Set once a fatal error ended the session.
    var hasFailed = false
    /// Why the connection ended, once it did: new requests fail with it.
    var endedBecause: (any Error)?
    /// The GOAWAY received from the peer, if any.
    var goawayReceived: (lastStreamID: Int32, errorCode: ErrorCode)?
    /// PINGs in flight, by opaque data.
    var pings: [UInt64: (sent: ContinuousClock.Instant, continuation: CheckedContinuation<Duration, any Error>)] = [:]
    var nextPingData: UInt64 = 1
    /// Set once the connection is closed, with why.
    let closed: EventLoopPromise<Void>
    /// Server graceful shutdown: the PING whose ACK triggers the final GOAWAY.
    var shutdownPing: UInt64?
    /// Succeeds when the connection can carry requests (at once for h2c; after the handshake with TLS), fails
    /// with the error that ended it before that.
    var ready: EventLoopPromise<Void>?
    /// Whether a TLS handler sits below and must finish its handshake first.
    var waitsForTLS = false
    /// What the TLS handshake negotiated, once it completed.
    var tls: TLSHandshakeCompleted?

    init(role: Role, configuration: ConnectionConfiguration, closed: EventLoopPromise<Void>) throws {
        self.role = role
        self.configuration = configuration
        self.logger = configuration.logger
        self.closed = closed
        var options = configuration.options
        options.noAutoWindowUpdate = true
        switch role {
        case .client: session = try Session(role: .client, options: options)
        case .server: session = try Session(role: .server, options: options)
        }
        installCallbacks()
    }

    var isServer: Bool {
        if case .server = role { return true }
        return false
    }

    /// Socket reads of up to 256 KiB (NIO's default stops at 64 KiB): a bulk transfer takes fewer reads and read
    /// bursts, which cut the client's CPU time for a 1 GiB download by about a third. The read buffer starts at NIO's
    /// 2 KiB and grows only while reads fill it (an idle connection keeps a small one).
    static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 << 10)
    /// The first this many bytes of a long flush go to the socket at once, the rest in a second write. A peer with
    /// a small receive window (64 KiB is common) returns WINDOW_UPDATE after half of it, while the rest is still being
    /// written; in one write, each window would cost a full round trip (a 1 GiB upload to nghttpd's default windows
    /// took 2.25 s in one write per flush, 1.4 s in two; with large windows both take the same time).
    static let earlyWrite = 32 << 10

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.executor = EventLoopExecutor(context.eventLoop)
        self.remoteAddress = context.channel.remoteAddress
        self.reference = ConnectionReference(self, eventLoop: context.eventLoop)
        logger[metadataKey: "h2.peer"] = "\(remoteAddress.map { "\($0)" } ?? "?")"
        if context.channel.isActive { start() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A channel that never became active (its connect failed) ends here: its promises must still complete.
        connectionEnded()
        // Break the cycles handler → context → handler and handler → reference → handler: the handler, and the
        // libnghttp2 session it owns, go as soon as the last stream, reader or task lets go of its reference.
        self.context = nil
        self.reference = nil
        self.emptyRequestBody = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }

    private var started = false

    private func start() {
        guard !started else { return }
        started = true
        do {
            try session.submitSettings(configuration.settings)
            if configuration.connectionWindowSize > HTTP2Constants.initialWindowSize {
                try session.setLocalWindowSize(configuration.connectionWindowSize)
            }
        } catch {
            logger.error("cannot start the HTTP/2 session: \(error)")
            context?.close(promise: nil)
            return
        }
        if case .server(_, let pool) = role, let reference { pool.add(reference) }
        logger.debug("HTTP/2 connection started")
        if !waitsForTLS { ready?.succeed() }
        flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let handshake = event as? TLSHandshakeCompleted {
            tls = handshake
            logger.debug("TLS \(handshake.tlsVersion), ALPN \(handshake.negotiatedProtocol ?? "none"), \(handshake.cipher ?? "")")
            ready?.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        isReading = true
        do {
            try buffer.withUnsafeReadableBytes { bytes in
                _ = try session.receive(bytes)
            }
        } catch let error as NGHTTP2Error {
            connectionError(error)
        } catch {
            logger.error("HTTP/2 callback failed: \(error)")
            connectionError(.callbackFailure)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        isReading = false
        flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionEnded()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error: \(error)")
        if endedBecause == nil { endedBecause = error }
        isClosing = true
        ready?.fail(error)
        failAllStreams(error)
        context.close(promise: nil)
    }

    // MARK: Output

    /// Writes what the session has to send after the current read burst or event-loop tick.
    func scheduleFlush() {
        guard !isReading, !flushScheduled, let reference else { return }
        flushScheduled = true
        reference.eventLoop.execute { [handler = reference.handler] in
            handler.value.flushScheduled = false
            handler.value.flush()
        }
    }

    /// Hands what the read burst brought to the readers waiting for it, crediting those bytes at once (the
    /// WINDOW_UPDATE goes out with this flush).
    private func wakeReaders() {
        guard !readersToWake.isEmpty else { return }
        let readers = readersToWake
        readersToWake.removeAll(keepingCapacity: true)
        for reader in readers {
            let credit = reader.wake()
            if credit > 0 { try? session.consume(streamID: reader.streamID, count: credit) }
        }
    }

    /// Drains the session's output into one buffer and writes it; closes the channel when the session is done.
    func flush() {
        wakeReaders()
        guard let context, context.channel.isActive else { return }
        // Inside a callback of libnghttp2 (a request handler started at once runs there until it first suspends):
        // the read burst's end, or the next event-loop tick, sends instead.
        guard !session.isProcessing else { return scheduleFlush() }
        if context.channel.isWritable {
            var buffer = context.channel.allocator.buffer(capacity: 0)
            do {
                var wroteEarly = false
                try session.send { bytes in
                    buffer.writeBytes(bytes)
                    if !wroteEarly && buffer.readableBytes >= Self.earlyWrite {
                        wroteEarly = true
                        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
                        buffer = context.channel.allocator.buffer(capacity: 0)
                    }
                }
            } catch let error as NGHTTP2Error {
                return connectionError(error)
            } catch {
                logger.error("HTTP/2 send failed: \(error)")
                return connectionError(.callbackFailure)
            }
            if buffer.readableBytes > 0 {
                context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            }
        }
        if !session.wantsRead && !session.wantsWrite && !isClosing {
            isClosing = true
            logger.debug("HTTP/2 session finished; closing")
            // Close after everything written so far has reached the socket.
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    /// A fatal protocol error: GOAWAY with the matching code, flush, close; every stream fails.
    func connectionError(_ error: NGHTTP2Error) {
        guard !hasFailed else {
            // The session cannot even send its GOAWAY: close the socket.
            if !isClosing, let context {
                isClosing = true
                context.close(promise: nil)
            }
            return
        }
        hasFailed = true
        logger.debug("HTTP/2 connection error: \(error)")
        let code: ErrorCode =
            switch error {
            case .flooded, .tooManyContinuations: .enhanceYourCalm
            case .headerCompression: .compressionError
            case .flowControl: .flowControlError
            case .frameSizeError: .frameSizeError
            case .callbackFailure, .noMemory: .internalError
            default: .protocolError
            }
        failAllStreams(HTTP2Error.protocolViolation(error))
        try? session.terminate(errorCode: code)
        flush()
        if !isClosing, let context {
            isClosing = true
            context.close(promise: nil)
        }
    }

    private func connectionEnded() {
        guard !hasEnded else { return }
        hasEnded = true
        let error = HTTP2Error.connectionClosed(errorCode: goawayReceived?.errorCode)
        isClosing = true
        if endedBecause == nil { endedBecause = error }
        failAllStreams(error)
        for (_, ping) in pings { ping.continuation.resume(throwing: error) }
        pings.removeAll()
        if case .server(_, let pool) = role, let reference { pool.remove(reference) }
        logger.debug("HTTP/2 connection closed")
        ready?.fail(error)
        closed.succeed()
    }

    func failAllStreams(_ error: any Error) {
        let open = streams
        streams.removeAll()
        for (_, stream) in open { fail(stream, error) }
    }

    /// Fails everything waiting on a stream that is gone.
    func fail(_ stream: StreamContext, _ error: any Error) {
        if let response = stream.response {
            stream.response = nil
            response.resume(throwing: error)
        }
        let discarded = stream.inbound.fail(error)
        if discarded > 0 { try? session.consumeConnection(count: discarded) }
        stream.outbound?.fail(error)
        stream.outbound = nil
        stream.failWholeBody()
        stream.handlerTask?.cancel()
    }

    // MARK: Flow control and stream control (from readers, writers and tasks)

    func credit(from storage: StreamReader.Storage) {
        let count = storage.takeCredit()
        guard count > 0 else { return }
        try? session.consume(streamID: storage.streamID, count: count)
        scheduleFlush()
    }

    /// The application let go of a body reader. Its unread bytes go back to the windows. A client cancels the
    /// stream; a server that has answered lets the response finish, and then asks the client to stop sending
    /// (RST_STREAM NO_ERROR, see ``endStreamSent(_:)``).
    func readerDropped(streamID: Int32, unread: Int, cancel: Bool) {
        if unread > 0 { try? session.consume(streamID: streamID, count: unread) }
        if cancel, let stream = streams[streamID], !(isServer && stream.responseSubmitted) {
            try? session.submitRSTStream(streamID: streamID, errorCode: .cancel)
        }
        scheduleFlush()
    }

    /// The application stopped reading a body (cancelled its task, or called ``StreamReader/cancel()``). A client
    /// resets the stream; a server that already answered only stops reading and lets its response finish.
    func cancelInbound(_ streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        guard isServer, stream.responseSubmitted else {
            return resetStream(streamID, errorCode: .cancel, failing: CancellationError())
        }
        let discarded = stream.inbound.fail(CancellationError())
        if discarded > 0 { try? session.consume(streamID: streamID, count: discarded) }
        scheduleFlush()
    }

    func resetStream(_ streamID: Int32, errorCode: ErrorCode, failing error: any Error) {
        guard let stream = streams[streamID] else { return }
        try? session.submitRSTStream(streamID: streamID, errorCode: errorCode)
        streams[streamID] = nil
        fail(stream, error)
        scheduleFlush()
    }

    /// A body's producer failed: what it wrote so far goes out first, then RST_STREAM INTERNAL_ERROR.
    func abortBody(streamID: Int32, error: any Error) {
        flush()
        resetStream(streamID, errorCode: .internalError, failing: error)
    }

    /// A writer queued bytes or finished: let libnghttp2 read them.
    func bodyHasData(_ body: OutboundBody) {
        session.resumeData(streamID: body.streamID)
        scheduleFlush()
    }

    /// Makes a DATA provider reading from `body` (the body itself is the source: no closure to allocate).
    func dataProvider(for body: OutboundBody) -> DataProvider {
        DataProvider(source: body)
    }
}

@available(*, unavailable)
extension ConnectionHandler: Sendable {}
