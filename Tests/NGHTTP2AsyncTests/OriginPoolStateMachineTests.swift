import Testing
@testable import NGHTTP2Async

/// Every decision of ``OriginPool/StateMachine``, without sockets: requests and connection events in, actions out.
@Suite struct OriginPoolStateMachineTests {
    typealias Machine = OriginPool.StateMachine
    typealias RequestID = Machine.RequestID
    typealias ConnectionID = Machine.ConnectionID
    let t0 = Machine.Instant.seconds(1_000)

    func request(_ n: Int) -> RequestID { RequestID(value: n) }
    func connection(_ n: Int) -> ConnectionID { ConnectionID(value: n) }
    struct Refused: Error {}

    /// A machine whose first connection is ready with `maxStreams` and took nothing yet.
    func withOneConnection(maxStreams: Int, maxConnections: Int = 4) -> Machine {
        var machine = Machine(limits: .init(maxConnections: maxConnections))
        let first = machine.requestArrived(request(0), now: t0)
        #expect(first.connect == [connection(0)])
        let ready = machine.connected(connection(0), maxConcurrentStreams: maxStreams, now: t0)
        #expect(ready.dispatch.map(\.0) == [request(0)])
        _ = machine.streamOpened(on: connection(0), open: 1)
        _ = machine.streamClosed(on: connection(0), open: 0)
        return machine
    }

    @Test func theFirstRequestOpensAConnectionAndWaitsUntilItIsReady() {
        var machine = Machine(limits: .init(maxConnections: 4))
        let actions = machine.requestArrived(request(1), now: t0)
        #expect(actions.connect == [connection(0)])
        #expect(actions.dispatch.isEmpty)
        let ready = machine.connected(connection(0), maxConcurrentStreams: 100, now: t0)
        #expect(ready.dispatch.map(\.0) == [request(1)])
        #expect(ready.dispatch.map(\.1) == [connection(0)])
    }

    @Test func requestsUpToWhatAConnectingConnectionIsExpectedToTakeOpenNoSecondConnection() {
        var machine = Machine(limits: .init(maxConnections: 4))
        var connects = 0
        for n in 0..<100 { connects += machine.requestArrived(request(n), now: t0).connect.count }
        #expect(connects == 1, "100 is RFC 9113's recommended minimum of MAX_CONCURRENT_STREAMS")
        let more = machine.requestArrived(request(100), now: t0)
        #expect(more.connect == [connection(1)], "the 101st needs a second connection")
    }

    @Test func aSaturatedConnectionMakesThePoolOpenAnotherUpToTheLimit() {
        var machine = withOneConnection(maxStreams: 2, maxConnections: 2)
        #expect(machine.requestArrived(request(1), now: t0).dispatch.count == 1)
        #expect(machine.requestArrived(request(2), now: t0).dispatch.count == 1)
        _ = machine.streamOpened(on: connection(0), open: 1)
        _ = machine.streamOpened(on: connection(0), open: 2)
        let third = machine.requestArrived(request(3), now: t0)
        #expect(third.dispatch.isEmpty, "both streams are taken")
        #expect(third.connect == [connection(1)])
        let fourth = machine.requestArrived(request(4), now: t0)
        #expect(fourth.connect.isEmpty, "the connecting one is expected to take two")
        _ = machine.requestArrived(request(5), now: t0)
        let sixth = machine.requestArrived(request(6), now: t0)
        #expect(sixth.connect.isEmpty, "the limit is two connections")
        let ready = machine.connected(connection(1), maxConcurrentStreams: 2, now: t0)
        #expect(ready.dispatch.map(\.0) == [request(3), request(4)], "first come, first served")
        #expect(machine.waiting.count == 2)
        let freed = machine.streamClosed(on: connection(0), open: 1)
        #expect(freed.dispatch.map(\.0) == [request(5)])
        #expect(freed.dispatch.map(\.1) == [connection(0)])
    }

    @Test func aNewRequestGoesToTheLeastLoadedConnection() {
        var machine = withOneConnection(maxStreams: 1, maxConnections: 2)
        _ = machine.requestArrived(request(1), now: t0)  // takes connection 0's one stream
        _ = machine.requestArrived(request(2), now: t0)  // opens connection 1
        _ = machine.connected(connection(1), maxConcurrentStreams: 10, now: t0)
        _ = machine.maxConcurrentStreamsChanged(connection(0), to: 10, now: t0)
        let next = machine.requestArrived(request(3), now: t0)
        #expect(next.dispatch.map(\.1) == [connection(0)], "9 free on connection 0 against 9 on 1: the oldest of equals")
        let after = machine.requestArrived(request(4), now: t0)
        #expect(after.dispatch.map(\.1) == [connection(1)], "now connection 1 has more room")
    }

    @Test func requestsHandedToAConnectionCountUntilTheirStreamOpensOrTheyAreGivenBack() {
        var machine = withOneConnection(maxStreams: 1, maxConnections: 1)
        #expect(machine.requestArrived(request(1), now: t0).dispatch.count == 1)
        #expect(machine.requestArrived(request(2), now: t0).dispatch.isEmpty, "pending, not yet open, still counts")
        let givenBack = machine.requestNotStarted(on: connection(0))
        #expect(givenBack.dispatch.map(\.0) == [request(2)], "a request that never opened frees its place")
    }

    @Test func aConnectionThatReceivedGoAwayTakesNothingNewAndIsReplaced() {
        var machine = withOneConnection(maxStreams: 10, maxConnections: 1)
        let goAway = machine.goAwayReceived(connection(0), lastStreamID: 1, isGraceful: true, now: t0)
        #expect(goAway.connect.isEmpty, "nothing waits yet")
        let next = machine.requestArrived(request(1), now: t0)
        #expect(next.dispatch.isEmpty)
        #expect(next.connect == [connection(1)], "a draining connection does not count against the limit")
        let closed = machine.connectionClosed(connection(0), error: nil, now: t0)
        #expect(closed.isEmpty)
        #expect(machine.connections.map(\.id) == [connection(1)])
    }

    @Test func aGracefulGoAwayThatRefusedRequestsTeachesHowManyRequestsAConnectionIsGiven() {
        var machine = withOneConnection(maxStreams: 100, maxConnections: 2)  // request 0 was stream 1
        for n in 1...5 { _ = machine.requestArrived(request(n), now: t0) }
        // The server processes 3 requests per connection: GOAWAY names stream 5, and streams 7..11 were refused.
        _ = machine.goAwayReceived(connection(0), lastStreamID: 5, isGraceful: true, now: t0)
        #expect(machine.requestsPerConnection == 3)
        for n in 6...9 { _ = machine.requestArrived(request(n), isRetry: true, now: t0) }
        let next = machine.connected(connection(1), maxConcurrentStreams: 100, now: t0)
        #expect(next.dispatch.count == 3, "the new connection gets only what it will process")
        #expect(next.connect == [connection(2)], "a spent connection does not count against the limit")
        for _ in 0..<3 { _ = machine.streamOpened(on: connection(1), open: 1) }
        _ = machine.streamClosed(on: connection(1), open: 0)
        #expect(machine.requestsPerConnection == nil, "it finished all three and no GOAWAY came: that was a one-off")
    }

    @Test func aFailedConnectFailsTheWaitingRequestsWhenNothingElseCanServeThem() {
        var machine = Machine(limits: .init(maxConnections: 2))
        _ = machine.requestArrived(request(1), now: t0)
        _ = machine.requestArrived(request(2), now: t0)
        let failed = machine.connectFailed(connection(0), error: Refused(), now: t0)
        #expect(failed.fail.map(\.0) == [request(1), request(2)])
        #expect(failed.fail.allSatisfy { $0.1 is Refused })
        #expect(failed.connect.isEmpty)
    }

    @Test func afterAFailedConnectTheNextWaitsForABackoffThatGrows() {
        var machine = Machine(limits: .init(maxConnections: 2, backoff: .milliseconds(100), maxBackoff: .seconds(1)))
        _ = machine.requestArrived(request(1), now: t0)
        _ = machine.connectFailed(connection(0), error: Refused(), now: t0)
        let during = machine.requestArrived(request(2), now: t0 + .milliseconds(50))
        #expect(during.connect.isEmpty)
        #expect(during.wakeAt == t0 + .milliseconds(100))
        let woke = machine.timerFired(now: t0 + .milliseconds(100))
        #expect(woke.connect.count == 1, "the backoff is over")
        _ = machine.connectFailed(woke.connect[0], error: Refused(), now: t0 + .milliseconds(100))
        let again = machine.requestArrived(request(3), now: t0 + .milliseconds(100))
        #expect(again.wakeAt == t0 + .milliseconds(250), "the second failure waits 1.5 times longer")
        for n in 0..<20 {
            let actions = machine.timerFired(now: .seconds(2_000 + n * 10))
            if let id = actions.connect.first { _ = machine.connectFailed(id, error: Refused(), now: .seconds(2_000 + n * 10)) }
            _ = machine.requestArrived(request(100 + n), now: .seconds(2_000 + n * 10))
        }
        #expect(machine.failedConnects == 22)
        let capped = machine.requestArrived(request(999), now: .seconds(2_190) + .milliseconds(100))
        #expect(capped.wakeAt == .seconds(2_191), "never longer than maxBackoff")
        let connect = machine.timerFired(now: .seconds(2_191)).connect
        #expect(connect.count == 1)
        _ = machine.connected(connect[0], maxConcurrentStreams: 100, now: .seconds(2_191))
        #expect(machine.failedConnects == 0, "a connect that works ends the backoff")
    }

    @Test func aConnectionThatClosesBeforeItIsReadyCountsAsAFailedConnect() {
        var machine = Machine(limits: .init(maxConnections: 1))
        _ = machine.requestArrived(request(1), now: t0)
        let closed = machine.connectionClosed(connection(0), error: HTTP2Error.idleTimeout(.seconds(1)), now: t0)
        #expect(closed.fail.map(\.0) == [request(1)])
        #expect((closed.fail.first?.1 as? HTTP2Error)?.isRetrySafe == true, "it was never sent")
        #expect(machine.failedConnects == 1)
    }

    @Test func aTLSAlertBeforeTheConnectionIsReadyFailsWaitingRequestsWithThatErrorNotARetry() {
        var machine = Machine(limits: .init(maxConnections: 1))
        _ = machine.requestArrived(request(1), now: t0)
        let alert = TLSError.connectionFailed(reason: "tlsv13 alert certificate required")
        let closed = machine.connectionClosed(connection(0), error: alert, now: t0)
        #expect(closed.fail.map(\.0) == [request(1)])
        #expect(closed.fail.first?.1 as? TLSError == alert)
    }

    @Test func anAbandonedWaitingRequestFailsAndADispatchedOneIsLeftToItsConnection() {
        var machine = withOneConnection(maxStreams: 1, maxConnections: 1)
        _ = machine.requestArrived(request(1), now: t0)
        _ = machine.requestArrived(request(2), now: t0)
        let waiting = machine.requestAbandoned(request(2), error: CancellationError())
        #expect(waiting.fail.map(\.0) == [request(2)])
        let dispatched = machine.requestAbandoned(request(1), error: CancellationError())
        #expect(dispatched.isEmpty)
        #expect(machine.waiting.isEmpty)
    }

    @Test func shuttingDownRefusesNewRequestsButServesWaitingOnesAndRetriesThenClosesEveryConnection() {
        var machine = withOneConnection(maxStreams: 1, maxConnections: 1)
        _ = machine.requestArrived(request(1), now: t0)  // in flight
        _ = machine.requestArrived(request(2), now: t0)  // waiting
        let shutdown = machine.shutDown()
        #expect(shutdown.close.isEmpty, "a request still waits for the connection")
        #expect(!shutdown.shutDownComplete)
        let refused = machine.requestArrived(request(3), now: t0)
        #expect(refused.fail.first?.1 as? HTTP2Error == .clientShutDown)
        _ = machine.streamOpened(on: connection(0), open: 1)
        let freed = machine.streamClosed(on: connection(0), open: 0)
        #expect(freed.dispatch.map(\.0) == [request(2)])
        #expect(freed.close.isEmpty, "request 2 has not opened its stream yet")
        let opened = machine.streamOpened(on: connection(0), open: 1)
        #expect(opened.close == [connection(0)], "nothing waits and nothing is pending: GOAWAY, and request 2 finishes")
        let retry = machine.requestArrived(request(4), isRetry: true, now: t0)
        #expect(retry.fail.isEmpty, "a retry of a request in flight is still served")
        #expect(retry.connect.count == 1)
        _ = machine.connectFailed(retry.connect[0], error: Refused(), now: t0)
        let done = machine.connectionClosed(connection(0), error: nil, now: t0)
        #expect(done.shutDownComplete)
    }

    @Test func shuttingDownAPoolWithoutConnectionsCompletesAtOnce() {
        var machine = Machine(limits: .init(maxConnections: 1))
        #expect(machine.shutDown().shutDownComplete)
    }
}
