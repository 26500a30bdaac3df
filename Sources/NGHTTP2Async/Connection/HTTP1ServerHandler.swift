import NIOCore
import NIOHTTP1
import HTTPTypes
import Logging

/// What an HTTP/1.1 server connection needs from its server's configuration.
struct HTTP1Configuration: Sendable {
    var limits: HTTP1ConnectionStateMachine.Limits
    /// A streaming response body's writer waits while more than this many bytes are not yet written to the socket.
    var bodyHighWatermark: Int
    var logger: Logger
    /// `http` or `https`: the `:scheme` of the requests the handler sees.
    var scheme: String
    /// Cleartext: installs the HTTP/2 handler for an h2c Upgrade (RFC 7540 §3.2); `nil` refuses every Upgrade.
    var upgrade: (@Sendable (H2CUpgradeRequest) throws -> ConnectionHandler)?
    /// The most bytes of field names and values one request head (or its trailers) may have: the server's
    /// ``ServerSession/Configuration/maxHeaderListSize``. A larger one is answered 431 and the connection closes.
    var maxHeaderListSize: Int = 32 << 10

    /// The request decoder's limits: the head as a whole and each field within ``maxHeaderListSize``.
    var decoderLimits: NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = maxHeaderListSize
        limits.maxHeaderFieldSize = maxHeaderListSize
        return limits
    }
}

/// Serves HTTP/1.1 (RFC 9112) on one connection through the same ``ServerSession/Handler`` as HTTP/2, as a thin
/// shell around ``HTTP1ConnectionStateMachine``: NIO's `HTTPRequestDecoder` parts and the application's calls (via
/// ``HTTP1ServerConnection``) go in, the machine's actions come out.
///
/// It sits after `ByteToMessageHandler(HTTPRequestDecoder)` and `HTTPResponseEncoder`, and holds `read()` back while
/// the machine says not to read (a request waiting for its response, or a full request body buffer): the client's
/// TCP window then closes, which is HTTP/1.1's back-pressure.
final class HTTP1ServerHandler: ChannelDuplexHandler, RemovableChannelHandler, BurstFlushing {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The request being answered, as the event loop knows it.
    private struct Current {
        var id: Int32
        var head: HTTPRequestHead
        var reader: StreamReader.Storage?
        var task: Task<Void, Never>?
        var gate: WriterGate?
        /// A HEAD request: the response's body is not written (RFC 9110 §9.3.2).
        var isHead: Bool
        /// NIO's decoder parses nothing after this request (an Upgrade not taken): the connection closes after it.
        var stopsTheDecoder: Bool
        /// An h2c Upgrade to perform when the request ends (its `HTTP2-Settings`, decoded).
        var upgradeSettings: [UInt8]?
    }

    let configuration: HTTP1Configuration
    private let handler: ServerSession.Handler
    private weak var delegate: ServerConnections?
    private var machine: HTTP1ConnectionStateMachine
    var context: ChannelHandlerContext?
    private(set) var connection: HTTP1ServerConnection?
    private var executor: EventLoopExecutor?
    private var remoteAddress: SocketAddress?
    /// When the last read returned (``ServerSession/Request/receivedAt``).
    private var lastReadAt = ContinuousClock.now
    private var current: Current?
    /// Parts of requests pipelined behind the current one (already parsed by the decoder).
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var isDrainingQueue = false
    private var readersToWake: [StreamReader.Storage] = []
    var isReading = false
    private var headInBurst = false
    var needsFlush = false
    private var pendingRead = false
    private var timer = DeadlineTimer()
    private var registered = false
    private var logger: Logger

    init(configuration: HTTP1Configuration, handler: @escaping ServerSession.Handler, delegate: ServerConnections?) {
        self.configuration = configuration
        self.handler = handler
        self.delegate = delegate
        self.logger = configuration.logger
        self.machine = HTTP1ConnectionStateMachine(limits: configuration.limits, now: .zero)
    }

    private var now: HTTP1ConnectionStateMachine.Instant {
        .nanoseconds(Int64((context?.eventLoop.now ?? .now()).uptimeNanoseconds))
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.executor = EventLoopExecutor(context.eventLoop)
        self.remoteAddress = context.channel.remoteAddress
        logger[metadataKey: "h2.peer"] = "\(remoteAddress.map { "\($0)" } ?? "?")"
        let connection = HTTP1ServerConnection(self, eventLoop: context.eventLoop)
        self.connection = connection
        machine = HTTP1ConnectionStateMachine(limits: configuration.limits, now: now)
        if let delegate {
            guard delegate.http1Started(connection) else {
                logger.debug("HTTP/1.1 connection refused: the server is at its connection limit or shutting down")
                machine.closed()
                context.close(promise: nil)
                return
            }
            registered = true
        }
        logger.debug("HTTP/1.1 connection started")
        armTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ended()
        self.context = nil
        self.connection = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        isReading = true
        lastReadAt = .now
        receive(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        isReading = false
        if !headInBurst { machine.bytesArrived(now: now) }
        headInBurst = false
        wakeReaders()
        flushIfNeeded()
        armTimer()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            logger.debug("HTTP/1.1 connection error: \(error)")
            return close()
        }
        // Bad input ends this connection only (RFC 9112 §2.2): a 400 when no response has started, then close.
        logger.debug("malformed HTTP/1.1 request: \(error)")
        failRequest(error)
        switch machine.parseError() {
        case .respondAndClose:
            // RFC 6585 §5: a head over the limit is 431, as over HTTP/2.
            writeStatusAndClose(error as? HTTPParserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest)
        case .close:
            close()
        }
    }

    /// Reading follows the machine: a `read()` it does not allow waits until it does.
    func read(context: ChannelHandlerContext) {
        if machine.shouldRead {
            context.read()
        } else {
            pendingRead = true
        }
    }

    private func resumeReading() {
        guard pendingRead, machine.shouldRead, let context else { return }
        pendingRead = false
        context.read()
    }

    // MARK: Requests

    private func receive(_ part: HTTPServerRequestPart) {
        if machine.queuesParts || !queued.isEmpty {
            queued.append(part)
            return
        }
        process(part)
    }

    private func process(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            headInBurst = true
            requestHeadReceived(head)
        case .body(let buffer):
            requestBodyReceived(buffer)
        case .end(let trailers):
            requestEnded(trailers)
        }
    }

    private func requestHeadReceived(_ head: HTTPRequestHead) {
        guard case .start(let id) = machine.headReceived(keepAlive: head.isKeepAlive) else { return }
        let request: HTTPRequest
        do {
            request = try head.httpRequest(scheme: configuration.scheme)
        } catch {
            logger.debug("request \(id): \(error)")
            _ = machine.parseError()
            return writeStatusAndClose(.badRequest)
        }
        var exchange = Current(
            id: id,
            head: head,
            isHead: head.method == .HEAD,
            stopsTheDecoder: head.stopsTheDecoder
        )
        if let settings = h2cUpgradeSettings(head) {
            // Switch when the request has ended (it has no body: `h2cUpgradeSettings` checked).
            exchange.upgradeSettings = settings
            current = exchange
            return
        }
        let body: StreamReader
        if head.hasBody, let connection {
            let storage = StreamReader.Storage(streamID: id, connection: connection)
            exchange.reader = storage
            body = StreamReader(storage: storage)
            if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                // The handler will read the body: say so now rather than let the client wait (RFC 9110 §10.1.1).
                context?.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
                needsFlush = true
            }
        } else {
            let storage = StreamReader.Storage(streamID: id, connection: connection!)
            storage.finish(trailers: nil)
            body = StreamReader(storage: storage)
        }
        current = exchange
        start(ServerSession.Request(head: request, body: body, streamID: id, remoteAddress: remoteAddress, receivedAt: lastReadAt, connection: connection!), id: id)
        flushIfNeeded()
    }

    /// Runs the handler in its own task, on this connection's event loop (as over HTTP/2: it starts right here and
    /// runs until it first suspends).
    private func start(_ request: ServerSession.Request, id: Int32) {
        guard let connection else { return }
        let handler = self.handler
        let task = Task.immediate(executorPreference: executor) {
            await respondHTTP1(to: request, connection: connection, with: handler)
        }
        if current?.id == id { current?.task = task }
    }

    private func requestBodyReceived(_ buffer: ByteBuffer) {
        switch machine.bodyReceived(buffer.readableBytes) {
        case .deliver:
            guard let reader = current?.reader else { return }
            let action = buffer.withUnsafeReadableBytes { reader.receive($0) }
            switch action {
            case .wakeReader: readersToWake.append(reader)
            case .buffered: break
            case .discard: machine.bodyAbandoned(unread: buffer.readableBytes)
            }
        case .discard:
            break
        case .close:
            logger.debug("the client kept sending a request body its response did not wait for; closing")
            close()
        }
    }

    private func requestEnded(_ trailers: HTTPHeaders?) {
        if let settings = current?.upgradeSettings, let head = current?.head {
            return performUpgrade(head: head, settings: settings)
        }
        current?.reader?.finish(trailers: trailers?.httpFields)
        step(machine.requestEnded(now: now))
    }

    private func wakeReaders() {
        guard !readersToWake.isEmpty else { return }
        let readers = readersToWake
        readersToWake.removeAll(keepingCapacity: true)
        for reader in readers {
            let taken = reader.wake()
            if taken > 0, machine.bodyTaken(taken) { resumeReading() }
        }
    }

    /// An exchange finished (or not): the next pipelined request, or the close.
    private func step(_ step: HTTP1ConnectionStateMachine.OnExchangeStep) {
        switch step {
        case .none:
            break
        case .close:
            current = nil
            flushAndClose()
        case .next:
            current = nil
            drainQueue()
            armTimer()
        }
    }

    private func drainQueue() {
        guard !isDrainingQueue else { return }
        isDrainingQueue = true
        defer { isDrainingQueue = false }
        while !queued.isEmpty, !machine.queuesParts, machine.state != .closed {
            process(queued.removeFirst())
        }
        wakeReaders()
        flushIfNeeded()
        resumeReading()
    }

    // MARK: From readers (via HTTP1ServerConnection)

    func bodyTaken(from reader: StreamReader.Storage) {
        let taken = reader.takeCredit()
        guard taken > 0, current?.reader === reader else { return }
        if machine.bodyTaken(taken) { resumeReading() }
    }

    func readerDropped(exchange id: Int32, unread: Int, cancel: Bool) {
        guard current?.id == id else { return }
        if cancel { machine.bodyAbandoned(unread: unread) } else { _ = machine.bodyTaken(unread) }
        resumeReading()
    }

    /// The application stopped reading: the rest of the body is dropped as it arrives (HTTP/1.1 cannot reset one
    /// request); the handler still answers.
    func bodyCancelled(exchange id: Int32) {
        guard current?.id == id, let reader = current?.reader else { return }
        let discarded = reader.fail(CancellationError())
        machine.bodyAbandoned(unread: discarded)
        resumeReading()
    }

    // MARK: Responses (via HTTP1ServerConnection and respondHTTP1)

    /// Writes a response whose body is given whole (or none): with its `content-length` (chunked, when it has
    /// trailers).
    func writeResponse(_ response: ServerSession.Response, exchange id: Int32) {
        guard let current, current.id == id, let context else { return }
        var bytes: ByteBuffer?
        var trailers: HTTPFields?
        switch response.body.storage {
        case .empty: bytes = nil
        case .bytes(let buffer, let t): bytes = buffer; trailers = t
        case .text(let text, let t): bytes = ByteBuffer(string: text); trailers = t
        case .writer: preconditionFailure("a streaming body goes through startStreamingResponse")
        }
        var head = response.head.http1Head(version: current.head.version)
        let chunked = trailers != nil && current.head.version.minor >= 1
        if chunked {
            head.headers.remove(name: "content-length")
        } else if mayHaveBody(head.status), !head.headers.contains(name: "content-length") {
            head.headers.add(name: "content-length", value: String(bytes?.readableBytes ?? 0))
        }
        guard writeHead(&head, closes: false) else { return }
        if !current.isHead {
            if let bytes, bytes.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil) }
            context.write(wrapOutboundOut(.end(chunked ? trailers?.http1Headers : nil)), promise: nil)
        }
        needsFlush = true
        responseEnded()
    }

    /// Writes the head of a response whose body a writer produces; chunked when it has no `content-length`.
    func startStreamingResponse(_ response: HTTPResponse, exchange id: Int32) -> Result<OutboundBody.Reference, any Error> {
        guard let connection, current?.id == id, let version = current?.head.version else {
            return .failure(HTTP2Error.connectionClosed(errorCode: nil))
        }
        var head = response.http1Head(version: version)
        // HTTP/1.0 has no chunked coding: a body of unknown length ends with the connection (RFC 9112 §6.3).
        let closes = version.minor == 0 && !head.headers.contains(name: "content-length")
        guard writeHead(&head, closes: closes) else { return .failure(HTTP2Error.connectionClosed(errorCode: nil)) }
        flush()
        let gate = WriterGate(highWatermark: configuration.bodyHighWatermark)
        current?.gate = gate
        return .success(OutboundBody.Reference(streamID: id, gate: gate, transport: connection))
    }

    /// Writes the head; `false` (and nothing written) when the connection is gone.
    private func writeHead(_ head: inout HTTPResponseHead, closes: Bool) -> Bool {
        guard let context, let current else { return false }
        let saysClose = head.headers["connection"].contains { $0.lowercased().contains("close") }
        head.headers.remove(name: "connection")
        if machine.responseStarted(closes: closes || saysClose || current.stopsTheDecoder) {
            head.headers.add(name: "connection", value: "close")
        } else if current.head.version.minor == 0 {
            head.headers.add(name: "connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        needsFlush = true
        return true
    }

    func writeBody(_ chunk: ByteBuffer, exchange id: Int32) {
        guard let current, current.id == id, let gate = current.gate, let context else { return }
        let count = chunk.readableBytes
        guard !current.isHead else { return gate.drained(count) }
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { result in
            switch result {
            case .success: gate.drained(count)
            case .failure(let error): gate.fail(error)
            }
        }
        context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: promise)
        flushSoon()
    }

    func finishBody(exchange id: Int32, trailers: HTTPFields?) {
        guard let current, current.id == id, current.gate != nil, let context else { return }
        self.current?.gate = nil
        if !current.isHead { context.write(wrapOutboundOut(.end(trailers?.http1Headers)), promise: nil) }
        needsFlush = true
        flushIfNeeded()
        responseEnded()
    }

    /// The producer failed: what it wrote goes out, and the connection closes (the client sees a body cut short).
    func abortBody(exchange id: Int32, error: any Error) {
        guard current?.id == id else { return }
        current?.gate?.fail(error)
        flushAndClose()
    }

    func writeInformational(_ response: HTTPResponse, exchange id: Int32) {
        guard let current, current.id == id, !isResponseStarted, let context else { return }
        context.write(wrapOutboundOut(.head(response.http1Head(version: current.head.version))), promise: nil)
        flushSoon()
    }

    /// The handler threw: 500 when nothing was sent yet, otherwise the connection closes (the response is cut short).
    func handlerFailed(exchange id: Int32, error: any Error) {
        guard current?.id == id else { return }
        if isResponseStarted || error is CancellationError {
            flushAndClose()
        } else {
            writeResponse(ServerSession.Response(status: .internalServerError), exchange: id)
        }
    }

    private var isResponseStarted: Bool {
        if case .active(let exchange) = machine.state { return exchange.responseStarted }
        return true
    }

    private func responseEnded() {
        step(machine.responseEnded(now: now))
        flushIfNeeded()
    }

    // MARK: h2c Upgrade (RFC 7540 §3.2)

    /// The decoded `HTTP2-Settings` when `head` asks for h2c and may have it: cleartext with the Upgrade allowed, no
    /// request body (the refused case is answered over HTTP/1.1), nothing queued, nothing answered yet.
    private func h2cUpgradeSettings(_ head: HTTPRequestHead) -> [UInt8]? {
        guard configuration.upgrade != nil, machine.mayUpgrade, queued.isEmpty, !head.hasBody else { return nil }
        return H2CUpgradeRequest.settings(of: head)
    }

    /// Answers 101, hands the connection to an HTTP/2 handler that answers this request on stream 1, and leaves.
    private func performUpgrade(head: HTTPRequestHead, settings: [UInt8]) {
        guard let context, let makeHandler = configuration.upgrade, let request = try? head.httpRequest(scheme: configuration.scheme) else {
            return close()
        }
        let http2: ConnectionHandler
        do {
            http2 = try makeHandler(H2CUpgradeRequest(settingsPayload: settings, request: request))
        } catch {
            logger.error("cannot start HTTP/2 for an h2c Upgrade: \(error)")
            return close()
        }
        logger.debug("h2c Upgrade: switching to HTTP/2")
        machine.upgraded()
        current = nil
        var headers = HTTPHeaders()
        headers.add(name: "connection", value: "Upgrade")
        headers.add(name: "upgrade", value: "h2c")
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))), promise: nil)
        unregister()
        // As NIO's HTTPServerUpgradeHandler does: the HTTP/1.1 handlers go, then the new protocol's handler comes.
        // The decoder goes last: it forwards what it has not parsed (the client's preface, if it came already).
        let pipeline = context.pipeline.syncOperations
        do {
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            pipeline.removeHandler(encoder, promise: nil)
            pipeline.removeHandler(context: context, promise: nil)
            try pipeline.addHandler(http2)
            pipeline.removeHandler(decoder, promise: nil)
        } catch {
            logger.error("cannot switch the pipeline to HTTP/2: \(error)")
            context.close(promise: nil)
        }
    }

    // MARK: Lifecycle

    func beginGracefulShutdown(gracePeriod: Duration) {
        switch machine.beginGracefulShutdown(now: now, gracePeriod: gracePeriod) {
        case .none: armTimer()
        case .close: close()
        }
    }

    private func armTimer() {
        guard let next = machine.nextDeadline, timer.needsTask(for: next), let context else { return }
        timer.arm(at: next, now: now, on: context.eventLoop) { [self] in
            timer.fired()
            deadlineReached()
        }
    }

    private func deadlineReached() {
        switch machine.deadlineReached(now: now) {
        case .none:
            armTimer()
        case .closeIdle:
            logger.debug("HTTP/1.1 connection idle; closing")
            close()
        case .requestTimeout:
            logger.debug("a request head stayed incomplete; 408 and close")
            writeStatusAndClose(.requestTimeout)
        case .closeAged:
            logger.debug("HTTP/1.1 connection reached its maximum age; closing")
            close()
        case .gracePeriodOver:
            logger.debug("the grace period ran out with a request in flight; closing")
            failRequest(HTTP2Error.connectionClosed(errorCode: nil, detail: "the grace period ran out"))
            close()
        }
    }

    /// A short response that ends the connection (400, 408).
    private func writeStatusAndClose(_ status: HTTPResponseStatus) {
        guard let context else { return }
        var headers = HTTPHeaders()
        headers.add(name: "connection", value: "close")
        headers.add(name: "content-length", value: "0")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
        needsFlush = true
        flushAndClose()
    }

    private func flushAndClose() {
        machine.closed()
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer()))), promise: promise)
        needsFlush = false
        promise.futureResult.assumeIsolated().whenComplete { [context] _ in context.close(promise: nil) }
    }

    private func close() {
        machine.closed()
        context?.close(promise: nil)
    }

    /// The request in flight (if any) learns that its connection is gone.
    private func failRequest(_ error: any Error) {
        guard let current else { return }
        self.current = nil
        _ = current.reader?.fail(error)
        current.gate?.fail(error)
        current.task?.cancel()
    }

    private func ended() {
        // Closed in the middle of a read burst (a response that ends the connection), no read-complete follows:
        // what the burst brought still reaches the waiting readers.
        wakeReaders()
        machine.closed()
        timer.cancel()
        failRequest(HTTP2Error.connectionClosed(errorCode: nil))
        queued.removeAll()
        unregister()
    }

    private func unregister() {
        guard registered, let connection else { return }
        registered = false
        delegate?.http1Closed(connection)
    }

}

/// Whether a response with `status` may have a body (RFC 9110 §6.4.1: not 1xx, 204 or 304).
private func mayHaveBody(_ status: HTTPResponseStatus) -> Bool {
    let code = status.code
    return code >= 200 && code != 204 && code != 304
}

@available(*, unavailable)
extension HTTP1ServerHandler: Sendable {}
