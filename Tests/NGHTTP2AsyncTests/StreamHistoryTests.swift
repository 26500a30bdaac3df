import Testing
@testable import NGHTTP2Async
import NGHTTP2

/// The record of closed and skipped streams, and what frames on them are (RFC 9113 §5.1, §5.1.1, §5.3.1, §6.3),
/// without sockets.
@Suite struct StreamHistoryTests {
    typealias Frame = InboundFrameScanner.Frame

    static func headers(_ id: Int32, endStream: Bool = false) -> Frame {
        Frame(length: 10, type: Frame.headers, flags: endStream ? 0x5 : 0x4, streamID: id)
    }
    static func data(_ id: Int32, endStream: Bool = false) -> Frame {
        Frame(length: 10, type: Frame.data, flags: endStream ? 0x1 : 0x0, streamID: id)
    }
    static func rst(_ id: Int32) -> Frame { Frame(length: 4, type: Frame.rstStream, flags: 0, streamID: id) }

    /// A server's history (its peer opens odd streams) that has seen `frames` in one read.
    static func server(seeing frames: [Frame], open: Set<Int32> = []) -> StreamHistory {
        var history = StreamHistory(peerOpensOddStreams: true)
        history.readBegins()
        for frame in frames { _ = history.needsCheck(frame, isOpen: { open.contains($0) }) }
        return history
    }

    @Test func aNewRequestOrDataOnAnOpenStreamNeedsNoCheck() {
        var history = StreamHistory(peerOpensOddStreams: true)
        history.readBegins()
        let result1 = history.needsCheck(Self.headers(1), isOpen: { _ in false })
        #expect(!result1)
        let result2 = history.needsCheck(Self.headers(3), isOpen: { _ in false })
        #expect(!result2)
        history.readBegins()
        let result3 = history.needsCheck(Self.data(1), isOpen: { $0 == 1 })
        #expect(!result3)
        #expect(history.highestPeerStreamID == 3)
    }

    @Test func dataAfterBothSidesEndedIsAConnectionErrorStreamClosed() {
        var history = Self.server(seeing: [Self.headers(1, endStream: true)])
        history.streamClosed(1, .ended)
        history.readBegins()
        let result4 = history.needsCheck(Self.data(1), isOpen: { _ in false })
        #expect(result4)
        guard case .connection(.streamClosed, _) = history.violation(Self.data(1), isOpen: false) else {
            Issue.record("expected a connection error STREAM_CLOSED")
            return
        }
    }

    @Test func dataAfterThePeersResetIsAStreamErrorStreamClosedAnsweredOnce() {
        var history = Self.server(seeing: [Self.headers(1)])
        history.streamClosed(1, .resetByPeer)
        let result5 = history.violation(Self.data(1), isOpen: false)
        #expect(result5 == .stream(1, .streamClosed))
        let result6 = history.violation(Self.data(1), isOpen: false)
        #expect(result6 == nil, "the second frame finds the stream reset by this side")
        #expect(history.closure(of: 1) == .resetLocally)
    }

    @Test func framesAfterThisSidesResetAreIgnored() {
        var history = Self.server(seeing: [Self.headers(1)])
        history.streamClosed(1, .resetLocally)
        let result7 = history.violation(Self.headers(1), isOpen: false)
        #expect(result7 == nil)
        let result8 = history.violation(Self.data(1), isOpen: false)
        #expect(result8 == nil)
    }

    /// RFC 9113 §6.1: "If the length of the padding is the length of the frame payload or greater, the recipient MUST
    /// treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR" — on a stream this side reset too,
    /// where libnghttp2 skips the payload unread.
    @Test func paddingNotShorterThanThePayloadIsAConnectionErrorProtocolErrorOnAnyStream() {
        var history = Self.server(seeing: [Self.headers(1)])
        history.streamClosed(1, .resetLocally)
        let badlyPadded = Frame(length: 5, type: Frame.data, flags: 0x9, streamID: 1, padLength: 6)
        history.readBegins()
        let needsCheck = history.needsCheck(badlyPadded, isOpen: { _ in false })
        #expect(needsCheck)
        guard case .connection(.protocolError, _) = history.violation(badlyPadded, isOpen: false) else {
            Issue.record("expected a connection error PROTOCOL_ERROR")
            return
        }
        let padded = Frame(length: 5, type: Frame.data, flags: 0x9, streamID: 1, padLength: 4)
        let violation = history.violation(padded, isOpen: false)
        #expect(violation == nil, "four octets of padding leave one for data")
    }

    @Test func aStreamClosedEarlierInTheSameReadIsCheckedAfterThatRead() {
        // HEADERS, RST_STREAM, DATA on stream 1 in one read: the DATA must wait for libnghttp2 to see the reset.
        var history = Self.server(seeing: [Self.headers(1), Self.rst(1)])
        let result9 = history.needsCheck(Self.data(1), isOpen: { $0 == 1 })
        #expect(result9)
        // An END_STREAM earlier in the read does the same.
        var ended = Self.server(seeing: [Self.headers(3, endStream: true)])
        let result10 = ended.needsCheck(Self.data(3), isOpen: { $0 == 3 })
        #expect(result10)
        // A stream libnghttp2 still has open (half-closed remote) is libnghttp2's to answer.
        let result11 = ended.violation(Self.data(3), isOpen: true)
        #expect(result11 == nil)
    }

    @Test func headersOnAStreamIDTheClientSkippedIsAConnectionErrorProtocolError() {
        var history = Self.server(seeing: [Self.headers(5)])  // 1 and 3 skipped
        history.readBegins()
        #expect(history.wasSkipped(1) && history.wasSkipped(3) && !history.wasSkipped(5))
        let result12 = history.needsCheck(Self.headers(3), isOpen: { _ in false })
        #expect(result12)
        guard case .connection(.protocolError, _) = history.violation(Self.headers(3), isOpen: false) else {
            Issue.record("expected a connection error PROTOCOL_ERROR")
            return
        }
    }

    @Test func aStreamThatWasRefusedIsNotSkipped() {
        // libnghttp2 refuses stream 3 (no callback), the client then opens 5: 3 was used, not skipped.
        let history = Self.server(seeing: [Self.headers(1), Self.headers(3), Self.headers(5)])
        #expect(!history.wasSkipped(3))
    }

    @Test func priorityOnStreamZeroOrOnItselfIsAConnectionErrorProtocolError() {
        var history = StreamHistory(peerOpensOddStreams: true)
        let onZero = Frame(length: 5, type: Frame.priority, flags: 0, streamID: 0, dependency: 3)
        let onItself = Frame(length: 5, type: Frame.priority, flags: 0, streamID: 3, dependency: 3)
        let fine = Frame(length: 5, type: Frame.priority, flags: 0, streamID: 3, dependency: 1)
        let result13 = history.needsCheck(onZero, isOpen: { _ in false })
        #expect(result13)
        let result14 = history.needsCheck(onItself, isOpen: { _ in false })
        #expect(result14)
        let result15 = history.needsCheck(fine, isOpen: { _ in false })
        #expect(!result15)
        guard case .connection(.protocolError, _) = history.violation(onZero, isOpen: false),
            case .connection(.protocolError, _) = history.violation(onItself, isOpen: false)
        else {
            Issue.record("expected connection errors PROTOCOL_ERROR")
            return
        }
    }

    @Test func onlyTheLastClosedStreamsAreRemembered() {
        var history = StreamHistory(peerOpensOddStreams: true)
        for index in 0..<(StreamHistory.capacity + 10) { history.streamClosed(Int32(2 * index + 1), .ended) }
        #expect(history.closure(of: 1) == nil, "the oldest was forgotten")
        #expect(history.closure(of: Int32(2 * (StreamHistory.capacity + 9) + 1)) == .ended)
        let result16 = history.violation(Self.data(1), isOpen: false)
        #expect(result16 == nil, "a forgotten stream's frames are ignored")
    }

    @Test func aClientRemembersItsOwnStreams() {
        // On a client the peer opens no stream: DATA after a response ended is checked against the record.
        var history = StreamHistory(peerOpensOddStreams: false)
        history.streamClosed(1, .ended)
        history.readBegins()
        let result17 = history.needsCheck(Self.data(1), isOpen: { _ in false })
        #expect(result17)
        guard case .connection(.streamClosed, _) = history.violation(Self.data(1), isOpen: false) else {
            Issue.record("expected a connection error STREAM_CLOSED")
            return
        }
    }
}
