import NIOCore
import HTTPTypes
import Logging
import NGHTTP2

/// A sendable handle on a connection handler: everything it does hops to the connection's event loop. It is the
/// HTTP/2 ``StreamTransport`` of the connection's readers and writers.
/// A class: requests, readers and tasks each keep one, and copying it is then one retain, not one per field.
final class ConnectionReference: StreamTransport {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<ConnectionHandler>
    /// Identifies the connection.
    let id: ObjectIdentifier
    /// Readers whose taken bytes wait to be credited (the connection's one queue).
    let pendingCredits: LoopInbox<StreamReader.Storage>
    /// Requests waiting to be submitted (the connection's one queue).
    let pendingRequests: LoopInbox<PendingRequest>
    /// Succeeds once the connection is closed.
    let closed: EventLoopFuture<Void>

    init(_ handler: ConnectionHandler, eventLoop: any EventLoop, closed: EventLoopFuture<Void>) {
        self.eventLoop = eventLoop
        self.closed = closed
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.id = ObjectIdentifier(handler)
        self.pendingCredits = handler.pendingCredits
        self.pendingRequests = handler.pendingRequests
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

    /// Credits what the application took from `storage`. Off the event loop, readers queue up and one hop per
    /// event-loop tick credits them all (not a hop, and a closure, per read).
    func credit(_ storage: StreamReader.Storage) {
        if eventLoop.inEventLoop { return handler.value.credit(from: storage) }
        guard pendingCredits.add(storage) else { return }
        eventLoop.execute { [handler, pendingCredits] in
            for storage in pendingCredits.takeAll() { handler.value.credit(from: storage) }
        }
    }

    /// Submits a request on the event loop; off it, requests queue up and one hop per event-loop tick submits them.
    func startRequest(_ request: PendingRequest) {
        if eventLoop.inEventLoop { return handler.value.startRequest(request) }
        guard pendingRequests.add(request) else { return }
        eventLoop.execute { [handler, pendingRequests] in
            for request in pendingRequests.takeAll() { handler.value.startRequest(request) }
        }
    }

    /// Logs with the connection's logger (which carries its metadata), on its event loop.
    func log(_ level: Logger.Level, _ message: @autoclosure @escaping @Sendable () -> Logger.Message) {
        execute { $0.logger.log(level: level, message()) }
    }

    func cancelStream(_ streamID: Int32) {
        execute { $0.cancelInbound(streamID) }
    }

    func readerDropped(streamID: Int32, unread: Int, cancel: Bool) {
        execute { $0.readerDropped(streamID: streamID, unread: unread, cancel: cancel) }
    }

    func enqueue(_ chunk: ByteBuffer, streamID: Int32) {
        execute { $0.enqueue(chunk, streamID: streamID) }
    }

    func finishBody(streamID: Int32, trailers: HTTPFields?) {
        execute { $0.finishBody(streamID: streamID, trailers: trailers) }
    }

    /// Always a hop: a producer may fail while its handler still runs inside the read burst that delivered the
    /// request, and an RST_STREAM submitted together with the head would keep the head from being sent at all.
    func abortBody(streamID: Int32, error: any Error) {
        eventLoop.execute { [handler] in handler.value.abortBody(streamID: streamID, error: error) }
    }
}

/// Work queued by application tasks for a connection's event loop, taken in batches: the first item of a batch
/// schedules one hop, the others ride along (no closure to allocate, no hop, per item).
final class LoopInbox<Item: Sendable>: Sendable {
    private let state = LockedState((items: [Item](), scheduled: false))

    /// Queues `item`; returns whether the caller must schedule the hop that takes the batch (none is pending).
    func add(_ item: Item) -> Bool {
        state.withLock { state in
            state.items.append(item)
            if state.scheduled { return false }
            state.scheduled = true
            return true
        }
    }

    /// Takes everything queued; the next ``add(_:)`` schedules a new hop.
    func takeAll() -> [Item] {
        state.withLock { state in
            state.scheduled = false
            let taken = state.items
            state.items = []
            return taken
        }
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
