import NIOCore
import NIOHTTP1
import HTTPTypes
import Logging
import NGHTTP2

/// Sends requests over HTTP/1.1 (RFC 9112) on one connection, one at a time with keep-alive, and delivers responses
/// through the same ``StreamReader`` and ``BodyWriter`` as HTTP/2: a thin shell around ``HTTP1ClientStateMachine``.
///
/// It sits after `HTTPRequestEncoder` and `ByteToMessageHandler(HTTPResponseDecoder)` (which sees the requests go
/// out, so a HEAD response is known to have no body), and holds `read()` back while the response body's reader holds
/// a full buffer: the server's TCP window then closes, which is HTTP/1.1's back-pressure.
final class HTTP1ClientHandler: ChannelDuplexHandler, RemovableChannelHandler, BurstFlushing {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The exchange in flight, as the event loop knows it.
    private struct Current {
        let id: Int32
        var continuation: FastContinuation<ReceivedResponse, any Error>?
        var reader: StreamReader.Storage?
        var gate: WriterGate?
        var informational: [HTTPResponse] = []
        var timeouts: StreamTimeouts?
        var isHead = false
        /// The request carried the h2c offer.
        var offeredUpgrade = false
        /// The server answered the offer with 101: the connection becomes HTTP/2 when the 101 ends.
        var switching = false

        /// Whether the request's body was written to its end (no writer left).
        var isRequestDone: Bool { gate == nil }
    }

    private let limits: HTTP1ClientStateMachine.Limits
    /// Held strongly, as by ``ConnectionHandler``: a pool's delegate holds its pool weakly, and nothing else holds it.
    private let delegate: (any HTTP1ClientDelegate)?
    private let bodyHighWatermark: Int
    private var machine: HTTP1ClientStateMachine
    var context: ChannelHandlerContext?
    private(set) var connection: HTTP1ClientConnection?
    private var current: Current?
    private var readerToWake: StreamReader.Storage?
    var isReading = false
    var needsFlush = false
    private var pendingRead = false
    private var announcedReady = false
    private var timer = DeadlineTimer()
    private var logger: Logger
    /// Cleartext with ``HTTP2Client/HTTPVersionPolicy/h2cUpgrade``: what asks for h2c, and takes over when granted.
    private let upgrade: H2CUpgradeOffer?
    /// Whether the next request without a body carries the offer (the first such one does; once only).
    private var mayOfferUpgrade: Bool
    /// The HTTP/2 connection this one became: the upgraded request's cancellation goes there.
    private var upgradedTo: ConnectionReference?

    init(
        limits: HTTP1ClientStateMachine.Limits,
        bodyHighWatermark: Int,
        logger: Logger,
        delegate: (any HTTP1ClientDelegate)?,
        upgrade: H2CUpgradeOffer? = nil
    ) {
        self.limits = limits
        self.bodyHighWatermark = bodyHighWatermark
        self.logger = logger
        self.delegate = delegate
        self.upgrade = upgrade
        self.mayOfferUpgrade = upgrade != nil
        self.machine = HTTP1ClientStateMachine(limits: limits, now: .zero)
    }

    /// Whether the connection may switch to HTTP/2: its decoder must then hand on the bytes after the 101.
    var mayUpgrade: Bool { upgrade != nil }

    private var now: HTTP1ClientStateMachine.Instant {
        .nanoseconds(Int64((context?.eventLoop.now ?? .now()).uptimeNanoseconds))
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        logger[metadataKey: "h2.protocol"] = "http/1.1"
        let connection = HTTP1ClientConnection(self, eventLoop: context.eventLoop)
        self.connection = connection
        machine = HTTP1ClientStateMachine(limits: limits, now: now)
        if context.channel.isActive { becameReady() }
    }

    func channelActive(context: ChannelHandlerContext) {
        becameReady()
        context.fireChannelActive()
    }

    /// The connection can take its first request: the pool hears it started, with room for one.
    private func becameReady() {
        guard !announcedReady, machine.state != .closed, let connection, let context else { return }
        if let delegate, !delegate.http1Started(connection) {
            machine.closed()
            context.close(promise: nil)
            return
        }
        announcedReady = true
        logger.debug("HTTP/1.1 connection ready")
        delegate?.http1Connection(connection, emitted: .ready(maxConcurrentStreams: 1))
        armTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ended(nil)
        self.context = nil
        // The connection handle holds this handler: dropping it here ends that cycle (LeakSanitizer found it).
        self.connection = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failure: any Error =
            error is HTTPParserError ? HTTP2Error.malformedMessage("an HTTP/1.1 response that does not parse: \(error)") : error
        logger.debug("HTTP/1.1 connection error: \(error)")
        ended(failure)
        context.close(promise: nil)
    }

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

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        isReading = true
        switch unwrapInboundIn(data) {
        case .head(let head): responseHeadReceived(head)
        case .body(let buffer): responseBodyReceived(buffer)
        case .end(let trailers): responseEnded(trailers)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        isReading = false
        wakeReader()
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    /// Hands what the read burst brought to the reader waiting for it.
    private func wakeReader() {
        guard let reader = readerToWake else { return }
        readerToWake = nil
        let taken = reader.wake()
        if taken > 0, machine.bodyTaken(taken) { resumeReading() }
    }

    // MARK: Requests (via HTTP1ClientConnection)

    func startRequest(_ request: PendingHTTP1Request) {
        guard let context, let connection, context.channel.isActive, announcedReady else {
            return refuse(request, HTTP2Error.notProcessed(streamID: 0, detail: "the HTTP/1.1 connection is closed"))
        }
        guard !request.cancellation.isCancelled else { return refuse(request, CancellationError()) }
        let bodyLength: Int? =
            switch request.body.storage {
            case .empty: 0
            case .bytes(let buffer, let trailers): trailers == nil ? buffer.readableBytes : nil
            case .text(let text, let trailers): trailers == nil ? text.utf8.count : nil
            case .writer: nil
            }
        var head = request.request.http1Head(bodyLength: bodyLength)
        // RFC 7540 §3.2: the upgrade rides on a request without a body (whose bytes would precede HTTP/2's).
        let offersUpgrade = mayOfferUpgrade && bodyLength == 0 && upgrade?.add(to: &head) == true
        if offersUpgrade { mayOfferUpgrade = false }
        let deadline = request.timeouts?.deadline.map { HTTP1ClientStateMachine.Instant.nanoseconds(Int64($0.at.uptimeNanoseconds)) }
        guard let id = machine.requestStarted(keepAlive: head.isKeepAlive, deadline: deadline, readTimeout: request.timeouts?.read, now: now) else {
            return refuse(request, HTTP2Error.notProcessed(streamID: 0, detail: "the HTTP/1.1 connection is busy or closing"))
        }
        guard request.cancellation.started(id) else {
            // Cancelled just now, after the exchange was counted but before anything went out: the connection closes
            // (close() marks the machine closed) rather than carry an exchange that never happened.
            refuse(request, CancellationError())
            return close()
        }
        current = Current(
            id: id, continuation: request.continuation, timeouts: request.timeouts, isHead: request.request.method == .head,
            offeredUpgrade: offersUpgrade)
        delegate?.http1Connection(connection, emitted: .streamOpened(openStreams: 1))
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        switch request.body.storage {
        case .empty:
            endRequest(trailers: nil)
        case .bytes(let buffer, let trailers):
            if buffer.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
            endRequest(trailers: trailers)
        case .text(let text, let trailers):
            if !text.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil) }
            endRequest(trailers: trailers)
        case .writer:
            let gate = WriterGate(highWatermark: bodyHighWatermark)
            current?.gate = gate
            request.writer?.succeed(OutboundBody.Reference(streamID: id, gate: gate, transport: connection))
        }
        flush()
        armTimer()
    }

    private func refuse(_ request: PendingHTTP1Request, _ error: any Error) {
        request.writer?.fail(error)
        request.continuation.resume(throwing: error)
    }

    private func endRequest(trailers: HTTPFields?) {
        context?.write(wrapOutboundOut(.end(trailers?.http1Headers)), promise: nil)
        needsFlush = true
        step(machine.requestEnded(now: now))
    }

    func writeBody(_ chunk: ByteBuffer, exchange id: Int32) {
        guard let current, current.id == id, let gate = current.gate, let context else { return }
        let count = chunk.readableBytes
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
        guard let current, current.id == id, current.gate != nil else { return }
        self.current?.gate = nil
        endRequest(trailers: trailers)
        flushIfNeeded()
    }

    // MARK: Responses

    private func responseHeadReceived(_ head: HTTPResponseHead) {
        guard let connection, var exchange = current else { return }
        if head.status == .switchingProtocols {
            // NIO's decoder parses nothing after a 101: it is the switch asked for, or the end of the connection.
            guard exchange.offeredUpgrade, H2CUpgradeOffer.isAccepted(by: head) else {
                fail(HTTP2Error.malformedMessage("101 Switching Protocols to \(head.headers["upgrade"]) that was not asked for"))
                return close()
            }
            exchange.switching = true
            current = exchange
            return
        }
        let status = HTTPResponse.Status(code: Int(head.status.code), reasonPhrase: head.status.reasonPhrase)
        if status.kind == .informational {
            machine.bytesReceived(now: now)
            exchange.informational.append(HTTPResponse(status: status, headerFields: HTTPFields(http2Fields: head.headers.responseFieldBlock)))
            current = exchange
            return
        }
        machine.responseHeadReceived(keepAlive: head.isKeepAlive, now: now)
        let reader = StreamReader.Storage(streamID: exchange.id, connection: connection)
        exchange.reader = reader
        let continuation = exchange.continuation
        exchange.continuation = nil
        current = exchange
        continuation?.resume(
            returning: ReceivedResponse(
                head: HTTPResponse(status: status, headerFields: HTTPFields(http2Fields: head.headers.responseFieldBlock)),
                body: StreamReader(storage: reader),
                streamID: exchange.id, informational: exchange.informational)
        )
    }

    private func responseBodyReceived(_ buffer: ByteBuffer) {
        guard let reader = current?.reader else { return }
        machine.bytesReceived(buffer.readableBytes, now: now)
        let action = buffer.withUnsafeReadableBytes { reader.receive($0) }
        switch action {
        case .wakeReader: readerToWake = reader
        case .buffered: break
        case .discard: _ = machine.bodyTaken(buffer.readableBytes)
        }
    }

    private func responseEnded(_ trailers: HTTPHeaders?) {
        guard let exchange = current else { return }
        if exchange.switching { return switchToHTTP2(exchange) }
        // The pool learns that the connection is free before the application learns that the body ended: the
        // request the application sends next then finds the connection free rather than open another.
        let step = machine.responseEnded(now: now)
        if step == .close, !exchange.isRequestDone {
            exchange.gate?.fail(HTTP2Error.connectionClosed(errorCode: nil, detail: "the server answered before the request body ended"))
        }
        self.step(step)
        if let reader = exchange.reader {
            // A reader still to wake gets the end with its bytes.
            reader.finish(trailers: trailers?.httpFields)
        } else if let continuation = exchange.continuation {
            // Only informational heads came (NIO ends them so): not a response.
            continuation.resume(throwing: HTTP2Error.malformedMessage("the HTTP/1.1 response ended without a final status"))
        }
    }

    /// An exchange finished (or not): the next request may come, or the connection closes.
    private func step(_ step: HTTP1ClientStateMachine.Step) {
        guard step != .none, let connection else { return }
        current = nil
        if step == .close {
            // No more requests here: the pool must not send another before the close arrives.
            delegate?.http1Connection(connection, emitted: .goAwayReceived(lastStreamID: .max, errorCode: .noError))
        }
        delegate?.http1Connection(connection, emitted: .streamClosed(openStreams: 0))
        if step == .close {
            flushAndClose()
        } else {
            armTimer()
        }
    }

    // MARK: From readers (via HTTP1ClientConnection)

    func bodyTaken(from reader: StreamReader.Storage) {
        let taken = reader.takeCredit()
        guard taken > 0 else { return }
        if machine.bodyTaken(taken) { resumeReading() }
    }

    func readerDropped(exchange id: Int32, unread: Int, cancel: Bool) {
        guard current?.id == id else { return }
        if cancel { return self.cancel(exchange: id, error: CancellationError()) }
        if machine.bodyTaken(unread) { resumeReading() }
    }

    /// The application cancelled the exchange (or its body's producer failed): HTTP/1.1 has no way to end one
    /// exchange but to close the connection.
    func cancel(exchange id: Int32, error: any Error) {
        if let upgradedTo, id == 1 { return upgradedTo.cancelStream(id) }
        guard current?.id == id else { return }
        logger.debug("exchange \(id) cancelled: \(error); closing the HTTP/1.1 connection")
        fail(error)
        flushAndClose()
    }

    // MARK: h2c Upgrade (RFC 7540 §3.2)

    /// The server's 101 ended: the HTTP/1.1 handlers leave, and an HTTP/2 handler takes the connection with the
    /// upgraded request on stream 1. The pool hears nothing from this handler about it: the HTTP/2 handler reports
    /// the same connection as started (with its own handle) and ready once the server's SETTINGS arrive.
    ///
    /// As NIO's client upgrade handler does, what the server sent after the 101 (its SETTINGS, maybe in the same
    /// read) is kept aside while the HTTP/1.1 handlers go, and given to the HTTP/2 handler once it is in place. The
    /// HTTP/2 handler comes only after the decoder left: the decoder sees every write (it must pair responses with
    /// requests), and HTTP/2's bytes are not requests.
    private func switchToHTTP2(_ exchange: Current) {
        guard let context, let upgrade, let continuation = exchange.continuation else { return close() }
        let pipeline = context.pipeline.syncOperations
        let encoder: HTTPRequestEncoder
        let decoder: ByteToMessageHandler<HTTPResponseDecoder>
        let http2: ConnectionHandler
        let leftover = BytesAfterUpgrade()
        do {
            encoder = try pipeline.handler(type: HTTPRequestEncoder.self)
            decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
            http2 = try upgrade.makeHTTP2Handler(
                H2CUpgradedRequest(
                    settingsPayload: upgrade.settingsPayload, isHeadRequest: exchange.isHead, continuation: continuation,
                    timeouts: exchange.timeouts))
            try pipeline.addHandler(leftover, position: .after(decoder))
        } catch {
            logger.error("cannot switch to HTTP/2 after the server accepted h2c: \(error)")
            fail(error)
            return close()
        }
        logger.debug("h2c Upgrade accepted: switching to HTTP/2")
        current = nil
        announcedReady = false
        machine.closed()
        timer.cancel()
        pipeline.removeHandler(encoder, promise: nil)
        // The decoder leaves once its read is over, handing what it did not parse to `leftover`.
        pipeline.removeHandler(decoder).assumeIsolated().whenComplete { [self] _ in
            do {
                try pipeline.addHandler(http2, position: .after(leftover))
                upgradedTo = http2.reference
                leftover.handOn(context: pipeline)
            } catch {
                logger.error("cannot add the HTTP/2 handler after h2c: \(error)")
                http2.abandonClientUpgrade(error)
                context.channel.close(promise: nil)
            }
            // A read held back here (the machine reads no more once closed) is HTTP/2's now.
            if pendingRead {
                pendingRead = false
                context.read()
            }
            pipeline.removeHandler(context: context, promise: nil)
        }
    }

    // MARK: Lifecycle

    func beginGracefulShutdown() {
        if machine.beginClosing() { close() }
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
            let given = current?.timeouts?.deadline?.given ?? .zero
            logger.debug("exchange \(current?.id ?? 0): the request's deadline passed")
            fail(HTTP2Error.requestTimeout(given))
            close()
        case .readTimeout(let read):
            logger.debug("exchange \(current?.id ?? 0): nothing received for \(read)")
            fail(HTTP2Error.readTimeout(read))
            close()
        }
    }

    func close() {
        machine.closed()
        context?.close(promise: nil)
    }

    private func flushAndClose() {
        machine.closed()
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer()))), promise: promise)
        needsFlush = false
        promise.futureResult.assumeIsolated().whenComplete { [context] _ in context.close(promise: nil) }
    }

    /// The exchange in flight (if any) fails with `error`: its response (if not here yet), its body, its writer.
    private func fail(_ error: any Error) {
        guard let exchange = current else { return }
        current = nil
        exchange.continuation?.resume(throwing: error)
        _ = exchange.reader?.fail(error)
        exchange.gate?.fail(error)
    }

    private func ended(_ error: (any Error)?) {
        // Closed in the middle of a read burst (a response with `Connection: close` closes at its end), no
        // read-complete follows: the bytes and the end it brought must still reach the waiting reader.
        wakeReader()
        guard machine.state != .closed || current != nil || announcedReady else { return }
        machine.closed()
        timer.cancel()
        fail(error ?? HTTP2Error.connectionClosed(errorCode: nil, detail: "the server closed the HTTP/1.1 connection"))
        if announcedReady, let connection {
            announcedReady = false
            delegate?.http1Connection(connection, emitted: .closed(error))
        }
    }

}

@available(*, unavailable)
extension HTTP1ClientHandler: Sendable {}

/// Keeps what arrives while an h2c switch is under way (the bytes the HTTP/1.1 decoder did not parse: the server's
/// first HTTP/2 frames), and hands them to the handler after it before leaving.
private final class BytesAfterUpgrade: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var kept: [ByteBuffer] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        kept.append(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {}

    /// Gives what was kept to the next handler and leaves the pipeline.
    func handOn(context pipeline: ChannelPipeline.SynchronousOperations) {
        guard let context = try? pipeline.context(handler: self) else { return }
        let bytes = kept
        kept = []
        for buffer in bytes { context.fireChannelRead(wrapInboundOut(buffer)) }
        if !bytes.isEmpty { context.fireChannelReadComplete() }
        pipeline.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension BytesAfterUpgrade: Sendable {}

