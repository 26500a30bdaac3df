import HTTPTypes

extension ServerSession.Request {
    /// The priority the client asked for in the request's `priority` header field
    /// ([RFC 9218 §5](https://www.rfc-editor.org/rfc/rfc9218.html#section-5)), or ``HTTPPriority/default`` (urgency 3,
    /// not incremental) when it sent none or one that does not parse (RFC 9218 §4).
    ///
    /// libnghttp2 already schedules this connection's responses by it: more urgent responses first, incremental ones
    /// of the same urgency sharing the connection. It is the priority the request arrived with; a later
    /// PRIORITY_UPDATE from the client (RFC 9218 §7.1) changes the schedule, not this value.
    public var priority: HTTPPriority {
        head.priority ?? .default
    }
}

extension ServerSession.Request {
    /// Sends this request's response with `priority` instead of the one the client asked for: the server knows
    /// better (RFC 9218 §8 lets it choose; for example a small, render-blocking response first). libnghttp2's
    /// scheduler applies it to what is still to be sent. With `ignoringClientSignals` (the default), a later
    /// PRIORITY_UPDATE from the client ([RFC 9218 §7.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-7.1))
    /// no longer changes it. Once the stream is closed this does nothing; ``priority`` stays what the client asked.
    /// Over HTTP/1.1, which has one response at a time on a connection, it does nothing.
    public func setResponsePriority(_ priority: HTTPPriority, ignoringClientSignals: Bool = true) {
        guard let connection = self.connection as? ConnectionReference else { return }
        let streamID = self.streamID
        connection.execute { $0.changeResponsePriority(streamID: streamID, priority, ignoringClientSignals: ignoringClientSignals) }
    }
}
