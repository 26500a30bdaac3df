import NIOCore
import NGHTTP2

extension ConnectionReference {
    /// Sends a CONNECT request whose body is written by the application as it likes (no producer task): returns the
    /// response head and the writer of the stream's outbound bytes ([RFC 9113 §8.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.5)).
    ///
    /// - Throws: ``HTTP2Error``, or `CancellationError` when the task was cancelled (the stream is reset with CANCEL).
    func openTunnel(_ fields: [HeaderField], cancellation: RequestCancellation) async throws -> (ReceivedResponse, OutboundBody.Reference) {
        let writer = eventLoop.makePromise(of: OutboundBody.Reference.self)
        let response = try await withTaskCancellationHandler {
            try await withFastThrowingContinuation { (continuation: FastContinuation<ReceivedResponse, any Error>) in
                // A writer body, so that the stream gets an outbound body; its closure is never run: the tunnel's
                // owner writes through the reference the promise gets.
                var request = PendingRequest(fields: fields, body: .writer { _ in }, cancellation: cancellation, continuation: continuation)
                request.writer = writer
                startRequest(request)
            }
        } onCancel: {
            if let streamID = cancellation.cancel() { cancelStream(streamID) }
        }
        return (response, try await writer.futureResult.get())
    }

    /// Whether the server allows extended CONNECT: SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 in its SETTINGS
    /// ([RFC 8441 §3](https://www.rfc-editor.org/rfc/rfc8441.html#section-3)); `nil` while its first SETTINGS have not
    /// arrived.
    func allowsExtendedConnect() async throws -> Bool? {
        try await eventLoop.submit { [handler] in
            let connection = handler.value
            guard connection.machine.peerMaxConcurrentStreams != nil else { return nil }
            return connection.session.remoteSetting(.enableConnectProtocol) == 1
        }.get()
    }
}
