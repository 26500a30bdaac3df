import Testing
import NGHTTP2
@testable import NGHTTP2Async

/// Every transition and deadline of ``ConnectionStateMachine``, without sockets: events in, actions out.
@Suite struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine
    let t0 = Machine.Instant.seconds(1_000)

    func started(_ role: Session.Role, _ timeouts: Machine.Timeouts) -> Machine {
        var machine = Machine(role: role, timeouts: timeouts)
        let started = machine.start(now: t0)
        #expect(started)
        return machine
    }

    // MARK: Glitches (RFC 9113 §10.5)

    @Test func aPeerMayCauseABurstOfGlitchesAndThenOnlyTheRefillRate() {
        var machine = started(.server, Machine.Timeouts(glitches: GlitchLimit(burst: 3, perSecond: 2)))
        let burst = (0..<3).map { _ in machine.peerGlitched(now: t0) }
        #expect(burst == [false, false, false], "the burst is taken")
        let tooMany = machine.peerGlitched(now: t0)
        #expect(tooMany, "one more at once is too many")
        var later = started(.server, Machine.Timeouts(glitches: GlitchLimit(burst: 3, perSecond: 2)))
        for _ in 0..<3 { _ = later.peerGlitched(now: t0) }
        let earned = later.peerGlitched(now: t0 + .milliseconds(500))
        #expect(!earned, "half a second earns one at 2 a second")
        let onlyOne = later.peerGlitched(now: t0 + .milliseconds(600))
        #expect(onlyOne, "and only one")
        let refilled = later.peerGlitched(now: t0 + .seconds(60))
        #expect(!refilled, "a quiet minute refills the bucket")
    }

    @Test func withoutALimitGlitchesNeverEndTheConnection() {
        var machine = started(.server, Machine.Timeouts())
        var exceeded = false
        for _ in 0..<10_000 where machine.peerGlitched(now: t0) { exceeded = true }
        #expect(!exceeded)
    }

    // MARK: Starting

    @Test func aConnectionStartsOnceAndBecomesActiveWithThePeersFirstFrame() {
        var machine = started(.server, Machine.Timeouts())
        #expect(machine.state == .starting)
        let started = machine.start(now: t0)
        #expect(!started, "a second start is no news")
        #expect(machine.acceptsNewStreams, "a client may send requests before the server's SETTINGS arrive")
        machine.frameReceived()
        #expect(machine.state == .active)
    }

    @Test func aPeerWithoutAPrefaceIsClosedAtThePrefaceDeadline() {
        var machine = started(.server, Machine.Timeouts(preface: .seconds(10)))
        #expect(machine.nextDeadline == t0 + .seconds(10))
        let due = machine.deadlineReached(now: t0 + .seconds(9))
        #expect(due == .none, "nothing is due before the deadline")
        let due2 = machine.deadlineReached(now: t0 + .seconds(10))
        #expect(due2 == .close(.preface, errorCode: .noError, lastStreamID: nil))
        #expect(machine.state == .closing)
        #expect(machine.nextDeadline == nil, "a closing connection has nothing left to time")
    }

    @Test func thePrefaceDeadlineEndsWithThePeersFirstFrame() {
        var machine = started(.server, Machine.Timeouts(preface: .seconds(10)))
        machine.frameReceived()
        #expect(machine.nextDeadline == nil)
        let due = machine.deadlineReached(now: t0 + .seconds(11))
        #expect(due == .none)
    }

    @Test func thePeersFirstSettingsMakeTheConnectionReadyAndLaterChangesAreReported() {
        var machine = started(.client, Machine.Timeouts())
        let settings = machine.settingsReceived(maxConcurrentStreams: 100)
        #expect(settings == .ready(maxConcurrentStreams: 100))
        let settings2 = machine.settingsReceived(maxConcurrentStreams: 100)
        #expect(settings2 == .none, "the same limit is no news")
        let settings3 = machine.settingsReceived(maxConcurrentStreams: 10)
        #expect(settings3 == .maxConcurrentStreamsChanged(10))
        #expect(machine.peerMaxConcurrentStreams == 10)
    }

    // MARK: Header blocks

    @Test func aHeaderBlockLeftIncompleteClosesTheConnectionNamingTheLastCompleteRequest() {
        var machine = started(.server, Machine.Timeouts(headerBlock: .seconds(20)))
        machine.frameReceived()
        let opened = machine.streamOpened(1, byPeer: true)
        #expect(opened == .none)
        machine.headerBlockStarted(streamID: 3, now: t0 + .seconds(1))
        #expect(machine.nextDeadline == t0 + .seconds(21))
        let due = machine.deadlineReached(now: t0 + .seconds(20))
        #expect(due == .none)
        // The stalled stream 3 was never processed: the GOAWAY names 1, so the client may retry 3 elsewhere.
        let due2 = machine.deadlineReached(now: t0 + .seconds(21))
        #expect(due2 == .close(.headerBlock, errorCode: .noError, lastStreamID: 1))
    }

    @Test func aHeaderBlockEndsWithTheNextWholeFrame() {
        var machine = started(.server, Machine.Timeouts(headerBlock: .seconds(20)))
        machine.headerBlockStarted(streamID: 1, now: t0)
        machine.frameReceived()  // HEADERS (or its last CONTINUATION) with END_HEADERS
        #expect(machine.nextDeadline == nil)
    }

    @Test func aRejectedHeaderBlockStopsItsDeadlineButAnotherStreamsCloseDoesNot() {
        var machine = started(.server, Machine.Timeouts(headerBlock: .seconds(20)))
        machine.headerBlockStarted(streamID: 5, now: t0)
        machine.headerBlockAbandoned(streamID: 3)
        #expect(machine.nextDeadline == t0 + .seconds(20), "stream 3's end says nothing about stream 5's block")
        machine.headerBlockAbandoned(streamID: 5)
        #expect(machine.nextDeadline == nil)
    }

    // MARK: Idle

    @Test func aConnectionWithoutStreamsIsClosedAfterTheIdleTimeout() {
        var machine = started(.server, Machine.Timeouts(idle: .seconds(60)))
        #expect(machine.nextDeadline == t0 + .seconds(60), "idle counts from the start")
        let due = machine.deadlineReached(now: t0 + .seconds(60))
        #expect(due == .close(.idle, errorCode: .noError, lastStreamID: nil))
    }

    @Test func anOpenStreamStopsTheIdleClockAndTheLastCloseRestartsIt() {
        var machine = started(.server, Machine.Timeouts(idle: .seconds(60)))
        _ = machine.streamOpened(1, byPeer: true)
        _ = machine.streamOpened(3, byPeer: true)
        #expect(machine.nextDeadline == nil)
        machine.streamClosed(now: t0 + .seconds(100))
        #expect(machine.nextDeadline == nil, "one stream is still open")
        machine.streamClosed(now: t0 + .seconds(120))
        #expect(machine.openStreams == 0)
        #expect(machine.nextDeadline == t0 + .seconds(180))
        let due = machine.deadlineReached(now: t0 + .seconds(179))
        #expect(due == .none)
        let due2 = machine.deadlineReached(now: t0 + .seconds(180))
        #expect(due2 == .close(.idle, errorCode: .noError, lastStreamID: nil))
    }

    @Test func anIdleDeadlineThatPassesWhileAStreamIsOpenDoesNothing() {
        var machine = started(.server, Machine.Timeouts(idle: .seconds(60)))
        _ = machine.streamOpened(1, byPeer: true)
        let due = machine.deadlineReached(now: t0 + .seconds(61))
        #expect(due == .none)
        #expect(machine.state == .starting)
    }

    // MARK: Limits

    @Test func theLastAllowedRequestGetsAGoAwayNamingItAndLaterOnesAreNotAccepted() {
        var machine = started(.server, Machine.Timeouts(maxStreams: 3))
        let opened = machine.streamOpened(1, byPeer: true)
        #expect(opened == .none)
        let opened2 = machine.streamOpened(3, byPeer: true)
        #expect(opened2 == .none)
        let opened3 = machine.streamOpened(5, byPeer: true)
        #expect(opened3 == .sendGoAway(lastStreamID: 5))
        #expect(machine.state == .quiescing(Machine.Quiescing(sent: .final, received: nil)))
        #expect(!machine.acceptsNewStreams)
        let opened4 = machine.streamOpened(7, byPeer: true)
        #expect(opened4 == .none, "one GOAWAY is enough")
    }

    @Test func aConnectionAtItsMaximumAgeShutsDownGracefullyWithinItsGracePeriod() {
        var machine = started(.server, Machine.Timeouts(maxAge: .seconds(300), gracePeriod: .seconds(10)))
        guard case .sendNoticeAndPing(let ping) = machine.deadlineReached(now: t0 + .seconds(300)) else {
            Issue.record("no graceful shutdown at the maximum age")
            return
        }
        #expect(machine.state == .quiescing(Machine.Quiescing(sent: .notice(pingData: ping), received: nil)))
        let ack = machine.pingAcknowledged(ping, now: t0 + .seconds(301))
        #expect(ack == .sendFinalGoAway)
        let cutOff = machine.deadlineReached(now: t0 + .seconds(310))
        #expect(cutOff == .close(.gracePeriod, errorCode: .noError, lastStreamID: nil))
    }

    // MARK: Graceful shutdown

    @Test func aServerShutsDownWithANoticeThenTheFinalGoAwayWhenItsPingReturns() {
        var machine = started(.server, Machine.Timeouts())
        guard case .sendNoticeAndPing(let ping) = machine.beginGracefulShutdown(now: t0, gracePeriod: nil) else {
            Issue.record("no GOAWAY notice")
            return
        }
        #expect(!machine.acceptsNewStreams)
        let shutdown = machine.beginGracefulShutdown(now: t0, gracePeriod: nil)
        #expect(shutdown == .none, "a second request changes nothing")
        let ack = machine.pingAcknowledged(ping &+ 1, now: t0)
        #expect(ack == .none, "another PING's ACK is not the shutdown's")
        let ack2 = machine.pingAcknowledged(ping, now: t0 + .milliseconds(1))
        #expect(ack2 == .sendFinalGoAway)
        #expect(machine.state == .quiescing(Machine.Quiescing(sent: .final, received: nil)))
    }

    @Test func anUnansweredShutdownPingSendsTheFinalGoAwayAfterASecond() {
        var machine = started(.server, Machine.Timeouts())
        _ = machine.beginGracefulShutdown(now: t0, gracePeriod: nil)
        #expect(machine.nextDeadline == t0 + .seconds(1))
        let due = machine.deadlineReached(now: t0 + .seconds(1))
        #expect(due == .sendFinalGoAway)
        let due2 = machine.deadlineReached(now: t0 + .seconds(1))
        #expect(due2 == .none)
    }

    @Test func theGracePeriodCutsOffStreamsStillOpen() {
        var machine = started(.server, Machine.Timeouts())
        _ = machine.streamOpened(1, byPeer: true)
        _ = machine.beginGracefulShutdown(now: t0, gracePeriod: .seconds(10))
        let due = machine.deadlineReached(now: t0 + .seconds(1))
        #expect(due == .sendFinalGoAway)
        let due2 = machine.deadlineReached(now: t0 + .seconds(10))
        #expect(due2 == .close(.gracePeriod, errorCode: .noError, lastStreamID: nil))
    }

    @Test func aClientClosesWithItsFinalGoAwayAtOnce() {
        var machine = started(.client, Machine.Timeouts())
        let shutdown = machine.beginGracefulShutdown(now: t0, gracePeriod: nil)
        #expect(shutdown == .sendFinalGoAway)
        #expect(!machine.acceptsNewStreams)
    }

    @Test func afterThePeersGoAwayOnlyTheFinalGoAwayIsLeftToSend() {
        var machine = started(.server, Machine.Timeouts())
        machine.goAwayReceived(lastStreamID: 0, errorCode: .noError)
        #expect(machine.goAwayReceived == Machine.GoAway(lastStreamID: 0, errorCode: .noError))
        #expect(!machine.acceptsNewStreams)
        let shutdown = machine.beginGracefulShutdown(now: t0, gracePeriod: nil)
        #expect(shutdown == .sendFinalGoAway)
    }

    @Test func theSessionsEndClosesTheChannelOnceAndBoundsTheWaitForTheLastBytes() {
        var machine = started(.client, Machine.Timeouts())
        let finished = machine.sessionFinished(now: t0)
        #expect(finished)
        let finished2 = machine.sessionFinished(now: t0)
        #expect(!finished2, "the close is requested once")
        let due = machine.deadlineReached(now: t0 + .seconds(5))
        #expect(due == .close(.gracePeriod, errorCode: .noError, lastStreamID: nil))
    }

    // MARK: Errors and the end

    @Test func aConnectionFailsOnceAndTheFirstReasonIsKept() {
        struct First: Error {}
        struct Second: Error {}
        var machine = started(.client, Machine.Timeouts())
        let failed = machine.connectionFailed(First())
        #expect(failed)
        let failed2 = machine.connectionFailed(Second())
        #expect(!failed2, "already closing: only the close in progress is left")
        #expect(machine.endedBecause is First)
        let closed = machine.channelClosed(because: Second())
        #expect(closed)
        let closed2 = machine.channelClosed(because: Second())
        #expect(!closed2, "closed is news once")
        #expect(machine.endedBecause is First)
        #expect(machine.state == .closed)
    }

    @Test func aTerminatedConnectionAcceptsNoStreamsAndKeepsWhy() {
        struct Reason: Error {}
        var machine = started(.client, Machine.Timeouts())
        let terminated = machine.terminate(because: Reason())
        #expect(terminated)
        #expect(!machine.acceptsNewStreams)
        #expect(machine.endedBecause is Reason)
        let ping = machine.userPingSent(now: t0)
        #expect(ping != nil, "a terminating connection still flushes its GOAWAY; PINGs may go with it")
        _ = machine.sessionFinished(now: t0)
        let ping2 = machine.userPingSent(now: t0)
        #expect(ping2 == nil)
        let terminated2 = machine.terminate(because: Reason())
        #expect(!terminated2)
    }

    // MARK: PING

    @Test func anApplicationPingReportsItsRoundTrip() {
        var machine = started(.client, Machine.Timeouts())
        let ping = machine.userPingSent(now: t0)!
        let ack = machine.pingAcknowledged(ping, now: t0 + .milliseconds(3))
        #expect(ack == .userPing(rtt: .milliseconds(3)))
        let ack2 = machine.pingAcknowledged(ping, now: t0 + .milliseconds(4))
        #expect(ack2 == .none, "an ACK counts once")
    }

    @Test func unansweredApplicationPingsAreHandedBackWhenTheConnectionEnds() {
        var machine = started(.client, Machine.Timeouts())
        let a = machine.userPingSent(now: t0)!
        let b = machine.userPingSent(now: t0)!
        let unanswered = machine.takeUnansweredPings()
        #expect(Set(unanswered) == [a, b])
        let unanswered2 = machine.takeUnansweredPings()
        #expect(unanswered2.isEmpty)
    }

    @Test func aSilentPeerGetsAKeepAlivePingAndIsGivenUpWithoutItsAck() {
        var machine = started(.client, Machine.Timeouts(keepAliveInterval: .seconds(30), keepAliveTimeout: .seconds(5)))
        #expect(machine.nextDeadline == t0 + .seconds(30))
        guard case .sendPing = machine.deadlineReached(now: t0 + .seconds(30)) else {
            Issue.record("no keep-alive PING")
            return
        }
        #expect(machine.nextDeadline == t0 + .seconds(35))
        let due = machine.deadlineReached(now: t0 + .seconds(35))
        #expect(due == .close(.keepAlive, errorCode: .noError, lastStreamID: nil))
    }

    @Test func anAnsweredKeepAlivePingWaitsAWholeIntervalForTheNext() {
        var machine = started(.client, Machine.Timeouts(keepAliveInterval: .seconds(30), keepAliveTimeout: .seconds(5)))
        guard case .sendPing(let ping) = machine.deadlineReached(now: t0 + .seconds(30)) else {
            Issue.record("no keep-alive PING")
            return
        }
        let ack = machine.pingAcknowledged(ping, now: t0 + .seconds(31))
        #expect(ack == .none)
        #expect(machine.nextDeadline == t0 + .seconds(61))
        let due = machine.deadlineReached(now: t0 + .seconds(40))
        #expect(due == .none)
    }

    @Test func aPeerThatSpokeGetsItsKeepAlivePingAnIntervalAfterItLastSpoke() {
        var machine = started(.client, Machine.Timeouts(keepAliveInterval: .seconds(30)))
        machine.peerActive(now: t0 + .seconds(10))
        let early = machine.deadlineReached(now: t0 + .seconds(30))
        #expect(early == .none, "the peer spoke at 10 s: it is alive until 40 s")
        #expect(machine.nextDeadline == t0 + .seconds(40))
        guard case .sendPing = machine.deadlineReached(now: t0 + .seconds(40)) else {
            Issue.record("no keep-alive PING after a silent interval")
            return
        }
    }

    @Test func theEarliestOfSeveralDeadlinesIsTheNext() {
        var machine = started(.server, Machine.Timeouts(preface: .seconds(10), idle: .seconds(60), maxAge: .seconds(5)))
        #expect(machine.nextDeadline == t0 + .seconds(5))
        machine.headerBlockStarted(streamID: 1, now: t0)
        #expect(machine.nextDeadline == t0 + .seconds(5), "no header timeout configured")
    }
}
