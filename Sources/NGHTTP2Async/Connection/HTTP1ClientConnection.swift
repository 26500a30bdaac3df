import NIOCore
import HTTPTypes

/// What a client's pool hears from an HTTP/1.1 connection, on the connection's event loop: the same
/// ``ConnectionEvent``s as from an HTTP/2 one (ready with room for one request, a stream opened and closed per
/// exchange, GOAWAY for a response that says `Connection: close`, closed).
protocol HTTP1ClientDelegate: AnyObject, Sendable {
    /// The connection started; returning `false` closes it.
    func http1Started(_ connection: HTTP1ClientConnection) -> Bool
    func http1Connection(_ connection: HTTP1ClientConnection, emitted event: ConnectionEvent)
}

/// A request waiting to go out on an HTTP/1.1 connection.
struct PendingHTTP1Request: Sendable {
    let request: HTTPRequest
    let body: MessageBody
    let cancellation: RequestCancellation
    let continuation: FastContinuation<ReceivedResponse, any Error>
    var writer: EventLoopPromise<OutboundBody.Reference>?
    var timeouts: StreamTimeouts?
}

/// A sendable handle on an ``HTTP1ClientHandler``: the HTTP/1.1 ``StreamTransport`` of its response readers and
/// request body writers. Every call hops to the connection's event loop (at once when already there). A "stream"
/// is one request/response exchange, numbered from 1.
final class HTTP1ClientConnection: StreamTransport {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<HTTP1ClientHandler>
    /// Identifies the connection.
    let id: ObjectIdentifier

    init(_ handler: HTTP1ClientHandler, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.id = ObjectIdentifier(handler)
    }

    /// Runs `body` on the event loop (at once when already there).
    func execute(_ body: @escaping @Sendable (HTTP1ClientHandler) -> Void) {
        if eventLoop.inEventLoop {
            body(handler.value)
        } else {
            let handler = self.handler
            eventLoop.execute { body(handler.value) }
        }
    }

    /// Sends a request and waits for its response head.
    ///
    /// - Throws: ``HTTP2Error/notProcessed(streamID:detail:)`` when the connection could not take it (it was not
    ///   sent), ``HTTP2Error``, or `CancellationError` (the connection then closes: HTTP/1.1 cannot cancel one
    ///   exchange otherwise).
    func sendRequest(
        _ request: HTTPRequest,
        body: MessageBody,
        cancellation: RequestCancellation,
        timeouts: StreamTimeouts?
    ) async throws -> ReceivedResponse {
        try await submitClientRequest(body: body, cancellation: cancellation, eventLoop: eventLoop) { continuation, writer in
            let pending = PendingHTTP1Request(
                request: request, body: body, cancellation: cancellation, continuation: continuation, writer: writer, timeouts: timeouts)
            execute { $0.startRequest(pending) }
        } cancelStream: { [self] id in
            cancelStream(id)
        }
    }

    /// Closes once the exchange in flight (if any) is over.
    func beginGracefulShutdown() {
        eventLoop.execute { [handler] in handler.value.beginGracefulShutdown() }
    }

    /// Closes now.
    func terminate() {
        execute { $0.close() }
    }

    func credit(_ reader: StreamReader.Storage) {
        execute { $0.bodyTaken(from: reader) }
    }

    func cancelStream(_ streamID: Int32) {
        execute { $0.cancel(exchange: streamID, error: CancellationError()) }
    }

    func readerDropped(streamID: Int32, unread: Int, cancel: Bool) {
        execute { $0.readerDropped(exchange: streamID, unread: unread, cancel: cancel) }
    }

    func enqueue(_ chunk: ByteBuffer, streamID: Int32) {
        execute { $0.writeBody(chunk, exchange: streamID) }
    }

    func finishBody(streamID: Int32, trailers: HTTPFields?) {
        execute { $0.finishBody(exchange: streamID, trailers: trailers) }
    }

    /// Always a hop, as over HTTP/2: what the producer wrote before goes out, then the connection closes (the server
    /// sees a request cut short).
    func abortBody(streamID: Int32, error: any Error) {
        eventLoop.execute { [handler] in handler.value.cancel(exchange: streamID, error: error) }
    }
}

/// How a pooled client connection may speak HTTP/1.1.
struct HTTP1ClientOptions: Sendable {
    /// A cleartext connection speaks HTTP/1.1 (not HTTP/2 with prior knowledge).
    var cleartext: Bool
    /// Hears the connection's events.
    var delegate: (any HTTP1ClientDelegate)?
    /// Cleartext: the first request without a body asks to continue as HTTP/2 (h2c, RFC 7540 §3.2).
    var upgradesToHTTP2 = false
}
