import NIOCore
import HTTPTypes
import NGHTTP2
import Synchronization

/// A request on its way to the event loop: its converted field block, its body, and who waits for the response.
struct PendingRequest: Sendable {
    let fields: [HeaderField]
    let body: Body
    let cancellation: RequestCancellation
    let continuation: FastContinuation<ReceivedResponse, any Error>
}

extension ConnectionHandler {
    /// Submits a request and, for a streaming body, starts the task that writes it.
    func startRequest(_ request: PendingRequest) {
        guard
            let (writer, produce) = startRequest(
                request.fields,
                body: request.body,
                cancellation: request.cancellation,
                continuation: request.continuation
            )
        else { return }
        Task {
            do {
                try await produce(BodyWriter(storage: writer))
                writer.finishIfNeeded()
            } catch {
                writer.abort(error)
            }
        }
    }

    /// Submits a request. The response (or its failure) resumes `continuation`.
    /// Returns the writer of a streaming body, for the caller to run its producer.
    func startRequest(
        _ fields: [HeaderField],
        body: Body,
        cancellation: RequestCancellation,
        continuation: FastContinuation<ReceivedResponse, any Error>
    ) -> (OutboundBody.Reference, @Sendable (BodyWriter) async throws -> Void)? {
        guard let reference, !isClosing, context?.channel.isActive == true else {
            continuation.resume(throwing: endedBecause ?? HTTP2Error.sessionClosed)
            return nil
        }
        guard !cancellation.isCancelled else {
            continuation.resume(throwing: CancellationError())
            return nil
        }
        guard goawayReceived == nil, session.isRequestAllowed else {
            continuation.resume(throwing: HTTP2Error.notProcessed(streamID: Int32(bitPattern: session.nextStreamID)))
            return nil
        }
        let outbound: OutboundBody?
        var producer: (@Sendable (BodyWriter) async throws -> Void)?
        switch body.storage {
        case .empty: outbound = nil
        case .bytes(let bytes, let trailers): outbound = OutboundBody(bytes: bytes, trailers: trailers)
        case .text(let text, let trailers): outbound = OutboundBody(bytes: ByteBuffer(string: text), trailers: trailers)
        case .writer(let produce):
            outbound = OutboundBody(highWatermark: configuration.bodyHighWatermark)
            producer = produce
        }
        let streamID: Int32
        do {
            streamID = try session.submitRequest(fields, body: outbound.map { dataProvider(for: $0) })
        } catch {
            continuation.resume(throwing: error)
            return nil
        }
        outbound?.streamID = streamID
        let stream = StreamContext(id: streamID, inbound: StreamReader.Storage(streamID: streamID, connection: reference))
        stream.outbound = outbound
        stream.response = continuation
        streams[streamID] = stream
        cancellation.started(streamID)
        scheduleFlush()
        guard let outbound, let producer else { return nil }
        return (OutboundBody.Reference(outbound, connection: reference), producer)
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

    /// Sends GOAWAY and lets open streams finish; the connection closes when the last one does.
    func closeGracefully() {
        guard !isClosing else { return }
        try? session.submitGoaway(lastStreamID: session.lastProcessedStreamID, errorCode: .noError)
        flush()
    }

    /// Ends the connection now with GOAWAY(`errorCode`); open streams fail.
    func terminate(_ errorCode: ErrorCode) {
        failAllStreams(HTTP2Error.connectionClosed(errorCode: errorCode))
        try? session.terminate(errorCode: errorCode)
        flush()
    }
}

/// Lets a cancelled request task reset its stream, whether or not the stream exists yet.
final class RequestCancellation: Sendable {
    private struct State {
        var cancelled = false
        var streamID: Int32?
    }

    private let state = Mutex(State())  // inline: no allocation of its own

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    func started(_ streamID: Int32) {
        state.withLock { $0.streamID = streamID }
    }

    /// Marks the request cancelled; returns its stream ID if it has one.
    func cancel() -> Int32? {
        state.withLock { state in
            state.cancelled = true
            return state.streamID
        }
    }
}
