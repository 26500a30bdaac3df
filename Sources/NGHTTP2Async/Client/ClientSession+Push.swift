public import HTTPTypes
import NIOCore
import NGHTTP2
import Logging

extension ClientSession {
    /// Receives the server's pushes (``Configuration/pushHandler``): called once per PUSH_PROMISE, in a task of its
    /// own, with the promised request.
    public typealias PushHandler = @Sendable (PushPromise) async -> Void

    /// A response the server promised to send without being asked: a PUSH_PROMISE
    /// ([RFC 9113 §8.4](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.4)).
    ///
    /// Take it with ``response()``; refuse it by returning from the ``PushHandler`` without asking (or with
    /// ``cancel()``): the promised stream is then reset with CANCEL (§8.4.2).
    public struct PushPromise: Sendable {
        /// The request the server answers: a GET or HEAD with `:scheme`, `:authority` and `:path`.
        public let request: HTTPRequest
        /// The stream of the request the push belongs to.
        public let associatedStreamID: Int32
        /// The stream the pushed response comes on (even: the server opened it).
        public let promisedStreamID: Int32
        let received: EventLoopFuture<ReceivedResponse>
        let connection: ConnectionReference
        let asked: PushAsked

        /// Waits for the pushed response's head; its body is read like any response's.
        ///
        /// - Throws: ``HTTP2Error`` when the server reset the promised stream or the connection closed first.
        public func response() async throws -> ClientSession.Response {
            asked.set()
            return try await received.get().response
        }

        /// Refuses the push: RST_STREAM CANCEL on the promised stream (nothing happens if it already ended).
        public func cancel() {
            let streamID = promisedStreamID
            connection.execute { $0.resetStream(streamID, errorCode: .cancel, failing: CancellationError()) }
        }
    }
}

/// Whether a push's handler asked for its response (a push it did not ask for is cancelled when the handler returns).
final class PushAsked: Sendable {
    private let value = LockedState(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

extension ConnectionHandler {
    /// The server promised a response (PUSH_PROMISE, RFC 9113 §8.4): the promised stream is tracked like a request's
    /// and the configuration's push handler gets it.
    func pushPromiseReceived(associatedStreamID: Int32, promisedStreamID: Int32, fields: [HeaderField]) {
        guard let reference, let pushHandler = configuration.pushHandler, let eventLoop = context?.eventLoop else {
            // Only a client that sent SETTINGS_ENABLE_PUSH = 1 (one with a push handler) gets here.
            try? session.submitRSTStream(streamID: promisedStreamID, errorCode: .refusedStream)
            return
        }
        let request: HTTPRequest
        do {
            request = try HTTPRequest(http2Fields: fields)
        } catch {
            // A malformed promised request (§8.4.1, §8.1.1): the promised stream is reset.
            logger.debug("stream \(promisedStreamID): malformed PUSH_PROMISE: \(error)")
            try? session.submitRSTStream(streamID: promisedStreamID, errorCode: .protocolError)
            scheduleFlush()
            return
        }
        let stream = StreamContext(id: promisedStreamID, inbound: StreamReader.Storage(streamID: promisedStreamID, connection: reference))
        let received = eventLoop.makePromise(of: ReceivedResponse.self)
        stream.pushedResponse = received
        streamOpened(stream, byPeer: true)
        let promise = ClientSession.PushPromise(
            request: request,
            associatedStreamID: associatedStreamID,
            promisedStreamID: promisedStreamID,
            received: received.futureResult,
            connection: reference,
            asked: PushAsked()
        )
        Task(executorPreference: executor) {
            await pushHandler(promise)
            if !promise.asked.isSet { promise.cancel() }
        }
    }
}
