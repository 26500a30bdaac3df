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
    var timeouts: ConnectionStateMachine.Timeouts
    var logger: Logger
    var frameObserver: FrameObserver?
    /// Connection, stream, byte and RST_STREAM/GOAWAY counts; `nil` records nothing (see ``Observability``).
    var metrics: ConnectionMetrics? = nil
    /// Client: gets the server's pushes; `nil` refuses them (SETTINGS_ENABLE_PUSH = 0).
    var pushHandler: ClientSession.PushHandler? = nil
    /// Server: answers requests without a task before the handler gets them (see ``ServerSession/ImmediateHandler``).
    var immediateHandler: ServerSession.ImmediateHandler? = nil
}

/// Owns one ``Session`` on its channel's event loop, as a thin shell around ``ConnectionStateMachine``: NIO events
/// and libnghttp2's callbacks go in, the machine's actions come out. It feeds the session what the socket reads,
/// writes what it has to send once per read burst (or event-loop tick), connects its streams to readers, writers
/// and handler tasks, and tells its ``ConnectionDelegate`` what happened.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role {
        case client
        case server(handler: ServerSession.Handler)
    }

    let session: Session
    let role: Role
    let configuration: ConnectionConfiguration
    private(set) var logger: Logger
    /// The lifecycle: state, deadlines, PINGs, open streams.
    private(set) var machine: ConnectionStateMachine
    private let delegate: (any ConnectionDelegate)?
    /// Whether the delegate hears of every stream (read once).
    private let reportsStreams: Bool
    private(set) var context: ChannelHandlerContext?
    private(set) var reference: ConnectionReference?
    /// Succeeds once the connection is closed (made when the handler is added).
    private var closed: EventLoopPromise<Void>?
    /// Readers that wait for bytes received in this read burst; woken at its end.
    var readersToWake: [StreamReader.Storage] = []
    /// Runs the server's request handlers on this connection's event loop.
    private(set) var executor: EventLoopExecutor?
    /// The peer's address, read once (the channel takes a lock for it).
    private(set) var remoteAddress: SocketAddress?
    let streams = StreamTable()
    /// Finds the frames in what the peer sends, for ``history``.
    private var scanner: InboundFrameScanner
    /// What is left of closed streams, to answer frames on them (RFC 9113 §5.1).
    var history: StreamHistory
    /// The stream of the last RST_STREAM received (libnghttp2 closes it right after telling us).
    var peerResetStream: Int32 = 0
    /// The peer went over ``ConnectionStateMachine/Timeouts/glitches``: the connection ends after this read.
    private var glitchLimitReached = false
    /// The shared body of requests without one (server); dropped with ``reference`` (it holds one).
    var emptyRequestBody: StreamReader?
    /// Converts received heads to `HTTPFields`, reusing what the head before became.
    var receivedFields = ReceivedFieldsConverter()
    /// Client: streams the server opened with PUSH_PROMISE that are still open. They are not in the stream counts the
    /// delegate sees (a pool's load is the requests it sent: MAX_CONCURRENT_STREAMS limits those).
    var pushedStreamsOpen = 0
    /// Readers whose taken bytes wait to be credited, queued from other threads (see ``ConnectionReference/credit(_:)``).
    let pendingCredits = LoopInbox<StreamReader.Storage>()
    /// Requests queued from other threads (see ``ConnectionReference/startRequest(_:)``).
    let pendingRequests = LoopInbox<PendingRequest>()
    /// The application's PINGs in flight, by opaque data.
    private var pingWaiters: [UInt64: CheckedContinuation<Duration, any Error>] = [:]
    /// The one task at the machine's next deadline.
    private var timer = DeadlineTimer()
    /// When the last read returned (``ServerSession/Request/receivedAt``); a handler made for an h2c Upgrade starts
    /// after the read that brought its request.
    var lastReadAt = ContinuousClock.now
    /// True between channelRead and channelReadComplete: the flush then happens once, at the end of the burst.
    private var isReading = false
    private var flushScheduled = false
    /// Bytes read in the current read burst, counted once at its end (``ConnectionMetrics``).
    var bytesReadInBurst = 0
    /// Whether ``ConnectionMetrics/connectionsOpen`` counts this connection.
    var countedAsOpen = false
    /// Server: the HTTP/1.1 request this connection was upgraded from (h2c, RFC 7540 §3.2), answered on stream 1
    /// once the session has started.
    var upgrade: H2CUpgradeRequest?
    /// Client: the HTTP/1.1 request whose h2c offer the server accepted (RFC 7540 §3.2); its response comes on
    /// stream 1 once the session has started.
    var clientUpgrade: H2CUpgradedRequest?
    /// Client: whether the server's first bytes were looked at (an HTTP/1.x answer to the preface is told apart).
    private var sawFirstBytes = false

    init(role: Role, configuration: ConnectionConfiguration, delegate: (any ConnectionDelegate)?) throws {
        self.role = role
        self.configuration = configuration
        self.logger = configuration.logger
        self.delegate = delegate
        self.reportsStreams = delegate?.observesStreams ?? false
        var options = configuration.options
        options.noAutoWindowUpdate = true
        let sessionRole: Session.Role
        switch role {
        case .client: sessionRole = .client
        case .server: sessionRole = .server
        }
        // libnghttp2 1.52 applies a client's PRIORITY_UPDATE (RFC 9218 §7.1) to its scheduler only when it parses the
        // frame itself; without this a server skips the frame unread.
        if sessionRole == .server, !options.builtinRecvExtensionTypes.contains(.priorityUpdate) {
            options.builtinRecvExtensionTypes.append(.priorityUpdate)
        }
        session = try Session(role: sessionRole, options: options)
        machine = ConnectionStateMachine(role: sessionRole, timeouts: configuration.timeouts)
        scanner = InboundFrameScanner(skipsPreface: sessionRole == .server)
        history = StreamHistory(peerOpensOddStreams: sessionRole == .server)
        installCallbacks()
    }

    /// The event loop's clock (virtual on an embedded loop), as the machine's instants. Within a read burst it is
    /// read once: every request of the burst starts its header deadline at the burst's time.
    var now: ConnectionStateMachine.Instant {
        if isReading, let burstStart { return burstStart }
        let now = ConnectionStateMachine.Instant.nanoseconds(Int64((context?.eventLoop.now ?? .now()).uptimeNanoseconds))
        if isReading { burstStart = now }
        return now
    }
    /// ``now`` during the current read burst, once read.
    private var burstStart: ConnectionStateMachine.Instant?

    var isServer: Bool {
        if case .server = role { return true }
        return false
    }

    /// Whether a new request may be sent now: the connection is not going away and stream IDs are left.
    var isAcceptingRequests: Bool {
        machine.acceptsNewStreams && context?.channel.isActive == true && session.isRequestAllowed
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
        let closed = context.eventLoop.makePromise(of: Void.self)
        self.closed = closed
        self.reference = ConnectionReference(self, eventLoop: context.eventLoop, closed: closed.futureResult)
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

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let handshake = event as? TLSHandshakeCompleted {
            logger.debug("TLS \(handshake.tlsVersion), ALPN \(handshake.negotiatedProtocol ?? "none"), \(handshake.cipher ?? "")")
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Feeds what the socket read to libnghttp2. The scanner finds each frame first; one that ``StreamHistory`` must
    /// check (rare: a frame on a closed stream, a PRIORITY frame) is checked once libnghttp2 has read the frames
    /// before it, so that the check sees the streams they closed and a GOAWAY names the last stream they opened.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if !sawFirstBytes, !isServer {
            sawFirstBytes = true
            if let statusLine = buffer.http1StatusLine { return peerSpeaksHTTP1(statusLine, context: context) }
        }
        isReading = true
        if isServer { lastReadAt = .now }
        bytesReadInBurst &+= buffer.readableBytes
        history.readBegins()
        buffer.withUnsafeReadableBytes { bytes in
            var fed = 0
            var alive = true
            var framesUnfed = 0
            var slice = Self.framesPerSlice
            scanner.scan(bytes) { frame, start in
                framesUnfed += 1
                if framesUnfed >= slice, start > fed {
                    framesUnfed = 0
                    slice *= 2
                    alive = receive(UnsafeRawBufferPointer(rebasing: bytes[fed..<start]))
                    fed = start
                    guard alive else { return false }
                    if submittedSinceFlush >= Self.submissionsPerEarlyWrite {
                        flush()
                        alive = session.wantsRead  // the write may have finished the session
                        guard alive else { return false }
                    }
                }
                // An empty DATA frame that does not end its stream carries nothing (CVE-2019-9518): a glitch.
                if frame.type == InboundFrameScanner.Frame.data, frame.length == 0, frame.flags & InboundFrameScanner.Frame.endStream == 0 {
                    peerGlitched()
                }
                guard history.needsCheck(frame, isOpen: { streams[$0] != nil }) else { return true }
                if start > fed {
                    alive = receive(UnsafeRawBufferPointer(rebasing: bytes[fed..<start]))
                    fed = start
                    guard alive else { return false }
                }
                guard let violation = history.violation(frame, isOpen: streams[frame.streamID] != nil) else { return true }
                alive = peerViolated(violation)
                return alive
            }
            if alive, fed < bytes.count { _ = receive(UnsafeRawBufferPointer(rebasing: bytes[fed...])) }
        }
    }

    /// Hands `bytes` to libnghttp2; `false` when that ended the connection.
    private func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        do {
            _ = try session.receive(bytes)
            guard !glitchLimitReached else {
                glitchLimitExceeded()
                return false
            }
            return true
        } catch let error as NGHTTP2Error {
            connectionError(error)
        } catch {
            logger.error("HTTP/2 callback failed: \(error)")
            connectionError(.callbackFailure)
        }
        return false
    }

    /// The peer broke a rule libnghttp2 does not check (see ``StreamHistory``). Returns whether the connection goes on.
    private func peerViolated(_ violation: StreamHistory.Violation) -> Bool {
        switch violation {
        case .stream(let streamID, let errorCode):
            logger.debug("stream \(streamID): a frame after the peer's RST_STREAM; RST_STREAM \(errorCode) (RFC 9113 §5.1)")
            try? session.submitRSTStream(streamID: streamID, errorCode: errorCode)  // a glitch once sent
            return true
        case .connection(let errorCode, let reason):
            endConnection(errorCode: errorCode, reason: reason, failing: HTTP2Error.protocolViolation(errorCode: errorCode, detail: reason))
            return false
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        isReading = false
        burstStart = nil
        if let metrics = configuration.metrics { countBytesRead(metrics) }
        if configuration.timeouts.keepAliveInterval != nil { machine.peerActive(now: now) }
        flush()
        armTimer()
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

    /// The server answered the preface in HTTP/1.x (RFC 9113 §3.4 asks HTTP/2 of it): every request fails with an
    /// error that says so, not with a bare "connection closed"; no GOAWAY (the server would not understand it).
    private func peerSpeaksHTTP1(_ statusLine: String, context: ChannelHandlerContext) {
        let error = HTTP2Error.peerSpeaksHTTP1(statusLine: statusLine)
        logger.debug("\(error)")
        machine.channelFailed(error)
        // Every stream fails with this error itself, sent or not: another connection would get the same answer.
        let open = streams.takeAll()
        if let metrics = configuration.metrics, !open.isEmpty { metrics.streamsClosed(open.count) }
        for stream in open.values {
            machine.streamClosed(now: now)
            fail(stream, error)
        }
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error: \(error)")
        machine.channelFailed(error)
        failAllStreams(error)
        context.close(promise: nil)
    }

    // MARK: Output

    /// Writes what the session has to send after the current read burst or event-loop tick.
    /// How many requests or responses submitted outside a read burst are gathered before they are written at once,
    /// not at the end of the event-loop tick.
    ///
    /// A tick that runs many tasks (a response read wakes up to one per stream) would otherwise write all their
    /// submissions in one go at its end: the peer idles while this side works through the batch, then this side idles
    /// while the peer answers it, and the two take turns on one core each. Writing the first part early lets the peer
    /// start on it; the sides then overlap. Measured with `h2 load -c 1 -m 100` against nghttpd on 2 cores: 111k
    /// req/s writing once per tick, 137k writing every 25, about 150k every 35 to 80 (each write costs a syscall).
    static let submissionsPerEarlyWrite = 50
    /// Requests or responses submitted since the last write (see ``submissionsPerEarlyWrite``).
    private var submittedSinceFlush = 0
    /// How many frames of a read go to libnghttp2 first; each later slice of the same read is twice the one before.
    /// After each slice, the responses it produced are written once ``submissionsPerEarlyWrite`` have gathered, so
    /// that a read of many requests is answered in pieces while it is processed, not all at its end: the peer reads
    /// the first answers while this side works on the rest, and growing slices keep the writes few.
    ///
    /// Measured with `h2load -c 1 -t 1` against `ServerExample` on 2 cores, `-m 100` / `-m 1000`: unsliced 204k /
    /// 224k req/s; slices of 64 frames 265k / 274-279k; of 128, 204-210k / 281-287k (100 requests are never split);
    /// 64 doubling 268k / 290-292k. Slicing alone, with one write at the end of the read, was slower.
    static let framesPerSlice = 64

    /// A request or a response was submitted and its stream's state is complete: it is written with the others of
    /// this tick, or at once when ``submissionsPerEarlyWrite`` have gathered.
    func messageSubmitted() {
        submittedSinceFlush += 1
        if submittedSinceFlush >= Self.submissionsPerEarlyWrite, !isReading, !session.isProcessing {
            flush()
        } else {
            scheduleFlush()
        }
    }

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
        submittedSinceFlush = 0
        wakeReaders()
        guard let context, context.channel.isActive else { return }
        // Inside a callback of libnghttp2 (a request handler started at once runs there until it first suspends):
        // the read burst's end, or the next event-loop tick, sends instead.
        guard !session.isProcessing else { return scheduleFlush() }
        if context.channel.isWritable {
            var buffer = context.channel.allocator.buffer(capacity: 0)
            var writtenEarly = 0
            do {
                var wroteEarly = false
                try session.send { bytes in
                    buffer.writeBytes(bytes)
                    if !wroteEarly && buffer.readableBytes >= Self.earlyWrite {
                        wroteEarly = true
                        writtenEarly = buffer.readableBytes
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
            if let metrics = configuration.metrics, writtenEarly + buffer.readableBytes > 0 {
                metrics.sent(writtenEarly + buffer.readableBytes)
            }
            if buffer.readableBytes > 0 {
                context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            }
            // The resets just sent took the peer over its glitch limit.
            if glitchLimitReached { return glitchLimitExceeded() }
        }
        if !session.wantsRead && !session.wantsWrite && machine.sessionFinished(now: now) {
            logger.debug("HTTP/2 session finished; closing")
            // Close after everything written so far has reached the socket (or the linger deadline passed).
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                channel.close(promise: nil)
            }
            armTimer()
        }
    }

    /// Sends the GOAWAY queued last and closes the channel at once (a peer that does not read must not keep it).
    private func flushAndClose() {
        flush()
        context?.close(promise: nil)
    }

    // MARK: Ending

    /// A fatal protocol error: GOAWAY with the matching code, flush, close; every stream fails.
    func connectionError(_ error: NGHTTP2Error) {
        guard machine.connectionFailed(HTTP2Error.protocolViolation(error)) else {
            // Closing already (the session may not even be able to send its GOAWAY): make sure the socket goes.
            context?.close(promise: nil)
            return
        }
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
        flushAndClose()
    }

    /// The peer caused a stream error (this side sent RST_STREAM for it) or sent an empty DATA frame. Inside a
    /// libnghttp2 callback: the connection ends after the read (``receive(_:)``) or the write (``flush()``).
    func peerGlitched() {
        if !glitchLimitReached, !machine.isClosingOrClosed, machine.peerGlitched(now: now) { glitchLimitReached = true }
    }

    private func glitchLimitExceeded() {
        glitchLimitReached = false
        let limit = configuration.timeouts.glitches ?? GlitchLimit()
        let reason = "more than \(limit.burst) stream errors and invalid frames, or more than \(limit.perSecond) a second (RFC 9113 §10.5)"
        endConnection(errorCode: .enhanceYourCalm, reason: reason, failing: HTTP2Error.protocolViolation(errorCode: .enhanceYourCalm, detail: reason))
    }

    /// A GOAWAY left (a libnghttp2 callback). One with an error code that nothing here asked for is libnghttp2's
    /// answer to a protocol error it found (RFC 9113 §5.4.1): the streams still open fail with that reason.
    func goAwaySent(_ errorCode: ErrorCode, _ debugData: [UInt8]) {
        configuration.metrics?.goAway(.sent, errorCode)
        guard errorCode != .noError else { return }
        let reason = debugData.isEmpty ? "GOAWAY \(errorCode) sent" : String(decoding: debugData, as: UTF8.self)
        machine.ended(because: HTTP2Error.protocolViolation(errorCode: errorCode, detail: reason))  // the first reason wins
    }

    /// A protocol error this side detected itself: GOAWAY(`errorCode`) with `reason` as its debug data, flush, close;
    /// every stream fails with `error`.
    func endConnection(errorCode: ErrorCode, reason: String, failing error: HTTP2Error) {
        guard machine.connectionFailed(error) else {
            context?.close(promise: nil)
            return
        }
        logger.debug("HTTP/2 connection error: \(reason)")
        failAllStreams(error)
        try? session.submitGoaway(errorCode: errorCode, debugData: Array(reason.utf8))
        flushAndClose()
    }

    private func connectionEnded() {
        if let clientUpgrade {
            // Closed before the session started: stream 1 was never opened for the upgraded request.
            self.clientUpgrade = nil
            clientUpgrade.continuation.resume(throwing: HTTP2Error.connectionClosed(errorCode: nil, detail: "the connection closed during the h2c upgrade"))
        }
        let error = HTTP2Error.connectionClosed(errorCode: machine.goAwayReceived?.errorCode)
        guard machine.channelClosed(because: error) else { return }
        timer.cancel()
        failAllStreams(machine.endedBecause ?? error)
        // libnghttp2 makes no callback for streams still open when a session goes: their providers (a response
        // waiting for the window holds its stream's context, which holds this handler) would keep it alive.
        session.releaseStreamObjects()
        for data in machine.takeUnansweredPings() { pingWaiters.removeValue(forKey: data)?.resume(throwing: error) }
        logger.debug("HTTP/2 connection closed")
        if let metrics = configuration.metrics { countConnectionClosed(metrics) }
        if let reference { delegate?.connection(reference, emitted: .closed(machine.endedBecause)) }
        closed?.succeed()
    }

    /// Fails every open stream. On a client, requests libnghttp2 never sent, and those above the last stream a
    /// received GOAWAY says the server processed (RFC 9113 §6.8), fail as not processed (safe to retry).
    func failAllStreams(_ error: any Error) {
        let open = streams.takeAll()
        let lastProcessed = machine.goAwayReceived?.lastStreamID ?? .max
        if let metrics = configuration.metrics, !open.isEmpty { metrics.streamsClosed(open.count) }
        for (id, stream) in open {
            machine.streamClosed(now: now)
            if !isServer, !session.streamExists(id) || id > lastProcessed {
                fail(stream, HTTP2Error.notProcessed(streamID: id))
            } else {
                fail(stream, error)
            }
        }
    }

    /// Fails everything waiting on a stream that is gone.
    func fail(_ stream: StreamContext, _ error: any Error) {
        stream.timer?.cancel()
        if let response = stream.response {
            stream.response = nil
            response.resume(throwing: error)
        }
        if let pushed = stream.pushedResponse {
            stream.pushedResponse = nil
            pushed.fail(error)
        }
        let discarded = stream.inbound.fail(error)
        if discarded > 0 { try? session.consumeConnection(count: discarded) }
        stream.outbound?.fail(error)
        stream.outbound = nil
        stream.failWholeBody()
        stream.handlerTask?.cancel()
    }

    // MARK: Streams

    /// Tracks a stream that opened (`byPeer`: a request, on a server).
    func streamOpened(_ stream: StreamContext, byPeer: Bool) {
        streams[stream.id] = stream
        configuration.metrics?.streamOpened()
        if case .sendGoAway(let lastStreamID) = machine.streamOpened(stream.id, byPeer: byPeer) {
            logger.debug("stream \(stream.id) reached the connection's request limit; GOAWAY")
            try? session.submitGoaway(lastStreamID: lastStreamID, errorCode: .noError)
            scheduleFlush()
        }
        if !isServer, byPeer {
            pushedStreamsOpen += 1
        } else if reportsStreams, let reference {
            delegate?.connection(reference, emitted: .streamOpened(openStreams: machine.openStreams - pushedStreamsOpen))
        }
    }

    /// Stops tracking a stream; returns it if it was tracked.
    @discardableResult
    func streamRemoved(_ streamID: Int32) -> StreamContext? {
        guard let stream = streams.removeValue(forKey: streamID) else { return nil }
        configuration.metrics?.streamsClosed(1)
        stream.timer?.cancel()
        machine.streamClosed(now: now)
        if !isServer, streamID & 1 == 0 {
            pushedStreamsOpen -= 1
        } else if reportsStreams, let reference {
            delegate?.connection(reference, emitted: .streamClosed(openStreams: machine.openStreams - pushedStreamsOpen))
        }
        return stream
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
    /// (RST_STREAM NO_ERROR, see `endStreamSent`).
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
        guard let stream = streamRemoved(streamID) else { return }
        try? session.submitRSTStream(streamID: streamID, errorCode: errorCode)
        fail(stream, error)
        scheduleFlush()
    }

    /// The stream's response ended before its request (see `endStreamSent`): the rest of the request drains.
    func drainStarted(_ stream: StreamContext) {
        stream.isDraining = true
        machine.drainStarted(stream.id, now: now)
        armTimer()
    }

    func drainEnded(_ streamID: Int32) {
        machine.drainEnded(streamID)
    }

    /// Ends a stream's drain: RST_STREAM NO_ERROR asks the client to stop sending its request.
    func stopDraining(_ streamID: Int32) {
        guard let stream = streams[streamID], stream.isDraining, !stream.resetLocally else { return }
        stream.resetLocally = true
        machine.drainEnded(streamID)
        try? session.submitRSTStream(streamID: streamID, errorCode: .noError)
        scheduleFlush()
    }

    /// A body's producer failed: what it wrote so far goes out first, then RST_STREAM INTERNAL_ERROR (CONNECT_ERROR on
    /// a tunnel).
    func abortBody(streamID: Int32, error: any Error) {
        flush()
        // A tunnel's relay failed: a TCP connection error, CONNECT_ERROR (RFC 9113 §8.5).
        let errorCode: ErrorCode = streams[streamID]?.isConnectTunnel == true ? .connectError : .internalError
        resetStream(streamID, errorCode: errorCode, failing: error)
    }

    /// A writer queued `chunk`: libnghttp2 may read it.
    func enqueue(_ chunk: ByteBuffer, streamID: Int32) {
        guard let body = streams[streamID]?.outbound else { return }
        body.enqueue(chunk)
        session.resumeData(streamID: streamID)
        scheduleFlush()
    }

    /// The writer ended its body.
    func finishBody(streamID: Int32, trailers: HTTPFields?) {
        guard let body = streams[streamID]?.outbound, body.finish(trailers: trailers) else { return }
        session.resumeData(streamID: streamID)
        scheduleFlush()
    }

    // MARK: Lifecycle (start, frames, PINGs, shutdown, deadlines)

    /// A frame arrived (a libnghttp2 callback): the preface is complete and the peer alive; SETTINGS and GOAWAY
    /// change what the connection may do.
    func peerFrameReceived(_ frame: Frame) {
        machine.frameReceived()
        switch frame.payload {
        case .settings where !frame.flags.contains(.ack):
            let event: ConnectionEvent? =
                switch machine.settingsReceived(maxConcurrentStreams: session.remoteSetting(.maxConcurrentStreams)) {
                case .ready(let limit): .ready(maxConcurrentStreams: limit)
                case .maxConcurrentStreamsChanged(let limit): .maxConcurrentStreamsChanged(limit)
                case .none: nil
                }
            if let event, let reference { delegate?.connection(reference, emitted: event) }
        case .goaway(let lastStreamID, let errorCode, let debugData):
            configuration.metrics?.goAway(.received, errorCode)
            machine.goAwayReceived(lastStreamID: lastStreamID, errorCode: errorCode)
            logger.debug(
                "GOAWAY received: last stream \(lastStreamID), \(errorCode)\(debugData.isEmpty ? "" : ", \(String(decoding: debugData, as: UTF8.self))")"
            )
            if let reference { delegate?.connection(reference, emitted: .goAwayReceived(lastStreamID: lastStreamID, errorCode: errorCode)) }
        case .ping(let opaqueData) where frame.flags.contains(.ack):
            pingAcknowledged(opaqueData)
        default:
            break
        }
    }

    /// A header block began (a libnghttp2 callback): it must end within the header timeout.
    func headerBlockStarted(streamID: Int32) {
        machine.headerBlockStarted(streamID: streamID, now: now)
    }

    /// The stream was reset or its frame rejected: a header block in progress on it will not end.
    func headerBlockAbandoned(streamID: Int32) {
        machine.headerBlockAbandoned(streamID: streamID)
    }

    private func start() {
        guard machine.start(now: now), let reference else { return }
        if let delegate, !delegate.connectionStarted(reference) {
            logger.debug("connection refused: the server is at its connection limit or shutting down")
            try? session.submitSettings(configuration.settings)
            try? session.terminate(errorCode: .noError, lastStreamID: 0)
            _ = machine.connectionFailed(HTTP2Error.notProcessed(streamID: 0))
            return flushAndClose()
        }
        do {
            if let clientUpgrade {
                // libnghttp2 sends the settings of the offer as this side's first SETTINGS.
                self.clientUpgrade = nil
                try startUpgradedClient(clientUpgrade)
            } else {
                try session.submitSettings(configuration.settings)
            }
            if configuration.connectionWindowSize > HTTP2Constants.initialWindowSize {
                try session.setLocalWindowSize(configuration.connectionWindowSize)
            }
        } catch {
            logger.error("cannot start the HTTP/2 session: \(error)")
            context?.close(promise: nil)
            return
        }
        if let upgrade {
            self.upgrade = nil
            acceptUpgrade(upgrade)
        }
        logger.debug("HTTP/2 connection started")
        if let metrics = configuration.metrics { countConnectionOpened(metrics) }
        flush()
        armTimer()
    }

    /// Sends a PING; `continuation` gets the round-trip time when the ACK arrives.
    func ping(_ continuation: CheckedContinuation<Duration, any Error>) {
        guard let data = machine.userPingSent(now: now) else {
            return continuation.resume(throwing: machine.endedBecause ?? HTTP2Error.sessionClosed)
        }
        do {
            try session.submitPing(opaqueData: data)
        } catch {
            return continuation.resume(throwing: error)
        }
        pingWaiters[data] = continuation
        scheduleFlush()
    }

    /// A PING ACK arrived (inside a libnghttp2 callback: the write is scheduled, never done here).
    private func pingAcknowledged(_ data: UInt64) {
        switch machine.pingAcknowledged(data, now: now) {
        case .none: break
        case .userPing(let rtt): pingWaiters.removeValue(forKey: data)?.resume(returning: rtt)
        case .sendFinalGoAway: sendFinalGoAway()
        }
    }

    /// Starts a graceful shutdown: on a server a GOAWAY notice now and the final GOAWAY (with the last stream
    /// processed) one round trip later, so requests already on the wire are still served; on a client the final
    /// GOAWAY at once. The connection closes when the last stream is done, or when `gracePeriod` runs out.
    func beginGracefulShutdown(gracePeriod: Duration? = nil) {
        switch machine.beginGracefulShutdown(now: now, gracePeriod: gracePeriod) {
        case .none:
            break
        case .sendNoticeAndPing(let data):
            sendShutdownNotice(pingData: data)
        case .sendFinalGoAway:
            sendFinalGoAway()
        }
        flush()
        armTimer()
    }

    /// Ends the connection now with GOAWAY(`errorCode`); open streams fail.
    func terminate(_ errorCode: ErrorCode) {
        let error = HTTP2Error.connectionClosed(errorCode: errorCode)
        guard machine.terminate(because: error) else { return }
        failAllStreams(error)
        try? session.terminate(errorCode: errorCode)
        flush()
    }

    private func sendShutdownNotice(pingData: UInt64) {
        do {
            try session.submitShutdownNotice()
            try session.submitPing(opaqueData: pingData)
        } catch {
            sendFinalGoAway()
        }
    }

    /// Sends the final GOAWAY, naming the last stream processed. Scheduled, never written here (a callback may call it).
    private func sendFinalGoAway() {
        try? session.submitGoaway(errorCode: .noError)
        scheduleFlush()
    }

    /// Keeps one timer at the machine's next deadline. A deadline that moved later leaves the timer as it is: it
    /// fires early, finds nothing due, and is set again.
    func armTimer() {
        guard let next = machine.nextDeadline, timer.needsTask(for: next), let context else { return }
        timer.arm(at: next, now: now, on: context.eventLoop) { [self] in
            timer.fired()
            deadlinesPassed()
        }
    }

    private func deadlinesPassed() {
        let now = self.now
        while true {
            switch machine.deadlineReached(now: now) {
            case .none:
                return armTimer()
            case .sendPing(let data):
                try? session.submitPing(opaqueData: data)
                flush()
            case .sendNoticeAndPing(let data):
                logger.debug("the connection reached its maximum age; shutting down gracefully")
                sendShutdownNotice(pingData: data)
                flush()
            case .sendFinalGoAway:
                sendFinalGoAway()
            case .stopDraining(let streamID):
                stopDraining(streamID)
            case .close(let expiry, let errorCode, let lastStreamID):
                let error = expiry.error(timeouts: configuration.timeouts)
                logger.debug("closing the connection: \(error)")
                machine.ended(because: error)
                failAllStreams(error)
                try? session.terminate(errorCode: errorCode, lastStreamID: lastStreamID)
                return flushAndClose()
            }
        }
    }
}

extension ConnectionStateMachine.Expiry {
    /// What the streams still open fail with.
    func error(timeouts: ConnectionStateMachine.Timeouts) -> HTTP2Error {
        switch self {
        case .preface: .connectionClosed(errorCode: nil, detail: "no connection preface within \(timeouts.preface ?? .zero)")
        case .headerBlock: .connectionClosed(errorCode: nil, detail: "a header block stayed incomplete for \(timeouts.headerBlock ?? .zero)")
        case .idle: .idleTimeout(timeouts.idle ?? .zero)
        case .keepAlive: .keepAliveTimeout(timeouts.keepAliveTimeout)
        case .gracePeriod: .connectionClosed(errorCode: .noError, detail: "streams were still open when the grace period ran out")
        }
    }
}

@available(*, unavailable)
extension ConnectionHandler: Sendable {}
