import NIOCore
import NGHTTP2
import Logging
import Synchronization

/// The connections of an ``HTTP2Client`` to one origin (scheme, host, port), and the requests waiting for one: the
/// thin shell around ``StateMachine``. Events (a request, a connection's ``ConnectionEvent``, a timer) go into the
/// machine under one lock; what it decides (resume a request with a connection, fail it, connect, close, arm the
/// timer) runs after the lock is released.
final class OriginPool: Sendable {
    /// Where the pool connects: what `:scheme` and `:authority` say.
    struct Origin: Hashable, Sendable, CustomStringConvertible {
        let scheme: String
        let host: String
        let port: Int

        /// `host:port`, with an IPv6 host in brackets.
        var hostAndPort: String { "\(host.contains(":") ? "[\(host)]" : host):\(port)" }

        var description: String { "\(scheme)://\(hostAndPort)" }
    }

    /// A connection a request may use, counted as pending in the pool until the request's stream opens there (or
    /// ``OriginPool/requestNotStarted(_:)`` says it will not).
    struct Lease: Sendable {
        let connection: PooledTransport
        let id: StateMachine.ConnectionID
    }

    private struct Waiter {
        let continuation: CheckedContinuation<Lease, any Error>
        var deadline: Scheduled<Void>?
    }

    private struct State {
        var machine: StateMachine
        var waiters: [StateMachine.RequestID: Waiter] = [:]
        var connections: [StateMachine.ConnectionID: PooledTransport] = [:]
        var timer: (at: StateMachine.Instant, task: Scheduled<Void>)?
        var shutDownWaiters: [CheckedContinuation<Void, Never>] = []
        var isShutDown = false
        /// Connections opened over the pool's life (for tests and diagnostics).
        var connectionsOpened = 0
    }

    /// What one event made the pool do, collected under the lock and carried out after it.
    private struct Effects {
        var resume: [(CheckedContinuation<Lease, any Error>, Result<Lease, any Error>)] = []
        var cancelDeadlines: [Scheduled<Void>] = []
        var connect: [StateMachine.ConnectionID] = []
        var close: [PooledTransport] = []
        var arm: StateMachine.Instant?
        var shutDown: [CheckedContinuation<Void, Never>] = []
    }

    let origin: Origin
    private let configuration: ClientSession.Configuration
    private let httpVersion: HTTP2Client.HTTPVersionPolicy
    private let eventLoopGroup: any EventLoopGroup
    private let state: LockedState<State>

    init(
        origin: Origin,
        configuration: ClientSession.Configuration,
        httpVersion: HTTP2Client.HTTPVersionPolicy = .http2Only,
        limits: StateMachine.Limits,
        eventLoopGroup: any EventLoopGroup
    ) {
        self.origin = origin
        self.configuration = configuration
        self.httpVersion = httpVersion
        self.eventLoopGroup = eventLoopGroup
        self.state = LockedState(State(machine: StateMachine(limits: limits)))
    }

    private static var now: StateMachine.Instant { .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds)) }

    // MARK: Requests

    /// Waits for a connection with room for one more stream.
    ///
    /// - Parameters:
    ///   - isRetry: an earlier attempt of this request was not processed (served even while shutting down).
    ///   - deadline: when the request's time is up (it then fails with ``HTTP2Error/requestTimeout(_:)``).
    /// - Throws: the connect error when no connection could be opened, ``HTTP2Error/clientShutDown``,
    ///   ``HTTP2Error/requestTimeout(_:)``, or `CancellationError`.
    func lease(isRetry: Bool, deadline: (at: NIODeadline, given: Duration)?) async throws -> Lease {
        let id = RequestIDs.next()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Lease, any Error>) in
                let now = Self.now
                let effects = state.withLock { state in
                    state.waiters[id] = Waiter(continuation: continuation)
                    return apply(state.machine.requestArrived(id, isRetry: isRetry, now: now), to: &state)
                }
                perform(effects)
                guard let deadline else { return }
                let task = eventLoopGroup.any().scheduleTask(deadline: deadline.at) { [self] in
                    abandon(id, error: HTTP2Error.requestTimeout(deadline.given))
                }
                // Kept only if the request still waits; otherwise it has its connection already.
                let waiting = state.withLock { state in
                    guard state.waiters[id] != nil else { return false }
                    state.waiters[id]?.deadline = task
                    return true
                }
                if !waiting { task.cancel() }
            }
        } onCancel: {
            abandon(id, error: CancellationError())
        }
    }

    /// A leased connection did not open the request's stream: it no longer holds a place there.
    func requestNotStarted(_ lease: Lease) {
        event { $0.requestNotStarted(on: lease.id) }
    }

    private func abandon(_ id: StateMachine.RequestID, error: any Error) {
        event { $0.requestAbandoned(id, error: error) }
    }

    // MARK: Shutdown

    /// Takes no new requests, lets those it has finish, closes every connection gracefully, and returns once the
    /// last one closed.
    func shutDown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let effects = state.withLock { state in
                if state.isShutDown {
                    var effects = Effects()
                    effects.shutDown = [continuation]
                    return effects
                }
                state.shutDownWaiters.append(continuation)
                return apply(state.machine.shutDown(), to: &state)
            }
            perform(effects)
        }
    }

    // MARK: Connections

    /// Connections opened over the pool's life.
    var connectionsOpened: Int { state.withLock { $0.connectionsOpened } }

    /// Whether the pool holds a connection (connecting, active or draining) now.
    var hasConnections: Bool { state.withLock { !$0.machine.connections.isEmpty } }

    /// Whether the pool was told to shut down.
    var isShuttingDown: Bool { state.withLock { $0.machine.isShuttingDown } }

    /// Requests waiting for a connection now.
    var waitingCount: Int { state.withLock { $0.machine.waiting.count } }

    private func connect(_ id: StateMachine.ConnectionID) {
        state.withLock { $0.connectionsOpened += 1 }
        // The connect timeout lasts until the server's SETTINGS make the connection ready; the connection arms it
        // on its own event loop when it starts (a task scheduled from here could meet a loop already shut down).
        let deadline = NIODeadline.now() + TimeAmount(configuration.connectTimeout)
        let delegate = PooledConnection(pool: self, id: id, connectDeadline: deadline)
        let http1 =
            httpVersion.allowsHTTP1
            ? HTTP1ClientOptions(cleartext: httpVersion.cleartextIsHTTP1, delegate: delegate, upgradesToHTTP2: httpVersion.upgradesCleartext)
            : nil
        Task { [origin, configuration, eventLoopGroup] in
            do {
                _ = try await ClientSession.openChannel(
                    host: origin.host,
                    port: origin.port,
                    configuration: configuration,
                    eventLoopGroup: eventLoopGroup,
                    delegate: delegate,
                    http1: http1
                )
            } catch {
                configuration.logger.debug("\(origin): connect failed: \(error)")
                event { $0.connectFailed(id, error: error, now: Self.now) }
            }
        }
    }

    /// The connect timeout passed: a connection still waiting for the server's SETTINGS is given up.
    private func connectDeadlinePassed(_ id: StateMachine.ConnectionID) {
        let connecting: PooledTransport? = state.withLock { state in
            guard state.machine.connections.contains(where: { $0.id == id && $0.state == .connecting }) else { return nil }
            return state.connections[id]
        }
        guard let connection = connecting else { return }
        configuration.logger.debug("\(origin): no SETTINGS within \(configuration.connectTimeout)")
        event { $0.connectFailed(id, error: HTTP2Error.connectTimeout, now: Self.now) }
        connection.terminate()
    }

    fileprivate func connectionStarted(_ connection: PooledTransport, id: StateMachine.ConnectionID, connectDeadline: NIODeadline) {
        state.withLock { $0.connections[id] = connection }
        // Neither the pool nor the connection is kept for the deadline's sake (a closed connection goes at once).
        connection.eventLoop.scheduleTask(deadline: connectDeadline) { [weak self] in
            self?.connectDeadlinePassed(id)
        }
    }

    fileprivate func connection(_ id: StateMachine.ConnectionID, emitted event: ConnectionEvent) {
        switch event {
        case .ready(let limit):
            self.event { $0.connected(id, maxConcurrentStreams: Int(clamping: limit), now: Self.now) }
        case .maxConcurrentStreamsChanged(let limit):
            self.event { $0.maxConcurrentStreamsChanged(id, to: Int(clamping: limit), now: Self.now) }
        case .goAwayReceived(let lastStreamID, let errorCode):
            self.event { $0.goAwayReceived(id, lastStreamID: Int(lastStreamID), isGraceful: errorCode == .noError, now: Self.now) }
        case .streamOpened(let open):
            self.event { $0.streamOpened(on: id, open: open) }
        case .streamClosed(let open):
            self.event { $0.streamClosed(on: id, open: open) }
        case .closed(let error):
            // A channel that never became active (its connect failed: refused, unknown host) is reported by
            // connect(_:), with the socket's error; reported here it would be a bare "connection closed".
            guard state.withLock({ $0.connections[id] != nil }) else { return }
            self.event { machine in machine.connectionClosed(id, error: error, now: Self.now) }
            state.withLock { _ = $0.connections.removeValue(forKey: id) }
        }
    }

    // MARK: The shell

    private func event(_ body: (inout StateMachine) -> StateMachine.Actions) {
        let effects = state.withLock { state in apply(body(&state.machine), to: &state) }
        perform(effects)
    }

    /// Turns the machine's decisions into effects, taking the waiters and connections they name out of the state.
    private func apply(_ actions: StateMachine.Actions, to state: inout State) -> Effects {
        var effects = Effects()
        guard !actions.isEmpty else { return effects }
        for (request, error) in actions.fail {
            guard let waiter = state.waiters.removeValue(forKey: request) else { continue }
            if let deadline = waiter.deadline { effects.cancelDeadlines.append(deadline) }
            effects.resume.append((waiter.continuation, .failure(error)))
        }
        for (request, id) in actions.dispatch {
            guard let waiter = state.waiters.removeValue(forKey: request) else { continue }
            if let deadline = waiter.deadline { effects.cancelDeadlines.append(deadline) }
            guard let connection = state.connections[id] else {
                // Not possible: a connection is known from its start, before it can be ready.
                effects.resume.append((waiter.continuation, .failure(HTTP2Error.notProcessed(streamID: 0, detail: "\(id) is gone"))))
                continue
            }
            effects.resume.append((waiter.continuation, .success(Lease(connection: connection, id: id))))
        }
        effects.connect = actions.connect
        effects.close = actions.close.compactMap { state.connections[$0] }
        if let wakeAt = actions.wakeAt, state.timer?.at != wakeAt {
            state.timer?.task.cancel()
            effects.arm = wakeAt
        }
        if actions.shutDownComplete {
            state.isShutDown = true
            effects.shutDown = state.shutDownWaiters
            state.shutDownWaiters = []
        }
        return effects
    }

    private func perform(_ effects: Effects) {
        for deadline in effects.cancelDeadlines { deadline.cancel() }
        for (continuation, result) in effects.resume { continuation.resume(with: result) }
        for connection in effects.close { connection.beginGracefulShutdown() }
        for id in effects.connect { connect(id) }
        if let at = effects.arm {
            let deadline = NIODeadline.uptimeNanoseconds(UInt64(max(0, TimeAmount(at).nanoseconds)))
            let task = eventLoopGroup.any().scheduleTask(deadline: deadline) { [self] in
                state.withLock { state in if state.timer?.at == at { state.timer = nil } }
                event { $0.timerFired(now: Self.now) }
            }
            state.withLock { $0.timer = (at, task) }
        }
        for continuation in effects.shutDown { continuation.resume() }
    }
}

/// Request IDs, unique in the process (so a pool needs no counter of its own under its lock).
private enum RequestIDs {
    private static let counter = Atomic<Int>(0)

    static func next() -> OriginPool.StateMachine.RequestID {
        OriginPool.StateMachine.RequestID(value: counter.wrappingAdd(1, ordering: .relaxed).newValue)
    }
}

/// Hears one pooled connection's events for its pool.
private final class PooledConnection: ConnectionDelegate, HTTP1ClientDelegate {
    weak let pool: OriginPool?
    let id: OriginPool.StateMachine.ConnectionID
    let connectDeadline: NIODeadline

    init(pool: OriginPool, id: OriginPool.StateMachine.ConnectionID, connectDeadline: NIODeadline) {
        self.pool = pool
        self.id = id
        self.connectDeadline = connectDeadline
    }

    var observesStreams: Bool { true }

    func connectionStarted(_ connection: ConnectionReference) -> Bool {
        pool?.connectionStarted(.http2(connection), id: id, connectDeadline: connectDeadline)
        return pool != nil
    }

    func connection(_ connection: ConnectionReference, emitted event: ConnectionEvent) {
        pool?.connection(id, emitted: event)
    }

    func http1Started(_ connection: HTTP1ClientConnection) -> Bool {
        pool?.connectionStarted(.http1(connection), id: id, connectDeadline: connectDeadline)
        return pool != nil
    }

    func http1Connection(_ connection: HTTP1ClientConnection, emitted event: ConnectionEvent) {
        pool?.connection(id, emitted: event)
    }
}
