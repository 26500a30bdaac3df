import NIOCore
import HTTPTypes
import Logging
import NGHTTP2

extension ConnectionHandler {
    func requestReceived(streamID: Int32, fields: [HeaderField], endStream: Bool, handler: @escaping ServerSession.Handler) {
        guard let reference else { return }
        let head: HTTPRequest
        do {
            head = try HTTPRequest(http2Fields: fields, converter: &receivedFields)
        } catch {
            logger.debug("stream \(streamID): \(error)")
            try? session.submitRSTStream(streamID: streamID, errorCode: .protocolError)
            return
        }
        let body = endStream ? nil : StreamReader(storage: StreamReader.Storage(streamID: streamID, connection: reference))
        serveRequest(streamID: streamID, head: head, body: body, handler: handler, reference: reference, byPeer: true)
    }

    /// Opens the stream of a request (the peer's, or one this side promised in a PUSH_PROMISE) and starts its
    /// handler. `body` is `nil` for a request without one.
    func serveRequest(
        streamID: Int32,
        head: HTTPRequest,
        body: StreamReader?,
        handler: @escaping ServerSession.Handler,
        reference: ConnectionReference,
        byPeer: Bool
    ) {
        // A request without a body (END_STREAM on its HEADERS) gets the connection's shared, finished reader: no
        // reader and storage to allocate per request. Nothing can arrive on the stream any more, and finishing or
        // failing a finished reader changes nothing.
        let body = body ?? emptyBody(reference)
        let stream = StreamContext(id: streamID, inbound: body.storage)
        stream.headReceived = true
        stream.isConnectTunnel = head.method == .connect && head.extendedConnectProtocol == nil
        streamOpened(stream, byPeer: byPeer)
        // The handler starts right here, on the event loop, and runs until it first suspends: a handler that answers
        // at once submits its response inside this read burst, which is flushed once at its end (no job to enqueue,
        // no extra event-loop tick). After a suspension it resumes on this connection's event loop (the executor).
        // The request is built right into the task's context: one copy fewer of its many strings.
        let remoteAddress = self.remoteAddress ?? context?.channel.remoteAddress
        let receivedAt = byPeer ? lastReadAt : .now
        if let immediate = configuration.immediateHandler {
            let request = ServerSession.Request(head: head, body: body, streamID: streamID, remoteAddress: remoteAddress, receivedAt: receivedAt, connection: reference)
            if let response = immediate(request) {
                return respondImmediately(stream, response, reference: reference)
            }
            stream.handlerTask = Task.immediate(executorPreference: executor) { [request] in
                await respond(to: request, connection: reference, with: handler)
            }
            return
        }
        stream.handlerTask = Task.immediate(executorPreference: executor) { [
            request = ServerSession.Request(head: head, body: body, streamID: streamID, remoteAddress: remoteAddress, receivedAt: receivedAt, connection: reference)
        ] in
            await respond(to: request, connection: reference, with: handler)
        }
    }
}

extension ConnectionHandler {
    /// Sends what the immediate handler returned: a body given whole at once, a writer's body from a task of its own.
    private func respondImmediately(_ stream: StreamContext, _ response: ServerSession.Response, reference: ConnectionReference) {
        guard case .writer(let produce) = response.body.storage else {
            return submitResponse(streamID: stream.id, response)
        }
        let streamID = stream.id
        let head = response.head
        stream.handlerTask = Task.immediate(executorPreference: executor) {
            await respondStreaming(streamID: streamID, connection: reference, head: head, produce: produce)
        }
    }
}

/// Runs the handler for one request and sends what it returns (in the request's own task).
///
/// Only the common path (a whole body) is written out here: the streaming body and the failures are in functions of
/// their own, so that this function's async frame stays small enough for the task's first allocator slab (every
/// request saved a malloc and a free of a slab).
private func respond(to request: ServerSession.Request, connection: ConnectionReference, with handler: ServerSession.Handler) async {
    let streamID = request.streamID
    let response: ServerSession.Response
    do {
        response = try await handler(request)
    } catch {
        return handlerFailed(streamID: streamID, connection: connection, error: error)
    }
    guard case .writer(let produce) = response.body.storage else {
        if connection.eventLoop.inEventLoop {
            connection.handler.value.submitResponse(streamID: streamID, response)  // no closure to allocate
        } else {
            connection.execute { $0.submitResponse(streamID: streamID, response) }
        }
        return
    }
    await respondStreaming(streamID: streamID, connection: connection, head: response.head, produce: produce)
}

/// Sends a response whose body a writer produces.
@inline(never)
private func respondStreaming(
    streamID: Int32,
    connection: ConnectionReference,
    head: HTTPResponse,
    produce: @Sendable (BodyWriter) async throws -> Void
) async {
    let writer: OutboundBody.Reference
    do {
        writer = try await withCheckedThrowingContinuation { continuation in
            connection.execute { continuation.resume(with: $0.submitStreamingResponse(streamID: streamID, head)) }
        }
    } catch {
        return handlerFailed(streamID: streamID, connection: connection, error: error)
    }
    do {
        try await produce(BodyWriter(storage: writer))
        writer.finishIfNeeded()
    } catch {
        if isPeerGone(error) {
            connection.log(.debug, "stream \(streamID): the response body stopped: \(error)")
        } else {
            connection.log(.error, "stream \(streamID): the response body failed: \(error)")
        }
        writer.abort(error)
    }
}

/// The handler threw (or its task was cancelled): logs it and resets the stream.
@inline(never)
private func handlerFailed(streamID: Int32, connection: ConnectionReference, error: any Error) {
    if error is CancellationError {
        // Cancelled because the stream or connection went: nothing to log.
    } else if isPeerGone(error) {
        connection.log(.debug, "stream \(streamID): handler stopped: \(error)")
    } else {
        connection.log(.error, "stream \(streamID): handler failed: \(error)")
    }
    connection.execute { $0.handlerFailed(streamID: streamID, error: error) }
}

/// Whether an error only says the peer reset the stream or went away (not worth an error log).
private func isPeerGone(_ error: any Error) -> Bool {
    switch error {
    case is CancellationError: true
    case let error as HTTP2Error where error.code == .streamReset: error.byPeer
    case HTTP2Error.Code.connectionClosed, HTTP2Error.Code.notProcessed: true
    default: false
    }
}

extension ConnectionReference: ServerTransport {
    func sendInformational(streamID: Int32, _ response: HTTPResponse) {
        execute { $0.submitInformational(streamID: streamID, response) }
    }
}

extension ConnectionHandler {
    /// The shared reader of requests without a body: finished from the start (made once per connection).
    private func emptyBody(_ reference: ConnectionReference) -> StreamReader {
        if let emptyRequestBody { return emptyRequestBody }
        let storage = StreamReader.Storage(streamID: 0, connection: reference)
        storage.finish(trailers: nil)
        let reader = StreamReader(storage: storage)
        emptyRequestBody = reader
        return reader
    }

    /// Answers with a head and a body given whole (or none).
    func submitResponse(streamID: Int32, _ response: ServerSession.Response) {
        guard let stream = streams[streamID], !stream.responseSubmitted else { return }
        submit(stream, response.head, body: stream.wholeBodyProvider(for: response.body))
        messageSubmitted()
    }

    /// Answers with a head and a body that a writer will produce; returns the writer's handle.
    func submitStreamingResponse(streamID: Int32, _ head: HTTPResponse) -> Result<OutboundBody.Reference, any Error> {
        guard let reference, let stream = streams[streamID], !stream.responseSubmitted else {
            return .failure(HTTP2Error.streamReset(streamID: streamID, errorCode: .cancel, byPeer: true))
        }
        let outbound = OutboundBody(highWatermark: configuration.bodyHighWatermark)
        outbound.streamID = streamID
        guard submit(stream, head, body: DataProvider(source: outbound)) else {
            scheduleFlush()
            return .failure(HTTP2Error.streamReset(streamID: streamID, errorCode: .internalError, byPeer: false))
        }
        stream.outbound = outbound
        scheduleFlush()
        return .success(OutboundBody.Reference(outbound, transport: reference))
    }

    /// Submits the response head with its body's provider; on failure the stream is reset. Returns whether it went.
    /// The caller schedules the write.
    @discardableResult
    private func submit(_ stream: StreamContext, _ head: HTTPResponse, body provider: DataProvider?) -> Bool {
        do {
            try head.withHTTP2Fields { fields in try session.submitResponse(streamID: stream.id, fields: fields, body: provider) }
            stream.responseSubmitted = true
            return true
        } catch {
            logger.error("stream \(stream.id): cannot submit the response: \(error)")
            resetStream(stream.id, errorCode: .internalError, failing: error)
            return false
        }
    }

    func submitInformational(streamID: Int32, _ response: HTTPResponse) {
        guard let stream = streams[streamID], !stream.responseSubmitted else { return }
        _ = try? session.submitHeaders(streamID: streamID, response.http2Fields)
        scheduleFlush()
    }

    /// The handler threw: 500 if nothing was sent yet, otherwise RST_STREAM INTERNAL_ERROR.
    func handlerFailed(streamID: Int32, error: any Error) {
        guard let stream = streams[streamID] else { return }
        if error is CancellationError {
            resetStream(streamID, errorCode: .cancel, failing: error)
        } else if stream.responseSubmitted {
            resetStream(streamID, errorCode: stream.isConnectTunnel ? .connectError : .internalError, failing: error)
        } else {
            submitResponse(streamID: streamID, ServerSession.Response(status: .internalServerError, headers: [.contentLength: "0"]))
        }
    }
}
