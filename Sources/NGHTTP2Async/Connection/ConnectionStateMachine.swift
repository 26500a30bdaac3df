import NGHTTP2

/// The lifecycle of one HTTP/2 connection as a value without I/O: events go in (the connection started, a frame, a stream opened or closed, a PING ACK, a deadline passed), and what the channel
/// handler must do comes out. It owns the connection's state, its PING bookkeeping, its open-stream count and every
/// deadline (preface, header block, idle, age, keep-alive, graceful shutdown), so each transition is tested without
/// sockets (`ConnectionStateMachineTests`).
///
/// ```
///  starting ──(the peer's preface)──▶ active ──(GOAWAY sent or received)──▶ quiescing
///      │                                  │                                      │
///      └──(error, timeout)────────────────┴──────────────▶ closing ◀──(session done)┘
///                                                              │
///                                                 (channel inactive) ──▶ closed
/// ```
///
/// Deadlines are instants; the handler keeps one timer at ``nextDeadline`` and calls ``deadlineReached(now:)``
/// when it fires. A deadline that moved later leaves the timer where it was: it fires early, finds nothing due and
/// is set again (one timer per period, not one per request).
struct ConnectionStateMachine {
    /// A point in time: how long after an arbitrary origin (the handler passes its event loop's clock, which a test's
    /// embedded loop advances by hand).
    typealias Instant = Duration

    /// The connection's timeouts and limits (all optional: `nil` turns one off).
    struct Timeouts: Equatable, Sendable {
        /// Until the peer's first frame (its connection preface, RFC 9113 §3.4), counted from the start.
        var preface: Duration?
        /// A header block (HEADERS + CONTINUATION, RFC 9113 §4.3) begun and not ended.
        var headerBlock: Duration?
        /// No stream open: GOAWAY NO_ERROR, then close.
        var idle: Duration?
        /// Then a graceful shutdown (GOAWAY notice, PING, final GOAWAY); streams in flight finish within
        /// ``gracePeriod``.
        var maxAge: Duration?
        /// How long streams may still run after a graceful shutdown that the connection started itself (its age).
        var gracePeriod: Duration?
        /// After this many peer-initiated streams, a GOAWAY naming the last one; they finish, later ones are refused.
        var maxStreams: Int?
        /// A PING after this long without an ACK or a frame from the peer.
        var keepAliveInterval: Duration?
        /// How long a keep-alive PING may go unanswered before the connection is given up.
        var keepAliveTimeout: Duration = .seconds(20)
        /// How long a graceful shutdown waits for the ACK of its PING before the final GOAWAY.
        var shutdownPingTimeout: Duration = .seconds(1)
        /// How long a finished session waits for its last bytes to reach the socket before the channel is closed
        /// anyway.
        var closeLinger: Duration = .seconds(5)
        /// How many peer-caused stream errors and invalid frames the connection takes (RFC 9113 §10.5): `nil`, no
        /// limit.
        var glitches: GlitchLimit?
        /// How long the rest of a request is read and dropped after its response ended, before RST_STREAM NO_ERROR
        /// asks the client to stop (RFC 9113 §8.1).
        var drain: Duration = .seconds(1)

        init(
            preface: Duration? = nil,
            headerBlock: Duration? = nil,
            idle: Duration? = nil,
            maxAge: Duration? = nil,
            maxStreams: Int? = nil,
            gracePeriod: Duration? = nil,
            keepAliveInterval: Duration? = nil,
            keepAliveTimeout: Duration = .seconds(20),
            glitches: GlitchLimit? = nil
        ) {
            self.glitches = glitches
            self.gracePeriod = gracePeriod
            self.preface = preface
            self.headerBlock = headerBlock
            self.idle = idle
            self.maxAge = maxAge
            self.maxStreams = maxStreams
            self.keepAliveInterval = keepAliveInterval
            self.keepAliveTimeout = keepAliveTimeout
        }
    }

    enum State: Equatable {
        /// The connection has not started (its channel is not active, or TLS is still negotiating).
        case initial
        /// This side's SETTINGS are out; the peer's connection preface has not arrived yet. Streams may open.
        case starting
        /// The peer's preface arrived; streams may open.
        case active
        /// A GOAWAY was sent or received: no new streams; open ones finish.
        case quiescing(Quiescing)
        /// The channel is closing (after what was written reaches the socket).
        case closing
        /// The channel is closed.
        case closed
    }

    /// What a quiescing connection has said and heard.
    struct Quiescing: Equatable {
        /// The GOAWAY this side sent: a shutdown notice (more to follow) or the final one.
        var sent: GoAwaySent?
        /// The peer's GOAWAY.
        var received: GoAway?
    }

    enum GoAwaySent: Equatable {
        /// RFC 9113 §6.8's first GOAWAY of a graceful shutdown (last stream ID 2^31-1), with the PING that times it.
        case notice(pingData: UInt64)
        case final
    }

    struct GoAway: Equatable {
        var lastStreamID: Int32
        var errorCode: ErrorCode
    }

    /// Why a deadline closes the connection.
    enum Expiry: Equatable {
        /// The peer sent no connection preface in time.
        case preface
        /// A header block stayed incomplete.
        case headerBlock
        /// No stream was open for the idle timeout.
        case idle
        /// A keep-alive PING went unanswered.
        case keepAlive
        /// A graceful shutdown's grace period ran out with streams still open.
        case gracePeriod
    }

    private(set) var state: State
    let role: Session.Role
    let timeouts: Timeouts
    /// Streams open now (counted by the handler as it tracks them).
    private(set) var openStreams = 0
    /// Peer-initiated streams seen so far (server: requests).
    private(set) var peerStreams = 0
    /// The highest peer-initiated stream whose head was complete (what a GOAWAY for a stalled header block names).
    private(set) var lastPeerStreamID: Int32 = 0
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS, once its first SETTINGS arrived.
    private(set) var peerMaxConcurrentStreams: UInt32?
    /// Why the connection ended (or is ending); new streams fail with it.
    private(set) var endedBecause: (any Error)?
    private var deadlines = Deadlines()
    private var nextPingData: UInt64 = 1
    /// PINGs sent for the application, by opaque data, with when they went out.
    private var userPings: [UInt64: Instant] = [:]
    /// The keep-alive PING in flight.
    private var keepAlivePing: UInt64?
    /// When the peer was last heard from (with keep-alive on): a keep-alive deadline before a whole interval from
    /// then is moved, not acted on.
    private var lastHeard: Instant?
    /// The stream whose header block is in progress.
    private var headerBlockStream: Int32?
    /// Glitches the peer may still cause now (a token bucket, full until the first one).
    private var glitchTokens: Int?
    /// When the bucket last earned a token.
    private var glitchesCountedSince: Instant = .zero
    /// Streams whose response ended before their request, with the time their drain ends (earliest first: every
    /// drain lasts the same).
    private var draining: [(streamID: Int32, deadline: Instant)] = []

    init(role: Session.Role, timeouts: Timeouts) {
        self.role = role
        self.timeouts = timeouts
        self.state = .initial
    }

    // MARK: Starting

    /// The connection starts (its channel is active, and TLS, if any, has negotiated HTTP/2): every deadline that
    /// counts from the start begins. Returns `false` when it had started already.
    mutating func start(now: Instant) -> Bool {
        guard case .initial = state else { return false }
        state = .starting
        deadlines.preface = timeouts.preface.map { now + $0 }
        deadlines.idle = timeouts.idle.map { now + $0 }
        deadlines.age = timeouts.maxAge.map { now + $0 }
        deadlines.keepAlivePing = timeouts.keepAliveInterval.map { now + $0 }
        return true
    }

    /// Whether new streams may open (this side's requests on a client).
    var acceptsNewStreams: Bool {
        switch state {
        case .initial, .starting, .active: true
        case .quiescing, .closing, .closed: false
        }
    }

    /// The peer's GOAWAY, if one arrived.
    var goAwayReceived: GoAway? {
        if case .quiescing(let quiescing) = state { return quiescing.received }
        return nil
    }

    // MARK: Frames

    /// A whole frame arrived: the peer's preface is complete (RFC 9113 §3.4), the peer is alive, and a header block
    /// in progress has ended (no other frame may come between its parts, RFC 9113 §6.10).
    mutating func frameReceived() {
        if case .starting = state {
            state = .active
            deadlines.preface = nil
        }
        if headerBlockStream != nil {
            headerBlockStream = nil
            deadlines.headerBlock = nil
        }
    }

    /// Bytes from the peer arrived (once per read burst, and only with keep-alive on: it reads the clock).
    mutating func peerActive(now: Instant) {
        lastHeard = now
    }

    enum OnSettings: Equatable {
        /// The peer's first SETTINGS: the connection knows its limits.
        case ready(maxConcurrentStreams: UInt32)
        /// A later SETTINGS changed SETTINGS_MAX_CONCURRENT_STREAMS.
        case maxConcurrentStreamsChanged(UInt32)
        case none
    }

    /// The peer's SETTINGS arrived; `maxConcurrentStreams` is its limit now (2^32-1 when it never set one).
    mutating func settingsReceived(maxConcurrentStreams: UInt32) -> OnSettings {
        defer { peerMaxConcurrentStreams = maxConcurrentStreams }
        guard let previous = peerMaxConcurrentStreams else { return .ready(maxConcurrentStreams: maxConcurrentStreams) }
        return previous == maxConcurrentStreams ? .none : .maxConcurrentStreamsChanged(maxConcurrentStreams)
    }

    /// A header block began on `streamID` (its HEADERS arrived, its END_HEADERS maybe not yet).
    mutating func headerBlockStarted(streamID: Int32, now: Instant) {
        guard let limit = timeouts.headerBlock else { return }
        headerBlockStream = streamID
        deadlines.headerBlock = now + limit
    }

    /// The stream of the header block in progress was reset or rejected: no frame will end its block.
    mutating func headerBlockAbandoned(streamID: Int32) {
        guard headerBlockStream == streamID else { return }
        headerBlockStream = nil
        deadlines.headerBlock = nil
    }

    /// The peer's GOAWAY arrived (RFC 9113 §6.8): no new streams; those above `lastStreamID` were not processed.
    mutating func goAwayReceived(lastStreamID: Int32, errorCode: ErrorCode) {
        let goAway = GoAway(lastStreamID: lastStreamID, errorCode: errorCode)
        switch state {
        case .initial, .starting, .active:
            state = .quiescing(Quiescing(sent: nil, received: goAway))
        case .quiescing(var quiescing):
            quiescing.received = goAway
            state = .quiescing(quiescing)
        case .closing, .closed:
            break
        }
    }

    // MARK: Streams

    enum OnStreamOpened: Equatable {
        case none
        /// The peer reached the connection's stream limit with this stream: send GOAWAY naming it (graceful).
        case sendGoAway(lastStreamID: Int32)
    }

    /// A stream opened: `byPeer` for the peer's (a request, on a server), with its ID.
    mutating func streamOpened(_ streamID: Int32, byPeer: Bool) -> OnStreamOpened {
        openStreams += 1
        deadlines.idle = nil
        guard byPeer else { return .none }
        peerStreams += 1
        lastPeerStreamID = max(lastPeerStreamID, streamID)
        guard let limit = timeouts.maxStreams, peerStreams >= limit else { return .none }
        switch state {
        case .initial, .starting, .active:
            state = .quiescing(Quiescing(sent: .final, received: nil))
        case .quiescing(var quiescing):
            guard quiescing.sent != .final else { return .none }
            quiescing.sent = .final
            state = .quiescing(quiescing)
        case .closing, .closed:
            return .none
        }
        deadlines.shutdownPing = nil
        return .sendGoAway(lastStreamID: streamID)
    }

    /// A stream closed. With none left open, the idle deadline starts.
    mutating func streamClosed(now: @autoclosure () -> Instant) {
        openStreams -= 1
        if openStreams == 0, let idle = timeouts.idle, acceptsNewStreams { deadlines.idle = now() + idle }
    }

    // MARK: PING

    /// A PING for the application: returns its opaque data, or `nil` when the connection is closing.
    mutating func userPingSent(now: Instant) -> UInt64? {
        switch state {
        case .closing, .closed: return nil
        default: break
        }
        let data = takePingData()
        userPings[data] = now
        return data
    }

    /// The application's PINGs that will never be answered (the connection ended): their data.
    mutating func takeUnansweredPings() -> [UInt64] {
        defer { userPings.removeAll() }
        return Array(userPings.keys)
    }

    enum OnPingAck: Equatable {
        case none
        /// The application's PING came back after `rtt`.
        case userPing(rtt: Duration)
        /// The shutdown PING came back: every stream the peer opened before it has arrived; send the final GOAWAY.
        case sendFinalGoAway
    }

    /// A PING ACK arrived with `data`.
    mutating func pingAcknowledged(_ data: UInt64, now: Instant) -> OnPingAck {
        if let sent = userPings.removeValue(forKey: data) { return .userPing(rtt: now - sent) }
        if data == keepAlivePing {
            keepAlivePing = nil
            deadlines.keepAliveAck = nil
            deadlines.keepAlivePing = timeouts.keepAliveInterval.map { now + $0 }
            return .none
        }
        if case .quiescing(var quiescing) = state, quiescing.sent == .notice(pingData: data) {
            quiescing.sent = .final
            state = .quiescing(quiescing)
            deadlines.shutdownPing = nil
            return .sendFinalGoAway
        }
        return .none
    }

    // MARK: Shutdown

    enum OnGracefulShutdown: Equatable {
        case none
        /// Send the GOAWAY notice and a PING with this data (RFC 9113 §6.8).
        case sendNoticeAndPing(UInt64)
        /// Send the final GOAWAY now (a client has no notice to give: it names the last stream the server opened).
        case sendFinalGoAway
    }

    /// The application (or the connection's age) asks for a graceful shutdown; after `gracePeriod` what is still
    /// open is cut off.
    mutating func beginGracefulShutdown(now: Instant, gracePeriod: Duration?) -> OnGracefulShutdown {
        if let gracePeriod, deadlines.grace == nil, !isClosingOrClosed { deadlines.grace = now + gracePeriod }
        switch state {
        case .initial, .starting, .active:
            guard role == .server else {
                state = .quiescing(Quiescing(sent: .final, received: nil))
                return .sendFinalGoAway
            }
            let data = takePingData()
            state = .quiescing(Quiescing(sent: .notice(pingData: data), received: nil))
            deadlines.shutdownPing = now + timeouts.shutdownPingTimeout
            return .sendNoticeAndPing(data)
        case .quiescing(var quiescing):
            guard quiescing.sent == nil else { return .none }
            // The peer went away first: only our final GOAWAY is left to say.
            quiescing.sent = .final
            state = .quiescing(quiescing)
            return .sendFinalGoAway
        case .closing, .closed:
            return .none
        }
    }

    /// The application ends the connection now (GOAWAY with an error code; open streams fail with `error`).
    /// Returns whether there was anything to end.
    mutating func terminate(because error: any Error) -> Bool {
        if isClosingOrClosed { return false }
        var quiescing = Quiescing()
        if case .quiescing(let current) = state { quiescing = current }
        quiescing.sent = .final
        state = .quiescing(quiescing)
        endedBecause = endedBecause ?? error
        return true
    }

    /// libnghttp2 wants neither to read nor to write: the session is over. Returns whether to close the channel now
    /// (once; after what was written reaches the socket).
    mutating func sessionFinished(now: Instant) -> Bool {
        guard !isClosingOrClosed else { return false }
        state = .closing
        deadlines = Deadlines()
        // A peer that stops reading must not hold the closing channel open forever.
        deadlines.grace = now + timeouts.closeLinger
        return true
    }

    /// A fatal protocol error (or a deadline that closes): returns whether this side should still send its GOAWAY
    /// and close (the first time), or only let the close in progress finish.
    mutating func connectionFailed(_ error: any Error) -> Bool {
        guard !isClosingOrClosed else { return false }
        state = .closing
        deadlines = Deadlines()
        endedBecause = endedBecause ?? error
        return true
    }

    /// The channel reported an error: it closes; everything open fails with `error`.
    mutating func channelFailed(_ error: any Error) {
        endedBecause = endedBecause ?? error
        if !isClosingOrClosed { state = .closing }
        deadlines = Deadlines()
    }

    /// The channel went inactive. Returns whether this is news (the first time): what waits on it then fails.
    mutating func channelClosed(because error: @autoclosure () -> any Error) -> Bool {
        if case .closed = state { return false }
        state = .closed
        deadlines = Deadlines()
        endedBecause = endedBecause ?? error()
        return true
    }

    /// Records why the connection ends, unless a reason is known already (the first one wins).
    mutating func ended(because error: any Error) {
        endedBecause = endedBecause ?? error
    }

    /// Whether the channel is closing or closed.
    var isClosingOrClosed: Bool {
        switch state {
        case .closing, .closed: true
        default: false
        }
    }

    // MARK: Deadlines

    /// The peer caused a stream error or sent an invalid frame (a "glitch": a malformed request, a frame on a closed
    /// stream, a zero WINDOW_UPDATE, …). Returns `true` when that exceeds ``Timeouts/glitches``: the connection is
    /// to end with GOAWAY ENHANCE_YOUR_CALM. Resetting streams costs the peer nothing and this side the work each one
    /// started (CVE-2025-8671, "MadeYouReset"); libnghttp2 1.52 has no such limit.
    mutating func peerGlitched(now: Instant) -> Bool {
        guard let limit = timeouts.glitches else { return false }
        var tokens = glitchTokens ?? limit.burst
        if glitchTokens == nil { glitchesCountedSince = now }
        let perToken = Duration.seconds(1) / max(1, limit.perSecond)
        let earned = Int((now - glitchesCountedSince) / perToken)
        if earned > 0 {
            tokens = min(limit.burst, tokens + earned)
            glitchesCountedSince = tokens == limit.burst ? now : glitchesCountedSince + perToken * earned
        }
        guard tokens > 0 else {
            glitchTokens = 0
            return true
        }
        glitchTokens = tokens - 1
        return false
    }

    /// A stream's response ended before its request: the rest of the request drains until ``Timeouts/drain`` has
    /// passed, when ``OnDeadline/stopDraining(_:)`` asks for RST_STREAM NO_ERROR.
    mutating func drainStarted(_ streamID: Int32, now: Instant) {
        guard !isClosingOrClosed else { return }
        draining.append((streamID, now + timeouts.drain))
        deadlines.drain = draining.first?.deadline
    }

    /// The stream stopped draining: the request ended, the stream closed, or it was reset.
    mutating func drainEnded(_ streamID: Int32) {
        guard let index = draining.firstIndex(where: { $0.streamID == streamID }) else { return }
        draining.remove(at: index)
        deadlines.drain = draining.first?.deadline
    }

    /// The earliest deadline, if any: when the handler's timer should fire.
    var nextDeadline: Instant? { deadlines.earliest }

    enum OnDeadline: Equatable {
        /// Nothing (more) is due.
        case none
        /// Send a keep-alive PING with this data.
        case sendPing(UInt64)
        /// Close the connection: GOAWAY with `errorCode` naming `lastStreamID` (`nil`: the last one processed), then
        /// close. Open streams fail because of `expiry`.
        case close(Expiry, errorCode: ErrorCode, lastStreamID: Int32?)
        /// The connection reached its maximum age: shut down gracefully (GOAWAY notice and this PING).
        case sendNoticeAndPing(UInt64)
        /// The shutdown PING went unanswered: send the final GOAWAY anyway.
        case sendFinalGoAway
        /// A stream drained for ``Timeouts/drain``: reset it with NO_ERROR (RFC 9113 §8.1).
        case stopDraining(Int32)
    }

    /// Acts on the earliest deadline at or before `now`. Call it until it returns ``OnDeadline/none``.
    mutating func deadlineReached(now: Instant) -> OnDeadline {
        if let due = deadlines.preface, due <= now {
            deadlines.preface = nil
            return closeBecause(.preface, errorCode: .noError, lastStreamID: nil)
        }
        if let due = deadlines.headerBlock, due <= now {
            deadlines.headerBlock = nil
            // The stalled block cannot be skipped (its HPACK state is half-decoded), so the connection ends; its
            // stream was never processed, and the GOAWAY says so (the client may retry it elsewhere).
            return closeBecause(.headerBlock, errorCode: .noError, lastStreamID: lastPeerStreamID)
        }
        if let due = deadlines.grace, due <= now {
            deadlines.grace = nil
            return closeBecause(.gracePeriod, errorCode: .noError, lastStreamID: nil)
        }
        if let due = deadlines.keepAliveAck, due <= now {
            deadlines.keepAliveAck = nil
            return closeBecause(.keepAlive, errorCode: .noError, lastStreamID: nil)
        }
        if let due = deadlines.idle, due <= now {
            deadlines.idle = nil
            if openStreams == 0, acceptsNewStreams { return closeBecause(.idle, errorCode: .noError, lastStreamID: nil) }
        }
        if let due = deadlines.shutdownPing, due <= now {
            deadlines.shutdownPing = nil
            if case .quiescing(var quiescing) = state, case .notice = quiescing.sent {
                quiescing.sent = .final
                state = .quiescing(quiescing)
                return .sendFinalGoAway
            }
        }
        if let due = deadlines.age, due <= now {
            deadlines.age = nil
            if case .sendNoticeAndPing(let data) = beginGracefulShutdown(now: now, gracePeriod: timeouts.gracePeriod) {
                return .sendNoticeAndPing(data)
            }
        }
        if let due = deadlines.drain, due <= now {
            let streamID = draining.removeFirst().streamID
            deadlines.drain = draining.first?.deadline
            return .stopDraining(streamID)
        }
        if let due = deadlines.keepAlivePing, due <= now {
            deadlines.keepAlivePing = nil
            guard let interval = timeouts.keepAliveInterval, !isClosingOrClosed else { return .none }
            if let lastHeard, lastHeard + interval > now {
                // The peer spoke since this deadline was set: it is alive; the next PING is an interval after that.
                deadlines.keepAlivePing = lastHeard + interval
                return deadlineReached(now: now)
            }
            let data = takePingData()
            keepAlivePing = data
            deadlines.keepAliveAck = now + timeouts.keepAliveTimeout
            return .sendPing(data)
        }
        return .none
    }

    private mutating func closeBecause(_ expiry: Expiry, errorCode: ErrorCode, lastStreamID: Int32?) -> OnDeadline {
        if case .closed = state { return .none }
        state = .closing
        deadlines = Deadlines()
        return .close(expiry, errorCode: errorCode, lastStreamID: lastStreamID)
    }

    private mutating func takePingData() -> UInt64 {
        defer { nextPingData &+= 1 }
        return nextPingData
    }
}

extension ConnectionStateMachine {
    /// Every instant at which something may be due.
    fileprivate struct Deadlines: Equatable {
        var preface: Instant?
        var headerBlock: Instant?
        var idle: Instant?
        var age: Instant?
        var keepAlivePing: Instant?
        var keepAliveAck: Instant?
        var shutdownPing: Instant?
        var grace: Instant?
        var drain: Instant?

        /// The earliest of them (no array: this runs on every request).
        var earliest: Instant? {
            func earlier(_ a: Instant?, _ b: Instant?) -> Instant? {
                guard let a else { return b }
                guard let b else { return a }
                return min(a, b)
            }
            let timers = earlier(earlier(preface, headerBlock), earlier(idle, age))
            return earlier(earlier(timers, drain), earlier(earlier(keepAlivePing, keepAliveAck), earlier(shutdownPing, grace)))
        }
    }
}
