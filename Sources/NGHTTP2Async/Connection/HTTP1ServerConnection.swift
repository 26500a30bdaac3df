import NIOCore
import HTTPTypes

/// A sendable handle on an ``HTTP1ServerHandler``: the HTTP/1.1 ``StreamTransport`` of its request readers and
/// response writers, and what ``ServerConnections`` reaches for a shutdown. Every call hops to the connection's event
/// loop (at once when already there). A "stream" here is one request/response exchange, numbered from 1.
final class HTTP1ServerConnection: StreamTransport, ServerTransport {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<HTTP1ServerHandler>
    /// Identifies the connection.
    let id: ObjectIdentifier

    init(_ handler: HTTP1ServerHandler, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.id = ObjectIdentifier(handler)
    }

    /// Runs `body` on the event loop (at once when already there).
    func execute(_ body: @escaping @Sendable (HTTP1ServerHandler) -> Void) {
        if eventLoop.inEventLoop {
            body(handler.value)
        } else {
            let handler = self.handler
            eventLoop.execute { body(handler.value) }
        }
    }

    func credit(_ reader: StreamReader.Storage) {
        execute { $0.bodyTaken(from: reader) }
    }

    func cancelStream(_ streamID: Int32) {
        execute { $0.bodyCancelled(exchange: streamID) }
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

    /// Always a hop, as over HTTP/2: what the producer wrote before goes out, then the connection closes (HTTP/1.1
    /// has no way to fail one response but to cut it short).
    func abortBody(streamID: Int32, error: any Error) {
        eventLoop.execute { [handler] in handler.value.abortBody(exchange: streamID, error: error) }
    }

    func sendInformational(streamID: Int32, _ response: HTTPResponse) {
        execute { $0.writeInformational(response, exchange: streamID) }
    }

    /// Starts a graceful close: the request in flight finishes (within `gracePeriod`), then the connection closes.
    func beginGracefulShutdown(gracePeriod: Duration) {
        execute { $0.beginGracefulShutdown(gracePeriod: gracePeriod) }
    }
}
