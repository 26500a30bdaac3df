import NIOCore
import HTTPTypes
import NGHTTP2

/// A pooled connection, whichever protocol it negotiated: what ``OriginPool`` hands a request and closes.
enum PooledTransport: Sendable {
    case http2(ConnectionReference)
    case http1(HTTP1ClientConnection)

    /// Sends `request` (as `fields` over HTTP/2) and waits for its response head.
    func sendRequest(
        _ request: HTTPRequest,
        fields: @autoclosure () -> [HeaderField],
        body: MessageBody,
        cancellation: RequestCancellation,
        timeouts: StreamTimeouts?
    ) async throws -> ReceivedResponse {
        switch self {
        case .http2(let connection):
            try await connection.sendRequest(fields(), body: body, cancellation: cancellation, timeouts: timeouts)
        case .http1(let connection):
            try await connection.sendRequest(request, body: body, cancellation: cancellation, timeouts: timeouts)
        }
    }

    /// Takes nothing new and closes once what it carries is done. Always a hop: an event may come from inside a
    /// libnghttp2 callback, where starting a shutdown would re-enter the session.
    func beginGracefulShutdown() {
        switch self {
        case .http2(let connection):
            connection.eventLoop.execute { [handler = connection.handler] in handler.value.beginGracefulShutdown() }
        case .http1(let connection):
            connection.beginGracefulShutdown()
        }
    }

    /// Closes now.
    func terminate() {
        switch self {
        case .http2(let connection): connection.execute { $0.terminate(.noError) }
        case .http1(let connection): connection.terminate()
        }
    }

    var eventLoop: any EventLoop {
        switch self {
        case .http2(let connection): connection.eventLoop
        case .http1(let connection): connection.eventLoop
        }
    }
}
