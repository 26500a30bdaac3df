/// The lifecycle of one HTTP/1.1 server connection (RFC 9112 §9) as a value without I/O: events go in (a request
/// head, body bytes, the request's end, the response's start and end, the application's reads, a parse error, a
/// deadline, a graceful shutdown) and what ``HTTP1ServerHandler`` must do comes out. Tested without sockets
/// (`HTTP1ConnectionStateMachineTests`).
///
/// ```
///  idle ──(head)──▶ active ──(request and response ended, keep-alive)──▶ idle
///   │                  │  └──(response ended first)──▶ draining the request body ──(its end)──▶ idle
///   └──(timeout, shutdown, parse error)──┴──(Connection: close, shutdown, drain too long)──▶ closed
/// ```
///
/// One request is answered at a time; requests pipelined behind it wait (the handler queues what the decoder already
/// parsed, and the socket is not read while a request waits for its response). Reading also stops while the request
/// body's reader holds ``Limits/bodyBuffer`` bytes or more: the client's TCP window then fills and it waits, the
/// HTTP/1.1 form of the stream window (a reader that is not read holds bounded memory).
struct HTTP1ConnectionStateMachine {
    typealias Instant = ConnectionStateMachine.Instant

    /// The connection's timeouts and limits.
    struct Limits: Equatable, Sendable {
        /// No request in progress (between requests, and before the first): then the connection is closed.
        var idle: Duration?
        /// A request head begun (bytes arrived) and not complete: then 408 and close.
        var header: Duration?
        /// How long a graceful shutdown lets the request in flight finish.
        var gracePeriod: Duration = .seconds(10)
        /// Request body bytes the reader may hold before the socket is no longer read.
        var bodyBuffer: Int = 1 << 20
        /// Request body bytes read and dropped after the response ended, before the connection is closed instead.
        var drain: Int = 1 << 20
        /// The most requests one connection carries: the last one's response says `Connection: close` and the
        /// connection closes after it (RFC 9112 §9.6), the HTTP/1.1 form of HTTP/2's GOAWAY after N requests.
        /// `nil`: no limit.
        var maxRequests: Int? = nil
        /// The age at which the connection shuts down gracefully, as ``beginGracefulShutdown(now:gracePeriod:)``
        /// (the server's ``ServerSession/Configuration/maxConnectionAge``). `nil`: no limit.
        var maxAge: Duration? = nil
    }

    /// One request and its response.
    struct Exchange: Equatable {
        /// Counts the connection's requests from 1 (the request's ``ServerSession/Request/streamID``).
        var id: Int32
        var requestEnded = false
        var responseStarted = false
        var responseEnded = false
        /// Whether the connection may carry another request after this one.
        var keepAlive: Bool
        /// The response ended first: the rest of the request body is read and dropped.
        var draining = false
        /// The application no longer reads the body: what arrives is dropped.
        var discardsBody = false
        var drained = 0
    }

    enum State: Equatable {
        /// Waiting for a request head, since `since`; `receivingSince` once bytes of a head arrived.
        case idle(since: Instant, receivingSince: Instant?)
        case active(Exchange)
        case closed
    }

    private(set) var state: State
    let limits: Limits
    private var lastID: Int32 = 0
    /// Body bytes the reader holds (received and not yet taken by the application).
    private(set) var buffered = 0
    /// Set by a graceful shutdown: the request in flight must finish by then.
    private(set) var shutdownDeadline: Instant?
    /// When ``Limits/maxAge`` is reached; `nil` once it was (or without a limit).
    private var ageDeadline: Instant?

    init(limits: Limits, now: Instant) {
        self.limits = limits
        self.state = .idle(since: now, receivingSince: nil)
        self.ageDeadline = limits.maxAge.map { now + $0 }
    }

    // MARK: Reading

    /// Whether the socket may be read now: not while a request waits for its response (pipelining: the next waits),
    /// nor while the reader holds a full buffer.
    var shouldRead: Bool {
        switch state {
        case .idle: return true
        case .closed: return false
        case .active(let exchange):
            if exchange.draining || exchange.discardsBody { return true }
            if exchange.requestEnded { return false }
            return buffered < limits.bodyBuffer
        }
    }

    /// Whether parts the decoder delivers now belong to a later request (they wait until this one is answered).
    var queuesParts: Bool {
        if case .active(let exchange) = state { return exchange.requestEnded }
        return false
    }

    /// Bytes arrived while no head did (a read burst ended without one): the header deadline starts.
    mutating func bytesArrived(now: Instant) {
        if case .idle(let since, nil) = state { state = .idle(since: since, receivingSince: now) }
    }

    enum OnHead: Equatable {
        /// Hand the request to the application.
        case start(id: Int32)
        /// The connection is closing: ignore it.
        case ignore
    }

    /// A request head arrived (only when ``queuesParts`` is false). `keepAlive`: what the request allows
    /// (HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`).
    mutating func headReceived(keepAlive: Bool) -> OnHead {
        guard case .idle = state else { return .ignore }
        lastID += 1
        let belowLimit = limits.maxRequests.map { Int(lastID) < $0 } ?? true
        state = .active(Exchange(id: lastID, keepAlive: keepAlive && shutdownDeadline == nil && belowLimit))
        buffered = 0
        return .start(id: lastID)
    }

    enum OnBody: Equatable {
        /// Give it to the request's reader.
        case deliver
        /// Nobody reads it (the response ended, or the application stopped reading).
        case discard
        /// The response ended long ago and the client still sends: close.
        case close
    }

    mutating func bodyReceived(_ count: Int) -> OnBody {
        guard case .active(var exchange) = state, !exchange.requestEnded else { return .discard }
        guard exchange.draining || exchange.discardsBody else {
            buffered += count
            return .deliver
        }
        exchange.drained += count
        let tooMuch = exchange.draining && exchange.drained > limits.drain
        state = .active(exchange)
        if tooMuch {
            state = .closed
            return .close
        }
        return .discard
    }

    /// The application took `count` bytes out of the reader. Returns whether reading may resume.
    mutating func bodyTaken(_ count: Int) -> Bool {
        let wasFull = buffered >= limits.bodyBuffer
        buffered = max(0, buffered - count)
        return wasFull && shouldRead
    }

    /// The application stopped reading the body (`unread`: what the reader still held): the rest is dropped.
    mutating func bodyAbandoned(unread: Int) {
        buffered = max(0, buffered - unread)
        guard case .active(var exchange) = state, !exchange.requestEnded else { return }
        exchange.discardsBody = true
        state = .active(exchange)
    }

    enum OnExchangeStep: Equatable {
        case none
        /// The exchange is over and the connection stays: take the next queued request, or read.
        case next
        /// The exchange is over: close the connection once the response is written.
        case close
    }

    /// The request's end arrived.
    mutating func requestEnded(now: Instant) -> OnExchangeStep {
        guard case .active(var exchange) = state, !exchange.requestEnded else { return .none }
        exchange.requestEnded = true
        exchange.draining = false
        state = .active(exchange)
        return exchange.responseEnded ? finish(exchange, now: now) : .none
    }

    /// The response head is about to be written; `closes`: the response itself ends the connection (it says
    /// `Connection: close`, or its length is known only from the close, on HTTP/1.0). Returns whether the head must
    /// say `Connection: close`.
    mutating func responseStarted(closes: Bool) -> Bool {
        guard case .active(var exchange) = state else { return true }
        exchange.responseStarted = true
        if closes || shutdownDeadline != nil { exchange.keepAlive = false }
        state = .active(exchange)
        return !exchange.keepAlive
    }

    /// The response's end was written.
    mutating func responseEnded(now: Instant) -> OnExchangeStep {
        guard case .active(var exchange) = state, !exchange.responseEnded else { return .none }
        exchange.responseEnded = true
        guard exchange.requestEnded else {
            // The rest of the request must be read to find the next one (RFC 9112 §9.3); a connection that closes
            // anyway does not wait for it.
            guard exchange.keepAlive else {
                state = .closed
                return .close
            }
            exchange.draining = true
            state = .active(exchange)
            return .none
        }
        return finish(exchange, now: now)
    }

    private mutating func finish(_ exchange: Exchange, now: Instant) -> OnExchangeStep {
        guard exchange.keepAlive, shutdownDeadline == nil else {
            state = .closed
            return .close
        }
        state = .idle(since: now, receivingSince: nil)
        buffered = 0
        return .next
    }

    /// Whether the request in flight may still switch protocols (h2c, RFC 7540 §3.2): nothing was answered yet and
    /// the connection is not shutting down.
    var mayUpgrade: Bool {
        guard case .active(let exchange) = state else { return false }
        return !exchange.responseStarted && shutdownDeadline == nil
    }

    /// The connection switched protocols (101 sent): this machine is done.
    mutating func upgraded() {
        state = .closed
    }

    enum OnParseError: Equatable {
        /// Answer 400 (with `Connection: close`), then close.
        case respondAndClose
        /// A response is being written: close without one.
        case close
    }

    /// The client sent something that is not HTTP/1.1 (RFC 9112 §2.2, §3): this connection ends, no other.
    mutating func parseError() -> OnParseError {
        defer { state = .closed }
        if case .active(let exchange) = state, exchange.responseStarted { return .close }
        return .respondAndClose
    }

    // MARK: Shutdown and deadlines

    enum OnShutdown: Equatable {
        case none
        case close
    }

    /// The server closes gracefully: an idle connection closes now; the request in flight finishes (its response
    /// says `Connection: close` if not yet started) within `gracePeriod`.
    mutating func beginGracefulShutdown(now: Instant, gracePeriod: Duration?) -> OnShutdown {
        switch state {
        case .closed:
            return .none
        case .idle:
            state = .closed
            return .close
        case .active(var exchange):
            exchange.keepAlive = false
            state = .active(exchange)
            let deadline = now + (gracePeriod ?? limits.gracePeriod)
            shutdownDeadline = min(shutdownDeadline ?? deadline, deadline)
            return .none
        }
    }

    var nextDeadline: Instant? {
        switch state {
        case .closed: return nil
        case .idle(let since, let receivingSince):
            let idle = limits.idle.map { since + $0 }
            let header = receivingSince.flatMap { start in limits.header.map { start + $0 } }
            return [idle, header, shutdownDeadline, ageDeadline].compactMap { $0 }.min()
        case .active:
            return [shutdownDeadline, ageDeadline].compactMap { $0 }.min()
        }
    }

    enum OnDeadline: Equatable {
        case none
        /// No request came: close.
        case closeIdle
        /// A request head stayed incomplete: 408, then close.
        case requestTimeout
        /// The grace period of a shutdown ran out: close.
        case gracePeriodOver
        /// The connection reached its maximum age with no request in flight: close.
        case closeAged
    }

    mutating func deadlineReached(now: Instant) -> OnDeadline {
        if let ageDeadline, now >= ageDeadline {
            // Once: from here it is a graceful shutdown (the request in flight finishes, with `Connection: close` if
            // its response has not started, within the grace period).
            self.ageDeadline = nil
            if beginGracefulShutdown(now: now, gracePeriod: nil) == .close { return .closeAged }
        }
        if let shutdownDeadline, now >= shutdownDeadline, state != .closed {
            state = .closed
            return .gracePeriodOver
        }
        guard case .idle(let since, let receivingSince) = state else { return .none }
        if let start = receivingSince, let header = limits.header, now >= start + header {
            state = .closed
            return .requestTimeout
        }
        if let idle = limits.idle, now >= since + idle {
            state = .closed
            return receivingSince == nil ? .closeIdle : .requestTimeout
        }
        return .none
    }

    /// The channel closed.
    mutating func closed() {
        state = .closed
    }
}
