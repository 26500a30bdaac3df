import Testing
import NGHTTP2
@testable import NGHTTP2Async

/// Every transition and deadline of ``ConnectionStateMachine``, without sockets: events in, actions out.
@Suite struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine
    let t0 = Machine.Instant.seconds(1_000)

    func started(_ role: Session.Role, _ timeouts: Machine.Timeouts) -> Machine {
        var machine = Machine(role: role, timeouts: timeouts)
        let step1 = machine.start(now: t0)
        #expect(step1)
        return machine
    }

    // MARK: Starting

    @Test func aConnectionStartsOnceAndBecomesActiveWithThePeersFirstFrame() {
        var machine = started(.server, Machine.Timeouts())
        #expect(machine.state == .starting)
        let step2 = machine.start(now: t0)
        #expect(!step2, "a second start is no news")
        #expect(machine.acceptsNewStreams, "a client may send requests before the server's SETTINGS arrive")
        machine.frameReceived()
        #expect(machine.state == .active)
    }

    @Test func aPeerWithoutAPrefaceIsClosedAtThePrefaceDeadline() {
        var machine = started(.server, Machine.Timeouts(preface: .seconds(10)))
        #expect(machine.nextDeadline == t0 + .seconds(10))
        let step3 = machine.deadlineReached(now: t0 + .seconds(9))
        #expect(step3 == .none, "nothing is due before the deadline")
        let step4 = machine.deadlineReached(now: t0 + .seconds(10))
        #expect(step4 == .close(.preface, errorCode: .noError, lastStreamID: nil))
        #expect(machine.state == .closing)
        #expect(machine.nextDeadline == nil, "a closing connection has nothing left to time")
    }

    @Test func thePrefaceDeadlineEndsWithThePeersFirstFrame() {
        var machine = started(.server, Machine.Timeouts(preface: .seconds(10)))
        machine.frameReceived()
        #expect(machine.nextDeadline == nil)
        let step5 = machine.deadlineReached(now: t0 + .seconds(11))
        #expect(step5 == .none)
    }

    @Test func thePeersFirstSettingsMakeTheConnectionReadyAndLaterChangesAreReported() {
        var machine = started(.client, Machine.Timeouts())
        let step6 = machine.settingsReceived(maxConcurrentStreams: 100)
        #expect(step6 == .ready(maxConcurrentStreams: 100))
        let step7 = machine.settingsReceived(maxConcurrentStreams: 100)
        #expect(step7 == .none, "the same limit is no news")
        let step8 = machine.settingsReceived(maxConcurrentStreams: 10)
        #expect(step8 == .maxConcurrentStreamsChanged(10))
        #expect(machine.peerMaxConcurrentStreams == 10)
    }

    // MARK: Header blocks

    @Test func aHeaderBlockLeftIncompleteClosesTheConnectionNamingTheLastCompleteRequest() {
        var machine = started(.server, Machine.Timeouts(headerBlock: .seconds(20)))
        machine.frameReceived()
        let step9 = machine.streamOpened(1, byPeer: true)
        #expect(step9 == .none)
        machine.headerBlockStarted(streamID: 3, now: t0 + .seconds(1))
        #expect(machine.nextDeadline == t0 + .seconds(21))
        let step10 = machine.deadlineReached(now: t0 + .seconds(20))
        #expect(step10 == .none)
        // The stalled stream 3 was never processed: the GOAWAY names 1, so the client may retry 3 elsewhere.
        let step11 = machine.deadlineReached(now: t0 + .seconds(21))
        #expect(step11 == .close(.headerBlock, errorCode: .noError, lastStreamID: 1))
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
        let step12 = machine.deadlineReached(now: t0 + .seconds(60))
        #expect(step12 == .close(.idle, errorCode: .noError, lastStreamID: nil))
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
        let step13 = machine.deadlineReached(now: t0 + .seconds(179))
        #expect(step13 == .none)
        let step14 = machine.deadlineReached(now: t0 + .seconds(180))
        #expect(step14 == .close(.idle, errorCode: .noError, lastStreamID: nil))
    }

    @Test func anIdleDeadlineThatPassesWhileAStreamIsOpenDoesNothing() {
        var machine = started(.server, Machine.Timeouts(idle: .seconds(60)))
        _ = machine.streamOpened(1, byPeer: true)
        let step15 = machine.deadlineReached(now: t0 + .seconds(61))
        #expect(step15 == .none)
        #expect(machine.state == .starting)
    }

    // MARK: Limits

    @Test func theLastAllowedRequestGetsAGoAwayNamingItAndLaterOnesAreNotAccepted() {
        var machine = started(.server, Machine.Timeouts(maxStreams: 3))
        let step16 = machine.streamOpened(1, byPeer: true)
        #expect(step16 == .none)
        let step17 = machine.streamOpened(3, byPeer: true)
        #expect(step17 == .none)
        let step18 = machine.streamOpened(5, byPeer: true)
        #expect(step18 == .sendGoAway(lastStreamID: 5))
        #expect(machine.state == .quiescing(Machine.Quiescing(sent: .final, received: nil)))
        #expect(!machine.acceptsNewStreams)
        let step19 = machine.streamOpened(7, byPeer: true)
        #expect(step19 == .none, "one GOAWAY is enough")
    }

    @Test func aConnectionAtItsMaximumAgeShutsDownGracefully() {
        var machine = started(.server, Machine.Timeouts(maxAge: .seconds(300)))
        guard case .sendNoticeAndPing(let ping) = machine.deadlineReached(now: t0 + .seconds(300)) else {
            Issue.record("no graceful shutdown at the maximum age")
            return
        }
        #expect(machine.state == .quiescing(Machine.Quiescing(sent: .notice(pingData: ping), received: nil)))
        let step20 = machine.pingAcknowledged(ping, now: t0 + .seconds(301))
        #expect(step20 == .sendFinalGoAway)
    }

    // MARK: Graceful shutdown

    @Test func aServerShutsDownWithANoticeThenTheFinalGoAwayWhenItsPingReturns() {
        var machine = started(.server, Machine.Timeouts())
        guard case .sendNoticeAndPing(let ping) = machine.beginGracefulShutdown(now: t0, gracePeriod: nil) else {
            Issue.record("no GOAWAY notice")
            return
        }
        #expect(!machine.acceptsNewStreams)
        let step21 = machine.beginGracefulShutdown(now: t0, gracePeriod: nil)
        #expect(step21 == .none, "a second request changes nothing")
        let step22 = machine.pingAcknowledged(ping &+ 1, now: t0)
        #expect(step22 == .none, "another PING's ACK is not the shutdown's")
        let step23 = machine.pingAcknowledged(ping, now: t0 + .milliseconds(1))
        #expect(step23 == .sendFinalGoAway)
        #expect(machine.state == .quiescing(Machine.Quiescing(sent: .final, received: nil)))
    }

    @Test func anUnansweredShutdownPingSendsTheFinalGoAwayAfterASecond() {
        var machine = started(.server, Machine.Timeouts())
        _ = machine.beginGracefulShutdown(now: t0, gracePeriod: nil)
        #expect(machine.nextDeadline == t0 + .seconds(1))
        let step24 = machine.deadlineReached(now: t0 + .seconds(1))
        #expect(step24 == .sendFinalGoAway)
        let step25 = machine.deadlineReached(now: t0 + .seconds(1))
        #expect(step25 == .none)
    }

    @Test func theGracePeriodCutsOffStreamsStillOpen() {
        var machine = started(.server, Machine.Timeouts())
        _ = machine.streamOpened(1, byPeer: true)
        _ = machine.beginGracefulShutdown(now: t0, gracePeriod: .seconds(10))
        let step26 = machine.deadlineReached(now: t0 + .seconds(1))
        #expect(step26 == .sendFinalGoAway)
        let step27 = machine.deadlineReached(now: t0 + .seconds(10))
        #expect(step27 == .close(.gracePeriod, errorCode: .noError, lastStreamID: nil))
    }

    @Test func aClientClosesWithItsFinalGoAwayAtOnce() {
        var machine = started(.client, Machine.Timeouts())
        let step28 = machine.beginGracefulShutdown(now: t0, gracePeriod: nil)
        #expect(step28 == .sendFinalGoAway)
        #expect(!machine.acceptsNewStreams)
    }

    @Test func afterThePeersGoAwayOnlyTheFinalGoAwayIsLeftToSend() {
        var machine = started(.server, Machine.Timeouts())
        machine.goAwayReceived(lastStreamID: 0, errorCode: .noError)
        #expect(machine.goAwayReceived == Machine.GoAway(lastStreamID: 0, errorCode: .noError))
        #expect(!machine.acceptsNewStreams)
        let step29 = machine.beginGracefulShutdown(now: t0, gracePeriod: nil)
        #expect(step29 == .sendFinalGoAway)
    }

    @Test func theSessionsEndClosesTheChannelOnceAndBoundsTheWaitForTheLastBytes() {
        var machine = started(.client, Machine.Timeouts())
        let step30 = machine.sessionFinished(now: t0)
        #expect(step30)
        let step31 = machine.sessionFinished(now: t0)
        #expect(!step31, "the close is requested once")
        let step32 = machine.deadlineReached(now: t0 + .seconds(5))
        #expect(step32 == .close(.gracePeriod, errorCode: .noError, lastStreamID: nil))
    }

    // MARK: Errors and the end

    @Test func aConnectionFailsOnceAndTheFirstReasonIsKept() {
        struct First: Error {}
        struct Second: Error {}
        var machine = started(.client, Machine.Timeouts())
        let step33 = machine.connectionFailed(First())
        #expect(step33)
        let step34 = machine.connectionFailed(Second())
        #expect(!step34, "already closing: only the close in progress is left")
        #expect(machine.endedBecause is First)
        let step35 = machine.channelClosed(because: Second())
        #expect(step35)
        let step36 = machine.channelClosed(because: Second())
        #expect(!step36, "closed is news once")
        #expect(machine.endedBecause is First)
        #expect(machine.state == .closed)
    }

    @Test func aTerminatedConnectionAcceptsNoStreamsAndKeepsWhy() {
        struct Reason: Error {}
        var machine = started(.client, Machine.Timeouts())
        let step37 = machine.terminate(because: Reason())
        #expect(step37)
        #expect(!machine.acceptsNewStreams)
        #expect(machine.endedBecause is Reason)
        let step38 = machine.userPingSent(now: t0)
        #expect(step38 != nil, "a terminating connection still flushes its GOAWAY; PINGs may go with it")
        _ = machine.sessionFinished(now: t0)
        let step39 = machine.userPingSent(now: t0)
        #expect(step39 == nil)
        let step40 = machine.terminate(because: Reason())
        #expect(!step40)
    }

    // MARK: PING

    @Test func anApplicationPingReportsItsRoundTrip() {
        var machine = started(.client, Machine.Timeouts())
        let ping = machine.userPingSent(now: t0)!
        let step41 = machine.pingAcknowledged(ping, now: t0 + .milliseconds(3))
        #expect(step41 == .userPing(rtt: .milliseconds(3)))
        let step42 = machine.pingAcknowledged(ping, now: t0 + .milliseconds(4))
        #expect(step42 == .none, "an ACK counts once")
    }

    @Test func unansweredApplicationPingsAreHandedBackWhenTheConnectionEnds() {
        var machine = started(.client, Machine.Timeouts())
        let a = machine.userPingSent(now: t0)!
        let b = machine.userPingSent(now: t0)!
        let step43 = machine.takeUnansweredPings()
        #expect(Set(step43) == [a, b])
        let step44 = machine.takeUnansweredPings()
        #expect(step44.isEmpty)
    }

    @Test func aSilentPeerGetsAKeepAlivePingAndIsGivenUpWithoutItsAck() {
        var machine = started(.client, Machine.Timeouts(keepAliveInterval: .seconds(30), keepAliveTimeout: .seconds(5)))
        #expect(machine.nextDeadline == t0 + .seconds(30))
        guard case .sendPing = machine.deadlineReached(now: t0 + .seconds(30)) else {
            Issue.record("no keep-alive PING")
            return
        }
        #expect(machine.nextDeadline == t0 + .seconds(35))
        let step45 = machine.deadlineReached(now: t0 + .seconds(35))
        #expect(step45 == .close(.keepAlive, errorCode: .noError, lastStreamID: nil))
    }

    @Test func anAnsweredKeepAlivePingWaitsAWholeIntervalForTheNext() {
        var machine = started(.client, Machine.Timeouts(keepAliveInterval: .seconds(30), keepAliveTimeout: .seconds(5)))
        guard case .sendPing(let ping) = machine.deadlineReached(now: t0 + .seconds(30)) else {
            Issue.record("no keep-alive PING")
            return
        }
        let step46 = machine.pingAcknowledged(ping, now: t0 + .seconds(31))
        #expect(step46 == .none)
        #expect(machine.nextDeadline == t0 + .seconds(61))
        let step47 = machine.deadlineReached(now: t0 + .seconds(40))
        #expect(step47 == .none)
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
