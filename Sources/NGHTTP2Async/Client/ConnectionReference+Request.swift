import NIOCore
import NGHTTP2

extension ConnectionReference {
    /// Sends a request on this connection and waits for its response head: the HTTP/2 path of ``ClientSession`` and
    /// ``HTTP2Client``.
    ///
    /// - Parameters:
    ///   - fields: the request's field block (pseudo-header fields first), converted in the caller's task.
    ///   - cancellation: made by the caller, which can then tell afterwards whether the stream was opened
    ///     (``RequestCancellation/hasStarted``).
    ///   - timeouts: the request's deadline and read timeout, checked on the event loop.
    /// - Throws: ``HTTP2Error``, or `CancellationError` when the task was cancelled (the stream is reset with CANCEL).
    nonisolated(nonsending) func sendRequest(
        _ fields: [HeaderField],
        body: MessageBody,
        cancellation: RequestCancellation,
        timeouts: StreamTimeouts?
    ) async throws -> ReceivedResponse {
        try await submitClientRequest(body: body, cancellation: cancellation, eventLoop: eventLoop) { continuation, writer in
            var request = PendingRequest(fields: fields, body: body, cancellation: cancellation, continuation: continuation)
            request.writer = writer
            request.timeouts = timeouts
            startRequest(request)
        } cancelStream: { [self] streamID in
            cancelStream(streamID)
        }
    }
}

/// How a client request goes onto a connection, whatever its protocol: `start` hands the request to the connection
/// (with the promise of a streaming body's writer), and the caller's cancellation cancels the exchange once it has
/// started.
///
/// A streaming body is written by a task made here, in the caller's task: it inherits its priority, task-locals and
/// executor preference, and its cancellation. It is not a child: the response may arrive (and be read) while the
/// body is still being written (a full-duplex echo), so this call cannot wait for the writer to finish.
nonisolated(nonsending) func submitClientRequest(
    body: MessageBody,
    cancellation: RequestCancellation,
    eventLoop: any EventLoop,
    start: (FastContinuation<ReceivedResponse, any Error>, EventLoopPromise<OutboundBody.Reference>?) -> Void,
    cancelStream: @escaping @Sendable (Int32) -> Void
) async throws -> ReceivedResponse {
    guard case .writer(let produce) = body.storage else {
        return try await withTaskCancellationHandler {
            try await withFastThrowingContinuation { (continuation: FastContinuation<ReceivedResponse, any Error>) in
                start(continuation, nil)
            }
        } onCancel: {
            if let streamID = cancellation.cancel() { cancelStream(streamID) }
        }
    }
    let writer = eventLoop.makePromise(of: OutboundBody.Reference.self)
    let producer = Task {
        guard let writer = try? await writer.futureResult.get() else { return }
        do {
            try await produce(BodyWriter(storage: writer))
            writer.finishIfNeeded()
        } catch {
            writer.abort(error)
        }
    }
    return try await withTaskCancellationHandler {
        try await withFastThrowingContinuation { (continuation: FastContinuation<ReceivedResponse, any Error>) in
            start(continuation, writer)
        }
    } onCancel: {
        producer.cancel()
        if let streamID = cancellation.cancel() { cancelStream(streamID) }
    }
}
