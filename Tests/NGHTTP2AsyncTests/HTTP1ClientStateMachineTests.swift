import Testing
@testable import NGHTTP2Async

/// Every decision of ``HTTP1ClientStateMachine``, without sockets.
@Suite struct HTTP1ClientStateMachineTests {
    typealias Machine = HTTP1ClientStateMachine
    let t0 = Machine.Instant.seconds(100)

    @Test func aKeepAliveExchangeLeavesTheConnectionIdleForTheNextRequest() {
        var machine = Machine(limits: .init(), now: t0)
        #expect(machine.requestStarted(keepAlive: true, deadline: nil, readTimeout: nil, now: t0) == 1)
        #expect(machine.requestEnded(now: t0) == .none)
        machine.responseHeadReceived(keepAlive: true, now: t0)
        #expect(machine.responseEnded(now: t0) == .idle)
        #expect(machine.requestStarted(keepAlive: true, deadline: nil, readTimeout: nil, now: t0) == 2, "exchanges count from 1")
    }

    @Test func oneRequestAtATimeABusyConnectionRefusesTheNext() {
        var machine = Machine(limits: .init(), now: t0)
        _ = machine.requestStarted(keepAlive: true, deadline: nil, readTimeout: nil, now: t0)
        #expect(machine.requestStarted(keepAlive: true, deadline: nil, readTimeout: nil, now: t0) == nil)
    }

    @Test func aResponseThatSaysConnectionCloseClosesTheConnectionAfterIt() {
        var machine = Machine(limits: .init(), now: t0)
        _ = machine.requestStarted(keepAlive: true, deadline: nil, readTimeout: nil, now: t0)
        _ = machine.requestEnded(now: t0)
        machine.responseHeadReceived(keepAlive: false, now: t0)
        #expect(machine.responseEnded(now: t0) == .close)
        #expect(machine.state == .closed)
    }

    @Test func aResponseThatEndsBeforeTheRequestBodyClosesTheConnection() {
        var machine = Machine(limits: .init(), now: t0)
        _ = machine.requestStarted(keepAlive: true, deadline: nil, readTimeout: nil, now: t0)
        machine.responseHeadReceived(keepAlive: true, now: t0)
        #expect(machine.responseEnded(now: t0) == .close, "the server did not read the whole body: the connection cannot carry another request")
    }

    @Test func readingStopsWhileTheReaderHoldsAFullBufferAndResumesWhenItIsTaken() {
        var machine = Machine(limits: .init(bodyBuffer: 100), now: t0)
        _ = machine.requestStarted(keepAlive: true, deadline: nil, readTimeout: nil, now: t0)
        machine.responseHeadReceived(keepAlive: true, now: t0)
        machine.bytesReceived(60, now: t0)
        #expect(machine.shouldRead)
        machine.bytesReceived(60, now: t0)
        #expect(!machine.shouldRead)
        let stillFull = machine.bodyTaken(10)
        #expect(!stillFull, "still full")
        let resumes = machine.bodyTaken(50)
        #expect(resumes)
        #expect(machine.shouldRead)
    }

    @Test func anIdleConnectionClosesAfterTheIdleTimeout() {
        var machine = Machine(limits: .init(idle: .seconds(5)), now: t0)
        #expect(machine.nextDeadline == t0 + .seconds(5))
        #expect(machine.deadlineReached(now: t0 + .seconds(4)) == .none)
        #expect(machine.deadlineReached(now: t0 + .seconds(5)) == .closeIdle)
        #expect(machine.requestStarted(keepAlive: true, deadline: nil, readTimeout: nil, now: t0) == nil)
    }

    @Test func theRequestDeadlineAndTheReadTimeoutEachFireWithTheirOwnAction() {
        var machine = Machine(limits: .init(idle: .seconds(1)), now: t0)
        _ = machine.requestStarted(keepAlive: true, deadline: t0 + .seconds(10), readTimeout: .seconds(2), now: t0)
        #expect(machine.nextDeadline == t0 + .seconds(2), "no idle timeout while a request is in flight")
        machine.bytesReceived(1, now: t0 + .seconds(1))
        #expect(machine.deadlineReached(now: t0 + .seconds(2)) == .none, "a byte came a second ago")
        #expect(machine.deadlineReached(now: t0 + .seconds(3)) == .readTimeout(.seconds(2)))

        var other = Machine(limits: .init(), now: t0)
        _ = other.requestStarted(keepAlive: true, deadline: t0 + .seconds(1), readTimeout: nil, now: t0)
        #expect(other.deadlineReached(now: t0 + .seconds(1)) == .requestTimeout)
    }

    @Test func aGracefulCloseLetsTheExchangeInFlightFinishThenCloses() {
        var machine = Machine(limits: .init(), now: t0)
        _ = machine.requestStarted(keepAlive: true, deadline: nil, readTimeout: nil, now: t0)
        let closesAtOnce = machine.beginClosing()
        #expect(!closesAtOnce)
        _ = machine.requestEnded(now: t0)
        machine.responseHeadReceived(keepAlive: true, now: t0)
        #expect(machine.responseEnded(now: t0) == .close)
        var idle = Machine(limits: .init(), now: t0)
        let idleCloses = idle.beginClosing()
        #expect(idleCloses, "nothing in flight: it closes at once")
    }
}
