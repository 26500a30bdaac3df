import NGHTTP2

/// What a connection tells whoever manages it: the server's ``ServerConnections`` registry today, a client's pool
/// of connections later. Delivered on the connection's event loop, in order.
enum ConnectionEvent: Sendable {
    /// The peer's first SETTINGS arrived: the connection knows how many streams it may open.
    case ready(maxConcurrentStreams: UInt32)
    /// A later SETTINGS changed SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §6.5.2).
    case maxConcurrentStreamsChanged(UInt32)
    /// The peer sent GOAWAY (RFC 9113 §6.8): no new streams; those above `lastStreamID` were not processed.
    case goAwayReceived(lastStreamID: Int32, errorCode: ErrorCode)
    /// A stream opened; `openStreams` are open now.
    case streamOpened(openStreams: Int)
    /// A stream closed; `openStreams` are still open.
    case streamClosed(openStreams: Int)
    /// The connection closed, with why when it was not a clean end.
    case closed((any Error)?)
}

/// Receives the events of the connections it manages, each on that connection's event loop.
protocol ConnectionDelegate: AnyObject, Sendable {
    /// Whether it wants ``ConnectionEvent/streamOpened(openStreams:)`` and ``ConnectionEvent/streamClosed(openStreams:)``
    /// (two calls per request; a server's registry does not, a client's pool does). Read once per connection.
    var observesStreams: Bool { get }
    /// A connection started (its channel is active and it is about to send its SETTINGS). Returning `false`
    /// refuses it: it sends GOAWAY (last stream 0, NO_ERROR, "connection limit") and closes.
    func connectionStarted(_ connection: ConnectionReference) -> Bool
    /// Something happened on `connection`.
    func connection(_ connection: ConnectionReference, emitted event: ConnectionEvent)
}
