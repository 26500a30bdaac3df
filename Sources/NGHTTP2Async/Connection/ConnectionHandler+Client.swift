import NIOCore
import HTTPTypes
import NGHTTP2
import Logging

/// A request on its way to the event loop: its converted field block, its body, and who waits for the response.
struct PendingRequest: Sendable {
    let fields: [HeaderField]
    let body: MessageBody
    let cancellation: RequestCancellation
    let continuation: FastContinuation<ReceivedResponse, any Error>
    /// For a streaming body: gets the body's writer once the request is submitted (the caller's task runs the
    /// producer with it), or the request's failure.
    var writer: EventLoopPromise<OutboundBody.Reference>?
    /// The request's deadline and read timeout, if it has either.
    var timeouts: StreamTimeouts?
}

/// How long a client's request may take: in all (`deadline`, from when it was made) and without receiving a byte
/// (`read`). Checked on the connection's event loop; when one passes, the stream is reset with CANCEL and the
/// request (or its body reader) fails with ``HTTP2Error/requestTimeout(_:)`` or ``HTTP2Error/readTimeout(_:)``.
struct StreamTimeouts: Sendable {
    /// When the whole exchange must be over, and the time it was given (for the error).
    var deadline: (at: NIODeadline, given: Duration)?
    /// How long the response may go without a byte.
    var read: Duration?
}

extension ConnectionHandler {
    /// Submits a request. The response (or its failure) resumes the request's continuation; a streaming body's
    /// writer goes to its promise.
    func startRequest(_ request: PendingRequest) {
        do {
            let writer = try submitRequest(request)
            if let writer { request.writer?.succeed(writer) }
        } catch {
            request.writer?.fail(error)
            request.continuation.resume(throwing: error)
        }
    }

    /// Submits a request; returns the writer of a streaming body.
    private func submitRequest(_ request: PendingRequest) throws -> OutboundBody.Reference? {
        guard let reference, context?.channel.isActive == true, !machine.isClosingOrClosed else {
            // The server speaks HTTP/1.1: no other connection would do better, so that is the error.
            if let ended = machine.endedBecause as? HTTP2Error, ended.code == .peerSpeaksHTTP1 { throw ended }
            // Never sent, so safe to retry elsewhere; the detail says why this connection could not take it.
            let reason = machine.endedBecause.map { "\($0)" } ?? "the session is closed"
            throw HTTP2Error.notProcessed(streamID: Int32(bitPattern: session.nextStreamID), detail: reason)
        }
        guard !request.cancellation.isCancelled else { throw CancellationError() }
        guard isAcceptingRequests else { throw HTTP2Error.notProcessed(streamID: Int32(bitPattern: session.nextStreamID)) }
        // The stream's context is made before the submit, with the ID libnghttp2 is about to give the stream, so that a
        // body given whole is sent from it (no object per body).
        let streamID = Int32(bitPattern: session.nextStreamID)
        let stream = StreamContext(id: streamID, inbound: StreamReader.Storage(streamID: streamID, connection: reference))
        let outbound: OutboundBody?
        let provider: DataProvider?
        if case .writer = request.body.storage {
            let body = OutboundBody(highWatermark: configuration.bodyHighWatermark)
            body.streamID = streamID
            (outbound, provider) = (body, DataProvider(source: body))
        } else {
            (outbound, provider) = (nil, stream.wholeBodyProvider(for: request.body))
        }
        let submitted: Int32
        do {
            submitted = try session.submitRequest(request.fields, body: provider)
        } catch let error as NGHTTP2Error {
            // libnghttp2 did not take it (e.g. stream IDs ran out, the session is closing): it never left this side.
            throw HTTP2Error.notProcessed(streamID: streamID, detail: "libnghttp2 did not take the request: \(error)")
        }
        guard submitted == streamID else {
            try? session.submitRSTStream(streamID: submitted, errorCode: .internalError)
            throw HTTP2Error.notProcessed(streamID: submitted, detail: "libnghttp2 gave stream \(submitted), not \(streamID)")
        }
        stream.outbound = outbound
        stream.response = request.continuation
        streamOpened(stream, byPeer: false)
        if let timeouts = request.timeouts { armStreamTimer(stream, timeouts) }
        messageSubmitted()
        guard request.cancellation.started(streamID) else {
            // Cancelled between the check above and now: nobody else will reset the stream.
            resetStream(streamID, errorCode: .cancel, failing: CancellationError())  // resumes the response
            request.writer?.fail(CancellationError())
            return nil
        }
        guard let outbound, request.writer != nil else { return nil }
        return OutboundBody.Reference(outbound, transport: reference)
    }

    // MARK: Request timeouts

    /// Starts watching a request's deadline and read timeout (one scheduled task per request that has either).
    func armStreamTimer(_ stream: StreamContext, _ timeouts: StreamTimeouts) {
        stream.timeouts = timeouts
        if timeouts.read != nil { stream.lastReceived = now }
        scheduleStreamTimer(stream)
    }

    private func scheduleStreamTimer(_ stream: StreamContext) {
        guard let timeouts = stream.timeouts, let eventLoop = context?.eventLoop else { return }
        var fireAt = timeouts.deadline?.at ?? .distantFuture
        if let read = timeouts.read {
            let idleEnd = stream.lastReceived + read
            fireAt = min(fireAt, NIODeadline.uptimeNanoseconds(UInt64(max(0, TimeAmount(idleEnd).nanoseconds))))
        }
        let streamID = stream.id
        stream.timer = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: fireAt) { [weak self] in
            self?.streamTimerFired(streamID)
        }
    }

    /// A request's timer fired: the deadline or the read timeout passed (the stream is reset), or data arrived since
    /// it was armed (armed again for the new end of the read timeout).
    private func streamTimerFired(_ streamID: Int32) {
        guard let stream = streams[streamID], let timeouts = stream.timeouts else { return }
        stream.timer = nil
        if let deadline = timeouts.deadline, NIODeadline.now() >= deadline.at {
            logger.debug("stream \(streamID): the request's deadline passed")
            return resetStream(streamID, errorCode: .cancel, failing: HTTP2Error.requestTimeout(deadline.given))
        }
        if let read = timeouts.read, now - stream.lastReceived >= read {
            logger.debug("stream \(streamID): nothing received for \(read)")
            return resetStream(streamID, errorCode: .cancel, failing: HTTP2Error.readTimeout(read))
        }
        scheduleStreamTimer(stream)
    }

    /// Bytes of `stream`'s response arrived (for its read timeout).
    func responseBytesReceived(_ stream: StreamContext) {
        if stream.timeouts?.read != nil { stream.lastReceived = now }
    }

    // MARK: Responses

    func clientFieldBlock(streamID: Int32, fields: [HeaderField], endStream: Bool) {
        guard let stream = streams[streamID] else { return }
        responseBytesReceived(stream)
        if stream.headReceived {
            stream.inbound.finish(trailers: HTTPFields(http2Fields: fields))
            return
        }
        let status: HTTPResponse.Status
        do {
            status = try HTTPResponse.status(http2Fields: fields)
        } catch {
            return resetStream(streamID, errorCode: .protocolError, failing: error)
        }
        if status.kind == .informational {
            stream.informational.append(HTTPResponse(status: status, headerFields: HTTPFields(http2Fields: fields)))
            return
        }
        stream.headReceived = true
        if endStream { stream.inbound.finish(trailers: nil) }
        guard stream.pushedResponse != nil || stream.response != nil else { return }
        let head = HTTPResponse(status: status, headerFields: receivedFields.httpFields(fields))
        let received = ReceivedResponse(head: head, body: StreamReader(storage: stream.inbound), streamID: streamID, informational: stream.informational)
        if let pushed = stream.pushedResponse {
            stream.pushedResponse = nil
            pushed.succeed(received)
        } else if let continuation = stream.response {
            stream.response = nil
            continuation.resume(returning: received)
        }
    }
}

/// Lets a cancelled request task reset its stream, whether or not the stream exists yet.
final class RequestCancellation: Sendable {
    private struct State {
        var cancelled = false
        var streamID: Int32?
    }

    private let state = LockedState(State())  // inline: no allocation of its own

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Whether the request's stream was opened (its HEADERS were handed to libnghttp2).
    var hasStarted: Bool { state.withLock { $0.streamID != nil } }

    /// Records the request's stream; returns `false` when the request was cancelled before (its task's cancel then
    /// found no stream to reset, so the caller resets it).
    func started(_ streamID: Int32) -> Bool {
        state.withLock { state in
            state.streamID = streamID
            return !state.cancelled
        }
    }

    /// Marks the request cancelled; returns its stream ID if it has one.
    func cancel() -> Int32? {
        state.withLock { state in
            state.cancelled = true
            return state.streamID
        }
    }
}
