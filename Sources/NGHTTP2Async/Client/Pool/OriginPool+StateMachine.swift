extension OriginPool {
    /// The decisions of one origin's pool, as plain state: which connection a request goes to, when to open another
    /// connection, when to back off, what shutting down means. Events in, ``Actions`` out; no I/O, no clock of its
    /// own (instants are given), so it is tested without NIO.
    ///
    /// A connection's load is the streams it reported open plus the requests handed to it that it has not opened
    /// yet; its capacity is the peer's SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §6.5.2), or, while it connects,
    /// the last one this origin announced (100 before any, RFC 9113's recommended minimum). A request goes to the
    /// least loaded connection with room; with none, it waits, and the pool opens connections (up to
    /// ``Limits/maxConnections``) until those connecting can take every waiting request. A connection that received
    /// GOAWAY takes nothing new and no longer counts against the limit. After a failed connect the next one waits
    /// (exponential backoff); requests waiting when the last possible connection failed fail with its error.
    struct StateMachine {
        typealias Instant = Duration

        struct ConnectionID: Hashable, Comparable, Sendable, CustomStringConvertible {
            let value: Int
            static func < (a: ConnectionID, b: ConnectionID) -> Bool { a.value < b.value }
            var description: String { "connection \(value)" }
        }

        struct RequestID: Hashable, Sendable {
            let value: Int
        }

        struct Limits: Sendable {
            /// Connections connecting or active at once (draining ones do not count).
            var maxConnections: Int
            /// The first wait after a failed connect; each further failure waits 1.5 times longer, up to
            /// ``maxBackoff``.
            var backoff: Duration = .milliseconds(100)
            var maxBackoff: Duration = .seconds(30)
        }

        struct Connection: Equatable {
            enum State: Equatable {
                case connecting
                case active
                /// GOAWAY received: finishes what it has, takes nothing new.
                case draining
            }

            let id: ConnectionID
            var state: State
            /// Its peer's SETTINGS_MAX_CONCURRENT_STREAMS (expected, while connecting).
            var maxStreams: Int
            /// Streams open on it, as it last reported.
            var open = 0
            /// Requests handed to it that it has not opened (nor given back) yet.
            var pending = 0
            /// Requests handed to it over its life.
            var dispatched = 0

            /// Whether it may take `requestsPerConnection` more requests at most.
            func available(within requestsPerConnection: Int?) -> Int {
                guard state == .active else { return 0 }
                return max(0, min(maxStreams - open - pending, (requestsPerConnection ?? .max) - dispatched))
            }

            /// Active, but it took every request the origin is known to process on one connection.
            func isSpent(_ requestsPerConnection: Int?) -> Bool {
                guard state == .active, let requestsPerConnection else { return false }
                return dispatched >= requestsPerConnection
            }
        }

        /// What the pool's shell must do, in this order: fail, dispatch, close, connect; then arm the timer.
        struct Actions {
            /// Requests to hand to connections (each counted as pending there).
            var dispatch: [(RequestID, ConnectionID)] = []
            /// Requests to fail.
            var fail: [(RequestID, any Error)] = []
            /// Connections to open.
            var connect: [ConnectionID] = []
            /// Connections to close gracefully (GOAWAY; what is in flight finishes).
            var close: [ConnectionID] = []
            /// When ``StateMachine/timerFired(now:)`` is due (the end of a backoff), if it is.
            var wakeAt: Instant?
            /// The pool shut down and its last connection is gone.
            var shutDownComplete = false

            var isEmpty: Bool {
                dispatch.isEmpty && fail.isEmpty && connect.isEmpty && close.isEmpty && wakeAt == nil && !shutDownComplete
            }
        }

        let limits: Limits
        private(set) var connections: [Connection] = []
        private(set) var waiting = RequestQueue()
        private var nextConnectionID = 0
        /// The MAX_CONCURRENT_STREAMS this origin announced last: what a connecting connection is expected to take.
        private(set) var expectedStreams = 100
        /// How many requests the origin processes on one connection, when a graceful GOAWAY showed it (servers that
        /// end every connection after N requests): a connection is given no more, so that none is refused and sent
        /// again. Forgotten when a connection took that many and then received no GOAWAY (it was a one-off).
        private(set) var requestsPerConnection: Int?
        /// Connect failures in a row.
        private(set) var failedConnects = 0
        private(set) var backoffUntil: Instant?
        private(set) var isShuttingDown = false
        private var shutDownReported = false

        init(limits: Limits) {
            self.limits = limits
        }

        // MARK: Requests

        /// A request wants a connection. A retry (`isRetry`: an earlier attempt was not processed) waits at the head of
        /// the queue, so that it gets one of the first streams of the next connection (a server that ends each
        /// connection after N requests processes the lowest N stream IDs), and is served even while the pool shuts
        /// down: it was in flight when the shutdown began.
        mutating func requestArrived(_ request: RequestID, isRetry: Bool = false, now: Instant) -> Actions {
            var actions = Actions()
            guard !isShuttingDown || isRetry else {
                actions.fail.append((request, HTTP2Error.clientShutDown))
                return actions
            }
            if let index = leastLoadedWithRoom() {
                connections[index].pending += 1
                connections[index].dispatched += 1
                actions.dispatch.append((request, connections[index].id))
                return actions
            }
            if isRetry { waiting.prepend(request) } else { waiting.append(request) }
            openConnectionsIfNeeded(now: now, &actions)
            return actions
        }

        /// A waiting request gave up (its task was cancelled, or its deadline passed): it fails with `error`. A request
        /// already dispatched is the connection's to end; nothing happens here.
        mutating func requestAbandoned(_ request: RequestID, error: any Error) -> Actions {
            var actions = Actions()
            if waiting.remove(request) { actions.fail.append((request, error)) }
            return actions
        }

        /// A request handed to `connection` was not opened there (the connection was going away, or the request was
        /// cancelled first): it no longer counts as pending.
        mutating func requestNotStarted(on connection: ConnectionID) -> Actions {
            var actions = Actions()
            guard let index = index(of: connection) else { return actions }
            connections[index].pending = max(0, connections[index].pending - 1)
            dispatchWaiting(&actions)
            closeForShutdownIfDone(&actions)
            return actions
        }

        // MARK: Connection events

        /// `connection` is ready: its peer's SETTINGS allow `maxConcurrentStreams`.
        mutating func connected(_ connection: ConnectionID, maxConcurrentStreams: Int, now: Instant) -> Actions {
            var actions = Actions()
            guard let index = index(of: connection) else { return actions }
            failedConnects = 0
            backoffUntil = nil
            expectedStreams = max(1, maxConcurrentStreams)
            connections[index].maxStreams = maxConcurrentStreams
            connections[index].state = .active
            dispatchWaiting(&actions)
            openConnectionsIfNeeded(now: now, &actions)
            closeForShutdownIfDone(&actions)
            return actions
        }

        /// Opening `connection` failed with `error`.
        mutating func connectFailed(_ connection: ConnectionID, error: any Error, now: Instant) -> Actions {
            var actions = Actions()
            guard let index = index(of: connection) else { return actions }
            connections.remove(at: index)
            failedConnects += 1
            backoffUntil = now + backoff(afterFailures: failedConnects)
            // Nothing else can serve the waiting requests: they learn why now rather than wait for the backoff.
            if !connections.contains(where: { $0.state != .draining }) {
                while let request = waiting.popFirst() { actions.fail.append((request, error)) }
            }
            closeForShutdownIfDone(&actions)
            finishShutdownIfDone(&actions)
            openConnectionsIfNeeded(now: now, &actions)
            return actions
        }

        /// The peer changed SETTINGS_MAX_CONCURRENT_STREAMS on `connection`.
        mutating func maxConcurrentStreamsChanged(_ connection: ConnectionID, to limit: Int, now: Instant) -> Actions {
            var actions = Actions()
            guard let index = index(of: connection) else { return actions }
            connections[index].maxStreams = limit
            expectedStreams = max(1, limit)
            dispatchWaiting(&actions)
            openConnectionsIfNeeded(now: now, &actions)
            return actions
        }

        /// A stream opened on `connection` (one of the requests handed to it); `open` are open now.
        mutating func streamOpened(on connection: ConnectionID, open: Int) -> Actions {
            var actions = Actions()
            guard let index = index(of: connection) else { return actions }
            connections[index].pending = max(0, connections[index].pending - 1)
            connections[index].open = open
            closeForShutdownIfDone(&actions)
            return actions
        }

        /// A stream closed on `connection`; `open` are still open.
        mutating func streamClosed(on connection: ConnectionID, open: Int) -> Actions {
            var actions = Actions()
            guard let index = index(of: connection) else { return actions }
            connections[index].open = open
            if connections[index].isSpent(requestsPerConnection), open == 0, connections[index].pending == 0 {
                // It took all the origin was thought to process, finished them, and no GOAWAY came.
                requestsPerConnection = nil
            }
            dispatchWaiting(&actions)
            closeForShutdownIfDone(&actions)
            return actions
        }

        /// `connection` received GOAWAY: it takes nothing new; waiting requests need another connection. A graceful
        /// one (`isGraceful`: NO_ERROR) that refused requests handed to it teaches the pool how many requests the
        /// origin processes per connection: those up to `lastStreamID` (client streams are odd: stream 2n-1 is the
        /// nth).
        mutating func goAwayReceived(_ connection: ConnectionID, lastStreamID: Int, isGraceful: Bool, now: Instant) -> Actions {
            var actions = Actions()
            guard let index = index(of: connection) else { return actions }
            let processed = (lastStreamID + 1) / 2
            if isGraceful, processed > 0, connections[index].dispatched > processed {
                requestsPerConnection = processed
            }
            connections[index].state = .draining
            openConnectionsIfNeeded(now: now, &actions)
            return actions
        }

        /// `connection` closed. One that closed before it was ready counts as a failed connect; the requests it fails
        /// were never sent on it, so they fail retry-safe (``HTTP2Error/notProcessed(streamID:detail:)``, naming why).
        mutating func connectionClosed(_ connection: ConnectionID, error: (any Error)?, now: Instant) -> Actions {
            guard let index = index(of: connection) else { return Actions() }
            if connections[index].state == .connecting {
                // Another connection fares no better against an HTTP/1.1 server or one whose TLS refused us (an
                // alert such as "certificate required", which TLS 1.3 sends after the client's handshake is done):
                // that error is the one to give, not a retry.
                if let error = error as? HTTP2Error, error.code == .peerSpeaksHTTP1 {
                    return connectFailed(connection, error: error, now: now)
                }
                if let error = error as? TLSError, error.code != .unexpectedEOF {
                    return connectFailed(connection, error: error, now: now)
                }
                let why = error.map { "\($0)" } ?? "the connection closed"
                return connectFailed(connection, error: HTTP2Error.notProcessed(streamID: 0, detail: "before the server's SETTINGS: \(why)"), now: now)
            }
            var actions = Actions()
            connections.remove(at: index)
            finishShutdownIfDone(&actions)
            openConnectionsIfNeeded(now: now, &actions)
            return actions
        }

        /// The timer armed by ``Actions/wakeAt`` fired.
        mutating func timerFired(now: Instant) -> Actions {
            var actions = Actions()
            if let backoffUntil, now >= backoffUntil { self.backoffUntil = nil }
            openConnectionsIfNeeded(now: now, &actions)
            return actions
        }

        // MARK: Shutdown

        /// Takes no new requests (they fail with ``HTTP2Error/clientShutDown``). The requests it has still go out:
        /// each connection closes gracefully (GOAWAY: what it carries finishes) once no request waits for it.
        mutating func shutDown() -> Actions {
            var actions = Actions()
            guard !isShuttingDown else { return actions }
            isShuttingDown = true
            closeForShutdownIfDone(&actions)
            finishShutdownIfDone(&actions)
            return actions
        }

        // MARK: Private

        private func index(of connection: ConnectionID) -> Int? {
            connections.firstIndex { $0.id == connection }
        }

        /// The active connection with the most room (the oldest of equals), if any has room.
        private func leastLoadedWithRoom() -> Int? {
            var best: Int?
            for index in connections.indices where connections[index].available(within: requestsPerConnection) > 0 {
                if best == nil || connections[index].available(within: requestsPerConnection) > connections[best!].available(within: requestsPerConnection) { best = index }
            }
            return best
        }

        private mutating func dispatchWaiting(_ actions: inout Actions) {
            while !waiting.isEmpty, let index = leastLoadedWithRoom() {
                let request = waiting.popFirst()!
                connections[index].pending += 1
                connections[index].dispatched += 1
                actions.dispatch.append((request, connections[index].id))
            }
        }

        /// Opens connections until those connecting are expected to take every waiting request, within the limit and
        /// outside a backoff.
        private mutating func openConnectionsIfNeeded(now: Instant, _ actions: inout Actions) {
            guard !waiting.isEmpty else { return }
            if let backoffUntil, now < backoffUntil {
                actions.wakeAt = backoffUntil
                return
            }
            var expected = 0
            var counted = 0
            for connection in connections {
                switch connection.state {
                case .connecting: expected += connection.maxStreams; counted += 1
                case .active where connection.isSpent(requestsPerConnection): break
                case .active: expected += connection.available(within: requestsPerConnection); counted += 1
                case .draining: break
                }
            }
            while waiting.count > expected, counted < limits.maxConnections {
                let id = ConnectionID(value: nextConnectionID)
                nextConnectionID += 1
                connections.append(Connection(id: id, state: .connecting, maxStreams: expectedStreams))
                actions.connect.append(id)
                expected += expectedStreams
                counted += 1
                // After a failure, one connection at a time: a second would most likely fail the same way.
                if failedConnects > 0 { break }
            }
        }

        /// While shutting down: closes each active connection that has nothing left to open, once nothing waits.
        private mutating func closeForShutdownIfDone(_ actions: inout Actions) {
            guard isShuttingDown, waiting.isEmpty else { return }
            for index in connections.indices where connections[index].state == .active && connections[index].pending == 0 {
                connections[index].state = .draining
                actions.close.append(connections[index].id)
            }
        }

        private mutating func finishShutdownIfDone(_ actions: inout Actions) {
            guard isShuttingDown, connections.isEmpty, !shutDownReported else { return }
            shutDownReported = true
            actions.shutDownComplete = true
        }

        private func backoff(afterFailures failures: Int) -> Duration {
            var wait = limits.backoff
            for _ in 1..<max(1, failures) {
                wait = wait * 3 / 2
                if wait >= limits.maxBackoff { return limits.maxBackoff }
            }
            return min(wait, limits.maxBackoff)
        }
    }
}

extension OriginPool.StateMachine {
    /// Waiting requests, first come first served; removing one from the middle (a cancelled request) is rare.
    struct RequestQueue {
        private var items: [RequestID] = []
        private var head = 0

        var count: Int { items.count - head }
        var isEmpty: Bool { count == 0 }

        mutating func append(_ request: RequestID) { items.append(request) }

        mutating func prepend(_ request: RequestID) {
            if head > 0 {
                head -= 1
                items[head] = request
            } else {
                items.insert(request, at: 0)
            }
        }

        mutating func popFirst() -> RequestID? {
            guard head < items.count else { return nil }
            let first = items[head]
            head += 1
            if head > 64, head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            return first
        }

        mutating func remove(_ request: RequestID) -> Bool {
            guard let index = items[head...].firstIndex(of: request) else { return false }
            items.remove(at: index)
            return true
        }
    }
}
