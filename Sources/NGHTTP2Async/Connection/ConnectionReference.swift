import NIOCore
import NGHTTP2

/// A sendable handle on a connection handler: everything it does hops to the connection's event loop.
struct ConnectionReference: Sendable {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<ConnectionHandler>
    /// Identifies the connection.
    let id: ObjectIdentifier

    init(_ handler: ConnectionHandler, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.id = ObjectIdentifier(handler)
    }

    /// Runs `body` on the event loop (at once when already there).
    func execute(_ body: @escaping @Sendable (ConnectionHandler) -> Void) {
        if eventLoop.inEventLoop {
            body(handler.value)
        } else {
            let handler = self.handler
            eventLoop.execute { body(handler.value) }
        }
    }

    func credit(_ storage: StreamReader.Storage) {
        execute { $0.credit(from: storage) }
    }

    func cancelStream(_ streamID: Int32) {
        execute { $0.cancelInbound(streamID) }
    }

    func readerDropped(streamID: Int32, unread: Int, cancel: Bool) {
        execute { $0.readerDropped(streamID: streamID, unread: unread, cancel: cancel) }
    }
}

/// A connection's bookkeeping at one moment, for diagnostics and leak checks.
struct ConnectionStatistics: Sendable, Equatable {
    /// Streams the connection tracks.
    var openStreams: Int
    /// Streams with a body still sending in libnghttp2.
    var sendingBodies: Int
    /// The connection's receive window left for the peer.
    var localWindowSize: Int
    /// Received bytes not yet credited back.
    var uncreditedBytes: Int
}

extension ConnectionReference {
    func statistics() async throws -> ConnectionStatistics {
        try await eventLoop.submit { [handler] in
            let connection = handler.value
            return ConnectionStatistics(
                openStreams: connection.streams.count,
                sendingBodies: connection.session.activeDataProviderCount,
                localWindowSize: connection.session.localWindowSize,
                uncreditedBytes: connection.session.effectiveReceivedDataLength
            )
        }.get()
    }
}
