import NGHTTP2

extension ConnectionHandler {
    /// Sends a PRIORITY_UPDATE for a client's open stream ([RFC 9218 §7.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-7.1)).
    /// A stream that already closed has nothing left to prioritize: nothing is sent.
    ///
    /// libnghttp2 sends the frame only while the server's SETTINGS_NO_RFC7540_PRIORITIES is 1 or not yet known
    /// (RFC 9218 §2.1: a server that did not send it is not listening for the frame).
    func submitPriorityUpdate(streamID: Int32, _ priority: HTTPPriority) throws {
        guard !isServer else {
            throw HTTP2Error.invalidArgument("only a client sends PRIORITY_UPDATE (RFC 9218 §7.1)")
        }
        guard streams[streamID] != nil else { return }
        try session.submitPriorityUpdate(streamID: streamID, fieldValue: priority.fieldValue)
        scheduleFlush()
    }
}

extension ConnectionHandler {
    /// Changes the priority libnghttp2's scheduler gives a server's stream
    /// ([RFC 9218 §8](https://www.rfc-editor.org/rfc/rfc9218.html#section-8)); a closed stream has nothing left to send.
    func changeResponsePriority(streamID: Int32, _ priority: HTTPPriority, ignoringClientSignals: Bool) {
        guard isServer, streams[streamID] != nil else { return }
        try? session.changeStreamPriority(
            streamID: streamID,
            urgency: priority.urgency,
            incremental: priority.incremental,
            ignoringClientSignals: ignoringClientSignals
        )
    }
}
