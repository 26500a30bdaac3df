import NIOCore

/// The server's open connections: admits new ones up to a limit, reaches each of them for a shutdown, and wakes
/// whoever waits for the last one to close. It learns everything from the connections' events (no polling).
final class ServerConnections: ConnectionDelegate {
    private struct State {
        var open: [ObjectIdentifier: ConnectionReference] = [:]
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

    var count: Int { state.withLock { $0.open.count } }

    /// Only connections' starts and ends matter here.
    var observesStreams: Bool { false }

    /// The connections open now.
    var all: [ConnectionReference] { state.withLock { Array($0.open.values) } }

    func connectionStarted(_ connection: ConnectionReference) -> Bool {
        state.withLock { state in
            guard state.gracePeriod == nil, limit.map({ state.open.count < $0 }) ?? true else { return false }
            state.open[connection.id] = connection
            return true
        }
    }

    func connection(_ connection: ConnectionReference, emitted event: ConnectionEvent) {
        guard case .closed = event else { return }
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { state in
            guard state.open.removeValue(forKey: connection.id) != nil, state.open.isEmpty else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Asks every connection to shut down gracefully (those that start later are refused); each cuts off what is
    /// still open after `gracePeriod`.
    func shutDown(gracePeriod: Duration) {
        let open = state.withLock { state in
            state.gracePeriod = state.gracePeriod ?? gracePeriod
            return Array(state.open.values)
        }
        for connection in open { connection.execute { $0.beginGracefulShutdown(gracePeriod: gracePeriod) } }
    }

    /// Returns once no connection is open.
    func waitUntilAllClosed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let empty = state.withLock { state in
                if state.open.isEmpty { return true }
                state.waiters.append(continuation)
                return false
            }
            if empty { continuation.resume() }
        }
    }
}
