import NIOCore
import HTTPTypes
import Logging

/// Runs the handler for one HTTP/1.1 request and writes what it returns (in the request's own task), as
/// `respond(to:with:)` does for an HTTP/2 stream.
func respondHTTP1(to request: ServerSession.Request, connection: HTTP1ServerConnection, with handler: ServerSession.Handler) async {
    let id = request.streamID
    let response: ServerSession.Response
    do {
        response = try await handler(request)
    } catch {
        if !(error is CancellationError) { connection.log(.error, "request \(id): handler failed: \(error)") }
        return connection.execute { $0.handlerFailed(exchange: id, error: error) }
    }
    guard case .writer(let produce) = response.body.storage else {
        return connection.execute { $0.writeResponse(response, exchange: id) }
    }
    let writer: OutboundBody.Reference
    do {
        writer = try await withCheckedThrowingContinuation { continuation in
            connection.execute { continuation.resume(with: $0.startStreamingResponse(response.head, exchange: id)) }
        }
    } catch {
        return connection.execute { $0.handlerFailed(exchange: id, error: error) }
    }
    do {
        try await produce(BodyWriter(storage: writer))
        writer.finishIfNeeded()
    } catch {
        connection.log(.debug, "request \(id): the response body stopped: \(error)")
        writer.abort(error)
    }
}

extension HTTP1ServerConnection {
    /// Logs with the connection's logger, on its event loop.
    func log(_ level: Logger.Level, _ message: @autoclosure @escaping @Sendable () -> Logger.Message) {
        execute { $0.configuration.logger.log(level: level, message()) }
    }
}

extension OutboundBody.Reference {
    /// A handle on a body that another transport than libnghttp2 writes (HTTP/1.1), with its own gate.
    init(streamID: Int32, gate: WriterGate, transport: any StreamTransport) {
        self.streamID = streamID
        self.gate = gate
        self.transport = transport
    }
}
