import NIOCore

extension ClientSession.Response {
    /// Asks the server to send the rest of this response with `priority`, in a PRIORITY_UPDATE frame
    /// ([RFC 9218 §7.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-7.1)); the request's own
    /// ``HTTPTypes/HTTPRequest/priority`` said the first one.
    ///
    /// Returns once the frame is queued on the connection (it goes out with the next write). Once the response has
    /// ended there is nothing left to prioritize, and nothing is sent. libnghttp2 also sends nothing to a server whose
    /// SETTINGS did not carry SETTINGS_NO_RFC7540_PRIORITIES = 1 (RFC 9218 §2.1): such a server does not use these
    /// priorities.
    ///
    /// - Throws: ``HTTP2Error/Code/invalidArgument`` for a response that did not come over HTTP/2, or the
    ///   `NGHTTP2Error` of libnghttp2 when it refused the frame.
    public func updatePriority(_ priority: HTTPPriority) async throws {
        guard let connection = body.storage.connection as? ConnectionReference else {
            throw HTTP2Error.invalidArgument("PRIORITY_UPDATE needs an HTTP/2 response")
        }
        let streamID = self.streamID
        try await connection.eventLoop.submit { [handler = connection.handler] in
            try handler.value.submitPriorityUpdate(streamID: streamID, priority)
        }.get()
    }
}
