import NIOCore
import HTTPTypes
import NGHTTP2

/// A request on its way to the event loop: its converted field block, its body, and who waits for the response.
struct PendingRequest: Sendable {
    let fields: [HeaderField]
    let body: MessageBody
    let cancellation: RequestCancellation
    let continuation: FastContinuation<ReceivedResponse, any Error>
    /// For a streaming body: gets the body's writer once the request is submitted (the caller's task runs the
    /// producer with it), or the request's failure.
    var writer: EventLoopPromise<OutboundBody.Reference>?
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
        scheduleFlush()
        guard request.cancellation.started(streamID) else {
            // Cancelled between the check above and now: nobody else will reset the stream.
            resetStream(streamID, errorCode: .cancel, failing: CancellationError())  // resumes the response
            request.writer?.fail(CancellationError())
            return nil
        }
        guard let outbound, request.writer != nil else { return nil }
        return OutboundBody.Reference(outbound, transport: reference)
    }

    func clientFieldBlock(streamID: Int32, fields: [HeaderField], endStream: Bool) {
        guard let stream = streams[streamID] else { return }
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
        if let continuation = stream.response {
            stream.response = nil
            let body = StreamReader(storage: stream.inbound)
            // The fields become HTTPFields in the requesting task (ReceivedResponse.response), not here.
            continuation.resume(
                returning: ReceivedResponse(status: status, fields: fields, body: body, streamID: streamID, informational: stream.informational)
            )
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
