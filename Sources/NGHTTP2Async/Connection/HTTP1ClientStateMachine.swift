/// The lifecycle of one HTTP/1.1 client connection (RFC 9112 §9) as a value without I/O: a request starting, its
/// body's end, the response's head, bytes and end, the application's reads, a deadline, a close go in; what
/// ``HTTP1ClientHandler`` must do comes out. Tested without sockets (`HTTP1ClientStateMachineTests`).
///
/// ```
///  idle ──(request)──▶ active ──(request and response ended, both keep-alive)──▶ idle
///   │                     └──(either says close, the response ended first, a timeout, a cancel)──▶ closed
///   └──(idle timeout, shutdown)──▶ closed
/// ```
///
/// One request at a time (no pipelining: a pool keeps more connections instead). Reading stops while the response
/// body's reader holds ``Limits/bodyBuffer`` bytes or more: the server's TCP window then fills, the HTTP/1.1 form of
/// the stream window.
struct HTTP1ClientStateMachine {
    typealias Instant = ConnectionStateMachine.Instant

    struct Limits: Equatable, Sendable {
        /// No request in progress: then the connection is closed. `nil`: never.
        var idle: Duration?
        /// Response body bytes the reader may hold before the socket is no longer read.
        var bodyBuffer: Int = 1 << 20
    }

    /// One request and its response.
    struct Exchange: Equatable {
        /// Counts the connection's requests from 1 (the response's ``ClientSession/Response/streamID``).
        var id: Int32
        var requestEnded = false
        var headReceived = false
        var responseEnded = false
        /// Whether the connection may carry another request after this one (the request's and the response's say).
        var keepAlive: Bool
        /// When the whole exchange must be over.
        var deadline: Instant?
        /// How long the response may go without a byte, and when one last came.
        var readTimeout: Duration?
        var lastReceived: Instant
    }

    enum State: Equatable {
        case idle(since: Instant)
        case active(Exchange)
        case closed
    }

    /// What to do once part of an exchange ended.
    enum Step: Equatable {
        /// The exchange goes on.
        case none
        /// It is over and the connection takes the next request.
        case idle
        /// It is over (or cannot go on) and the connection closes.
        case close
    }

    enum DeadlineAction: Equatable {
        case none
        case closeIdle
        case requestTimeout
        case readTimeout(Duration)
    }

    private(set) var state: State
    let limits: Limits
    private var lastID: Int32 = 0
    /// Body bytes the reader holds (received and not yet taken by the application).
    private(set) var buffered = 0
    /// A graceful close was asked for: the exchange in flight finishes, then the connection closes.
    private(set) var isClosing = false

    init(limits: Limits, now: Instant) {
        self.limits = limits
        self.state = .idle(since: now)
    }

    // MARK: Requests

    /// Whether a new request can start now.
    var acceptsRequests: Bool {
        if case .idle = state { return !isClosing }
        return false
    }

    /// A request starts; returns its exchange number, or `nil` when the connection cannot take it (busy, closing,
    /// closed): it was not sent, so it may go elsewhere.
    mutating func requestStarted(keepAlive: Bool, deadline: Instant?, readTimeout: Duration?, now: Instant) -> Int32? {
        guard acceptsRequests else { return nil }
        lastID += 1
        buffered = 0
        state = .active(Exchange(id: lastID, keepAlive: keepAlive, deadline: deadline, readTimeout: readTimeout, lastReceived: now))
        return lastID
    }

    /// The request's body (if any) was written to its end.
    mutating func requestEnded(now: Instant) -> Step {
        guard case .active(var exchange) = state else { return .none }
        exchange.requestEnded = true
        state = .active(exchange)
        return stepIfDone(exchange, now: now)
    }

    // MARK: Responses

    /// The final response head arrived; `keepAlive` is what it says (its version and `Connection` field).
    mutating func responseHeadReceived(keepAlive: Bool, now: Instant) {
        guard case .active(var exchange) = state else { return }
        exchange.headReceived = true
        exchange.keepAlive = exchange.keepAlive && keepAlive
        exchange.lastReceived = now
        state = .active(exchange)
    }

    /// Bytes of the response arrived (an informational head, body bytes): the read timeout starts again.
    mutating func bytesReceived(_ count: Int = 0, now: Instant) {
        guard case .active(var exchange) = state else { return }
        exchange.lastReceived = now
        state = .active(exchange)
        buffered += count
    }

    /// The application took `count` bytes out of the reader; returns whether reading may resume.
    mutating func bodyTaken(_ count: Int) -> Bool {
        let wasFull = buffered >= limits.bodyBuffer
        buffered = max(0, buffered - count)
        return wasFull && buffered < limits.bodyBuffer
    }

    /// The response ended. One that ends before the request's body did leaves the connection unusable (the server
    /// answered without reading it all): it closes.
    mutating func responseEnded(now: Instant) -> Step {
        guard case .active(var exchange) = state else { return .none }
        exchange.responseEnded = true
        if !exchange.requestEnded {
            state = .closed
            return .close
        }
        state = .active(exchange)
        return stepIfDone(exchange, now: now)
    }

    private mutating func stepIfDone(_ exchange: Exchange, now: Instant) -> Step {
        guard exchange.requestEnded, exchange.responseEnded else { return .none }
        buffered = 0
        guard exchange.keepAlive, !isClosing else {
            state = .closed
            return .close
        }
        state = .idle(since: now)
        return .idle
    }

    /// Whether the socket may be read: not while the reader holds a full buffer.
    var shouldRead: Bool {
        switch state {
        case .closed: false
        case .idle: true
        case .active: buffered < limits.bodyBuffer
        }
    }

    // MARK: Lifecycle

    /// The exchange in flight finishes, then the connection closes; returns whether it can close now.
    mutating func beginClosing() -> Bool {
        isClosing = true
        if case .active = state { return false }
        state = .closed
        return true
    }

    /// The connection is gone (closed by either side, or failed).
    mutating func closed() {
        state = .closed
    }

    var nextDeadline: Instant? {
        switch state {
        case .closed:
            return nil
        case .idle(let since):
            return limits.idle.map { since + $0 }
        case .active(let exchange):
            let read = exchange.readTimeout.map { exchange.lastReceived + $0 }
            switch (exchange.deadline, read) {
            case (let a?, let b?): return min(a, b)
            case (let a?, nil): return a
            case (nil, let b?): return b
            case (nil, nil): return nil
            }
        }
    }

    /// A deadline passed (the timer fired at ``nextDeadline`` or later); on anything but `.none` the connection
    /// closes (HTTP/1.1 cannot end one exchange otherwise).
    mutating func deadlineReached(now: Instant) -> DeadlineAction {
        switch state {
        case .closed:
            return .none
        case .idle(let since):
            guard let idle = limits.idle, now >= since + idle else { return .none }
            state = .closed
            return .closeIdle
        case .active(let exchange):
            if let deadline = exchange.deadline, now >= deadline {
                state = .closed
                return .requestTimeout
            }
            if let read = exchange.readTimeout, now >= exchange.lastReceived + read {
                state = .closed
                return .readTimeout(read)
            }
            return .none
        }
    }
}
