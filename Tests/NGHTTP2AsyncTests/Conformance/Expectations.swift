import Foundation
import Testing

// h2spec-like expectations on a ``RawConnection``: each waits up to `timeout` (3 s) for frames from the peer,
// skips what does not decide it (SETTINGS, WINDOW_UPDATE, responses…), and records an issue naming what came
// instead.

extension RawConnection {
    static let expectationTimeout: Duration = .seconds(3)

    /// A connection error (RFC 9113 §5.4.1): a GOAWAY with one of `codes`. The connection closing without a GOAWAY
    /// is accepted too, as h2spec does (sending GOAWAY first is a SHOULD), unless `requireGoAway`.
    @discardableResult
    func expectConnectionError(
        _ codes: WireError..., requireGoAway: Bool = false, timeout: Duration = expectationTimeout,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async -> RawFrame? {
        var seen: [String] = []
        let deadline = ContinuousClock.now + timeout
        while true {
            let event = await nextFrame(timeout: deadline - ContinuousClock.now)
            switch event {
            case .frame(let frame) where frame.type == FrameType.goaway:
                if let code = frame.errorCode, codes.contains(code) { return frame }
                Issue.record("expected a connection error \(codes), got \(frame) after \(seen)", sourceLocation: sourceLocation)
                return frame
            case .frame(let frame):
                seen.append("\(frame)")
            case .closed:
                if requireGoAway { Issue.record("the connection closed without a GOAWAY \(codes) after \(seen)", sourceLocation: sourceLocation) }
                return nil
            case .timedOut:
                Issue.record("expected a connection error \(codes), got no GOAWAY within \(timeout) after \(seen)", sourceLocation: sourceLocation)
                return nil
            }
        }
    }

    /// A stream error (RFC 9113 §5.4.2): RST_STREAM on `streamID` with one of `codes`, or a connection error with one
    /// of them (§5.4: "an endpoint MAY … treat a stream error as a connection error"; a close is accepted as
    /// h2spec does). A RST_STREAM with another code is noted and waited past.
    func expectStreamError(
        streamID: UInt32, _ codes: WireError..., timeout: Duration = expectationTimeout, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        var seen: [String] = []
        let deadline = ContinuousClock.now + timeout
        while true {
            let event = await nextFrame(timeout: deadline - ContinuousClock.now)
            switch event {
            case .frame(let frame) where frame.type == FrameType.rstStream && frame.streamID == streamID:
                if let code = frame.errorCode, codes.contains(code) { return }
                seen.append("\(frame)")
            case .frame(let frame) where frame.type == FrameType.goaway:
                if let code = frame.errorCode, codes.contains(code) { return }
                Issue.record("expected a stream error \(codes) on stream \(streamID), got \(frame) after \(seen)", sourceLocation: sourceLocation)
                return
            case .frame(let frame):
                seen.append("\(frame)")
            case .closed:
                return
            case .timedOut:
                Issue.record(
                    "expected a stream error \(codes) on stream \(streamID), got none within \(timeout) after \(seen)", sourceLocation: sourceLocation)
                return
            }
        }
    }

    /// The first frame that `matches`; a GOAWAY, a RST_STREAM that `matches` does not accept, or the close first
    /// records an issue (`description` says what was awaited).
    @discardableResult
    func expectFrame(
        _ description: String, timeout: Duration = expectationTimeout, sourceLocation: SourceLocation = #_sourceLocation,
        where matches: (RawFrame) -> Bool
    ) async -> RawFrame? {
        var seen: [String] = []
        let deadline = ContinuousClock.now + timeout
        while true {
            let event = await nextFrame(timeout: deadline - ContinuousClock.now)
            switch event {
            case .frame(let frame) where matches(frame):
                return frame
            case .frame(let frame) where frame.type == FrameType.goaway || frame.type == FrameType.rstStream:
                Issue.record("expected \(description), got \(frame) after \(seen)", sourceLocation: sourceLocation)
                return nil
            case .frame(let frame):
                seen.append("\(frame)")
            case .closed, .timedOut:
                Issue.record("expected \(description), got \(event) within \(timeout) after \(seen)", sourceLocation: sourceLocation)
                return nil
            }
        }
    }

    /// The response to the request on `streamID`: a HEADERS frame with `:status` 200 (RST_STREAM or GOAWAY fail).
    @discardableResult
    func expectResponse(streamID: UInt32, status: Int? = 200, sourceLocation: SourceLocation = #_sourceLocation) async -> RawFrame? {
        let frame = await expectFrame("a response (HEADERS) on stream \(streamID)", sourceLocation: sourceLocation) {
            $0.type == FrameType.headers && $0.streamID == streamID
        }
        if let frame, let status, frame.has(FrameFlag.endHeaders) {
            #expect(HPACK.status(of: frame.headerBlockFragment) == status, "the response's :status", sourceLocation: sourceLocation)
        }
        return frame
    }

    /// A PING with the ACK flag and `data` as its payload.
    func expectPingAck(_ data: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) async {
        let frame = await expectFrame("a PING ACK", sourceLocation: sourceLocation) { $0.isPingAck }
        if let frame { #expect(frame.payload == data, "the PING ACK echoes the PING's payload", sourceLocation: sourceLocation) }
    }

    /// The connection is still usable: a PING sent now gets its ACK, with no GOAWAY or close before it.
    func expectConnectionAlive(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let data = Array("alive?!!".utf8)
        try await send(.ping(data))
        await expectPingAck(data, sourceLocation: sourceLocation)
    }
}

/// The result of `task` within `limit`: `nil` (and the task cancelled) if it takes longer.
func outcome<T: Sendable>(of task: Task<T, any Error>, within limit: Duration) async -> Result<T, any Error>? {
    let fired = RawConnection.Flag()
    let timer = Task {
        try await Task.sleep(for: limit)
        fired.set()
        task.cancel()
    }
    let result = await task.result
    timer.cancel()
    return fired.isSet ? nil : result
}
