import Testing
import NIOCore
@testable import NGHTTP2Async

/// Every transition and deadline of ``HTTP1ConnectionStateMachine``, without sockets: events in, actions out.
@Suite struct HTTP1ConnectionStateMachineTests {
    typealias Machine = HTTP1ConnectionStateMachine
    let t0 = Machine.Instant.seconds(1_000)

    func machine(_ limits: Machine.Limits = Machine.Limits(idle: .seconds(60), header: .seconds(20))) -> Machine {
        Machine(limits: limits, now: t0)
    }

    @Test func keepAliveRequestsFollowOneAnotherOnOneConnection() {
        var machine = machine()
        #expect(machine.headReceived(keepAlive: true) == .start(id: 1))
        #expect(machine.requestEnded(now: t0) == .none)
        let result1 = machine.responseStarted(closes: false)
        #expect(result1 == false, "no Connection: close")
        #expect(machine.responseEnded(now: t0) == .next)
        #expect(machine.headReceived(keepAlive: true) == .start(id: 2), "the second request is numbered 2")
    }

    /// RFC 9112 §9.6: a server that will not take more requests on the connection sends `close` in its response.
    @Test func theLastRequestAConnectionMayCarryIsAnsweredWithConnectionClose() {
        var machine = machine(Machine.Limits(idle: .seconds(60), header: .seconds(20), maxRequests: 2))
        #expect(machine.headReceived(keepAlive: true) == .start(id: 1))
        _ = machine.requestEnded(now: t0)
        let first = machine.responseStarted(closes: false)
        #expect(!first, "the first of two keeps the connection")
        #expect(machine.responseEnded(now: t0) == .next)
        #expect(machine.headReceived(keepAlive: true) == .start(id: 2))
        _ = machine.requestEnded(now: t0)
        let second = machine.responseStarted(closes: false)
        #expect(second, "the second says Connection: close")
        #expect(machine.responseEnded(now: t0) == .close)
        #expect(!machine.shouldRead)
    }

    @Test func connectionCloseOnTheRequestClosesAfterItsResponse() {
        var machine = machine()
        _ = machine.headReceived(keepAlive: false)
        _ = machine.requestEnded(now: t0)
        let result2 = machine.responseStarted(closes: false)
        #expect(result2, "the response says Connection: close")
        #expect(machine.responseEnded(now: t0) == .close)
        #expect(!machine.shouldRead)
    }

    @Test func aResponseThatClosesEndsAKeepAliveConnection() {
        var machine = machine()
        _ = machine.headReceived(keepAlive: true)
        _ = machine.requestEnded(now: t0)
        let result3 = machine.responseStarted(closes: true)
        #expect(result3)
        #expect(machine.responseEnded(now: t0) == .close)
    }

    @Test func pipelinedRequestsWaitAndTheSocketIsNotReadWhileARequestIsAnswered() {
        var machine = machine()
        _ = machine.headReceived(keepAlive: true)
        #expect(!machine.queuesParts, "parts of the request itself are its own")
        _ = machine.requestEnded(now: t0)
        #expect(machine.queuesParts, "what follows belongs to the next request")
        #expect(!machine.shouldRead)
        _ = machine.responseStarted(closes: false)
        #expect(machine.responseEnded(now: t0) == .next)
        #expect(!machine.queuesParts)
        #expect(machine.shouldRead)
    }

    @Test func aFullBodyBufferStopsReadingUntilTheApplicationTakesBytes() {
        var machine = machine(Machine.Limits(bodyBuffer: 10))
        _ = machine.headReceived(keepAlive: true)
        #expect(machine.bodyReceived(6) == .deliver)
        #expect(machine.shouldRead)
        #expect(machine.bodyReceived(6) == .deliver)
        #expect(!machine.shouldRead, "12 of 10 buffered")
        let result4 = machine.bodyTaken(1)
        #expect(!result4, "still 11 buffered")
        let result5 = machine.bodyTaken(5)
        #expect(result5, "6 buffered: reading resumes")
        #expect(machine.shouldRead)
    }

    @Test func aReaderThatStopsReadingHasTheRestOfTheBodyDropped() {
        var machine = machine(Machine.Limits(bodyBuffer: 10))
        _ = machine.headReceived(keepAlive: true)
        _ = machine.bodyReceived(12)
        machine.bodyAbandoned(unread: 12)
        #expect(machine.shouldRead)
        #expect(machine.bodyReceived(100) == .discard)
    }

    @Test func aResponseBeforeTheBodyEndsDrainsTheBodyThenServesTheNextRequest() {
        var machine = machine(Machine.Limits(drain: 10))
        _ = machine.headReceived(keepAlive: true)
        _ = machine.responseStarted(closes: false)
        #expect(machine.responseEnded(now: t0) == .none, "the rest of the request must be read first")
        #expect(machine.shouldRead)
        #expect(machine.bodyReceived(4) == .discard)
        #expect(machine.requestEnded(now: t0) == .next)
    }

    @Test func aBodyThatGoesOnLongAfterItsResponseClosesTheConnection() {
        var machine = machine(Machine.Limits(drain: 10))
        _ = machine.headReceived(keepAlive: true)
        _ = machine.responseStarted(closes: false)
        _ = machine.responseEnded(now: t0)
        #expect(machine.bodyReceived(8) == .discard)
        #expect(machine.bodyReceived(8) == .close)
    }

    @Test func anEarlyResponseOnAClosingConnectionDoesNotWaitForTheBody() {
        var machine = machine()
        _ = machine.headReceived(keepAlive: false)
        _ = machine.responseStarted(closes: false)
        #expect(machine.responseEnded(now: t0) == .close)
    }

    @Test func theIdleTimeoutRunsBetweenRequestsAndTheHeaderTimeoutOnceBytesArrive() {
        var machine = machine()
        #expect(machine.nextDeadline == t0 + .seconds(60))
        #expect(machine.deadlineReached(now: t0 + .seconds(59)) == .none)
        machine.bytesArrived(now: t0 + .seconds(10))
        #expect(machine.nextDeadline == t0 + .seconds(30), "20 s for the head from its first bytes")
        #expect(machine.deadlineReached(now: t0 + .seconds(30)) == .requestTimeout)
        var idle = self.machine()
        #expect(idle.deadlineReached(now: t0 + .seconds(60)) == .closeIdle)
    }

    @Test func noDeadlineRunsWhileARequestIsInFlight() {
        var machine = machine()
        _ = machine.headReceived(keepAlive: true)
        #expect(machine.nextDeadline == nil)
        _ = machine.requestEnded(now: t0)
        _ = machine.responseStarted(closes: false)
        _ = machine.responseEnded(now: t0 + .seconds(5))
        #expect(machine.nextDeadline == t0 + .seconds(65), "the idle timeout counts from the response's end")
    }

    @Test func aGracefulShutdownClosesAnIdleConnectionAtOnce() {
        var machine = machine()
        #expect(machine.beginGracefulShutdown(now: t0, gracePeriod: .seconds(5)) == .close)
    }

    @Test func aGracefulShutdownLetsTheRequestInFlightFinishAndThenCloses() {
        var machine = machine()
        _ = machine.headReceived(keepAlive: true)
        #expect(machine.beginGracefulShutdown(now: t0, gracePeriod: .seconds(5)) == .none)
        #expect(machine.nextDeadline == t0 + .seconds(5))
        _ = machine.requestEnded(now: t0)
        let result6 = machine.responseStarted(closes: false)
        #expect(result6, "the response says Connection: close")
        #expect(machine.responseEnded(now: t0) == .close)
    }

    @Test func aGracefulShutdownCutsOffARequestStillInFlightAfterTheGracePeriod() {
        var machine = machine()
        _ = machine.headReceived(keepAlive: true)
        _ = machine.beginGracefulShutdown(now: t0, gracePeriod: .seconds(5))
        #expect(machine.deadlineReached(now: t0 + .seconds(5)) == .gracePeriodOver)
        #expect(!machine.shouldRead)
    }

    @Test func anIdleConnectionPastItsMaximumAgeCloses() {
        var machine = machine(Machine.Limits(idle: .seconds(60), header: .seconds(20), maxAge: .seconds(30)))
        #expect(machine.nextDeadline == t0 + .seconds(30), "the age comes before the idle timeout")
        #expect(machine.deadlineReached(now: t0 + .seconds(30)) == .closeAged)
        #expect(machine.nextDeadline == nil)
    }

    @Test func aRequestInFlightAtTheMaximumAgeFinishesWithConnectionCloseWithinTheGracePeriod() {
        var machine = machine(Machine.Limits(idle: .seconds(60), header: .seconds(20), gracePeriod: .seconds(5), maxAge: .seconds(30)))
        _ = machine.headReceived(keepAlive: true)
        #expect(machine.nextDeadline == t0 + .seconds(30), "the age runs while a request is in flight")
        #expect(machine.deadlineReached(now: t0 + .seconds(30)) == .none)
        #expect(machine.nextDeadline == t0 + .seconds(35), "then the grace period")
        _ = machine.requestEnded(now: t0 + .seconds(31))
        let closes = machine.responseStarted(closes: false)
        #expect(closes, "the response says Connection: close")
        #expect(machine.responseEnded(now: t0 + .seconds(31)) == .close)
    }

    @Test func badInputGetsA400UnlessAResponseHasStarted() {
        var idle = machine()
        #expect(idle.parseError() == .respondAndClose)
        var answering = machine()
        _ = answering.headReceived(keepAlive: true)
        _ = answering.responseStarted(closes: false)
        #expect(answering.parseError() == .close)
        #expect(answering.state == .closed)
    }

    @Test func onlyARequestNotYetAnsweredMaySwitchProtocols() {
        var machine = machine()
        #expect(!machine.mayUpgrade, "no request")
        _ = machine.headReceived(keepAlive: true)
        #expect(machine.mayUpgrade)
        _ = machine.responseStarted(closes: false)
        #expect(!machine.mayUpgrade, "answered already")
        var closing = self.machine()
        _ = closing.headReceived(keepAlive: true)
        _ = closing.beginGracefulShutdown(now: t0, gracePeriod: nil)
        #expect(!closing.mayUpgrade, "shutting down")
    }

    @Test func aHeadOnAClosedConnectionIsIgnored() {
        var machine = machine()
        machine.closed()
        #expect(machine.headReceived(keepAlive: true) == .ignore)
    }
}

/// Telling the HTTP/2 preface from HTTP/1.1, and the `HTTP2-Settings` of an h2c Upgrade (RFC 7540 §3.2.1).
@Suite struct HTTP1DetectionTests {
    @Test func thePrefaceIsHTTP2AndAnyOtherFirstBytesAreHTTP1() {
        let preface = CleartextProtocolSniffer.preface
        #expect(CleartextProtocolSniffer.detect(ByteBuffer(bytes: preface)) == .http2)
        #expect(CleartextProtocolSniffer.detect(ByteBuffer(bytes: preface + [0, 0])) == .http2)
        #expect(CleartextProtocolSniffer.detect(ByteBuffer(bytes: preface.prefix(10))) == nil, "a part of it: wait")
        #expect(CleartextProtocolSniffer.detect(ByteBuffer(string: "GET / HTTP/1.1\r\n")) == .http1)
        #expect(CleartextProtocolSniffer.detect(ByteBuffer(string: "G")) == .http1, "one byte decides")
        #expect(CleartextProtocolSniffer.detect(ByteBuffer(string: "PRI * HTTP/1.1\r\n")) == .http1)
    }

    @Test func base64URLDecodesWithOrWithoutPaddingAndRejectsOtherAlphabets() {
        #expect(H2CUpgradeRequest.decodeBase64URL("AAMAAABkAAQAAP__") == [0, 3, 0, 0, 0, 0x64, 0, 4, 0, 0, 0xff, 0xff])
        #expect(H2CUpgradeRequest.decodeBase64URL("") == [])
        #expect(H2CUpgradeRequest.decodeBase64URL("AQ==") == [1])
        #expect(H2CUpgradeRequest.decodeBase64URL("AQ") == [1])
        #expect(H2CUpgradeRequest.decodeBase64URL("AAMAAABkAAQAAP//") == nil, "standard base64's / is not base64url")
        #expect(H2CUpgradeRequest.decodeBase64URL("A") == nil, "six bits are no byte")
    }
}
