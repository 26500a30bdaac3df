import NIOCore

/// The server's open connections: admits new ones up to a limit, reaches each of them for a shutdown, and wakes
/// whoever waits for the last one to close. It learns everything from the connections' events (no polling).
final class ServerConnections: ConnectionDelegate {
    private struct State {
        var open: [ObjectIdentifier: ConnectionReference] = [:]
        /// HTTP/1.1 connections (they count toward the limit alike).
        var http1: [ObjectIdentifier: HTTP1ServerConnection] = [:]
        var isEmpty: Bool { open.isEmpty && http1.isEmpty }
        var count: Int { open.count + http1.count }
        /// Set once the server shuts down: connections that start after it are refused.
        var gracePeriod: Duration?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = LockedState(State())
    /// The most connections open at once; `nil` for no limit.
    let limit: Int?

    init(limit: Int?) {
        self.limit = limit
    }

    var count: Int { state.withLock { $0.count } }

    /// Only connections' starts and ends matter here.
    var observesStreams: Bool { false }

    /// The connections open now.
    var all: [ConnectionReference] { state.withLock { Array($0.open.values) } }

    func connectionStarted(_ connection: ConnectionReference) -> Bool {
        state.withLock { state in
            guard state.gracePeriod == nil, limit.map({ state.count < $0 }) ?? true else { return false }
            state.open[connection.id] = connection
            return true
        }
    }

    /// An HTTP/1.1 connection started; `false` refuses it (the limit is reached, or the server shuts down).
    func http1Started(_ connection: HTTP1ServerConnection) -> Bool {
        state.withLock { state in
            guard state.gracePeriod == nil, limit.map({ state.count < $0 }) ?? true else { return false }
            state.http1[connection.id] = connection
            return true
        }
    }

    /// An HTTP/1.1 connection closed (or switched to HTTP/2, which then registers itself).
    func http1Closed(_ connection: HTTP1ServerConnection) {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { state in
            guard state.http1.removeValue(forKey: connection.id) != nil, state.isEmpty else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func connection(_ connection: ConnectionReference, emitted event: ConnectionEvent) {
        guard case .closed = event else { return }
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { state in
            guard state.open.removeValue(forKey: connection.id) != nil, state.isEmpty else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Asks every connection to shut down gracefully (those that start later are refused); each cuts off what is
    /// still open after `gracePeriod`.
    func shutDown(gracePeriod: Duration) {
        let (open, http1) = state.withLock { state in
            state.gracePeriod = state.gracePeriod ?? gracePeriod
            return (Array(state.open.values), Array(state.http1.values))
        }
        for connection in open { connection.execute { $0.beginGracefulShutdown(gracePeriod: gracePeriod) } }
        for connection in http1 { connection.beginGracefulShutdown(gracePeriod: gracePeriod) }
    }

    /// Returns once no connection is open.
    func waitUntilAllClosed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let empty = state.withLock { state in
                if state.isEmpty { return true }
                state.waiters.append(continuation)
                return false
            }
            if empty { continuation.resume() }
        }
    }
}
