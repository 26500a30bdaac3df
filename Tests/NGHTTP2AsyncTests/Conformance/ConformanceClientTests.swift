import Foundation
import HTTPTypes
import NGHTTP2
import Testing
@testable import NGHTTP2Async

/// A raw-frame server on 127.0.0.1 (h2c) that misbehaves towards our `ClientSession`: the client must answer on the
/// wire as RFC 9113 says (GOAWAY or RST_STREAM with the right code), and the request must fail with a typed
/// `HTTP2Error`, without a crash or a hang.
@Suite(.timeLimit(.minutes(2)))
struct ConformanceClientTests {
    // MARK: - Baseline

    /// RFC 9113 §8.1: "An HTTP message (request or response) consists of: one HEADERS frame … containing the header
    /// section …; zero or more DATA frames containing the message content". The raw server's well-formed answer is
    /// received (so the failures below are about what is wrong, not about the raw server).
    @Test func section8_1_aWellFormedResponseIsReceived() async throws {
        try await withMisbehavingServer { peer in
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(.headers(stream, peer.response()), .data(stream, Array("raw hello".utf8), endStream: true))
            let result = await outcome(of: request, within: .seconds(3))
            #expect(try result?.get() == Array("raw hello".utf8))
        }
    }

    /// RFC 9113 §6.7: "Receivers of a PING frame that does not include an ACK flag MUST send a PING frame with the ACK
    /// flag set in response, with an identical frame payload."
    @Test func section6_7_aPingFromTheServerIsAnswered() async throws {
        try await withMisbehavingServer { peer in
            let data = Array("srvping!".utf8)
            try await peer.connection.send(.ping(data))
            await peer.connection.expectPingAck(data)
        }
    }

    // MARK: - SETTINGS

    /// RFC 9113 §6.5: "A SETTINGS frame with a length other than a multiple of 6 octets MUST be treated as a connection
    /// error (Section 5.4.1) of type FRAME_SIZE_ERROR."
    @Test func section6_5_settingsWithLengthNotAMultipleOfSixIsFrameSizeError() async throws {
        try await withMisbehavingServer { peer in
            let (request, _) = try await peer.startRequest()
            var settings = RawFrame.settings([(SettingID.maxConcurrentStreams, UInt32(10))])
            settings.payload.removeLast()
            settings.length = 5
            try await peer.connection.send(settings)
            await peer.connection.expectConnectionError(.frameSizeError, requireGoAway: true)
            await expectFailure(of: request, .protocolViolation)
        }
    }

    /// RFC 9113 §6.5: "Receipt of a SETTINGS frame with the ACK flag set and a length field value other than 0 MUST be
    /// treated as a connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
    @Test func section6_5_settingsAckWithPayloadIsFrameSizeError() async throws {
        try await withMisbehavingServer { peer in
            let (request, _) = try await peer.startRequest()
            var ack = RawFrame.settings([(SettingID.maxConcurrentStreams, UInt32(10))])
            ack.flags = FrameFlag.ack
            try await peer.connection.send(ack)
            await peer.connection.expectConnectionError(.frameSizeError, requireGoAway: true)
            await expectFailure(of: request, .protocolViolation)
        }
    }

    /// RFC 9113 §6.5.2, SETTINGS_ENABLE_PUSH: "A server MUST NOT explicitly set this value to 1. … A client MUST treat
    /// receipt of a SETTINGS frame with SETTINGS_ENABLE_PUSH set to 1 as a connection error (Section 5.4.1) of type
    /// PROTOCOL_ERROR."
    @Test func section6_5_2_enablePushFromAServerIsProtocolError() async throws {
        try await withMisbehavingServer { peer in
            let (request, _) = try await peer.startRequest()
            try await peer.connection.send(.settings([(SettingID.enablePush, UInt32(1))]))
            await peer.connection.expectConnectionError(.protocolError, requireGoAway: true)
            await expectFailure(of: request, .protocolViolation)
        }
    }

    /// RFC 9113 §6.5.2, SETTINGS_INITIAL_WINDOW_SIZE: "Values above the maximum flow-control window size of 2^31-1 MUST
    /// be treated as a connection error (Section 5.4.1) of type FLOW_CONTROL_ERROR."
    @Test func section6_5_2_initialWindowSizeAboveTheMaximumIsFlowControlError() async throws {
        try await withMisbehavingServer { peer in
            let (request, _) = try await peer.startRequest()
            try await peer.connection.send(.settings([(SettingID.initialWindowSize, UInt32(1) << 31)]))
            await peer.connection.expectConnectionError(.flowControlError, requireGoAway: true)
            await expectFailure(of: request, .protocolViolation)
        }
    }

    /// RFC 9113 §6.5.2, SETTINGS_MAX_FRAME_SIZE: "Values outside this range MUST be treated as a connection error
    /// (Section 5.4.1) of type PROTOCOL_ERROR." (16,383 is below 2^14.)
    @Test func section6_5_2_maxFrameSizeOutOfRangeIsProtocolError() async throws {
        try await withMisbehavingServer { peer in
            let (request, _) = try await peer.startRequest()
            try await peer.connection.send(.settings([(SettingID.maxFrameSize, UInt32(16_383))]))
            await peer.connection.expectConnectionError(.protocolError, requireGoAway: true)
            await expectFailure(of: request, .protocolViolation)
        }
    }

    // MARK: - Frames and streams

    /// RFC 9113 §5.1, idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be
    /// treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR." (DATA on stream 3, which the client has
    /// not opened.)
    @Test func section5_1_dataOnAnIdleStreamIsProtocolError() async throws {
        try await withMisbehavingServer { peer in
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(.data(stream + 2, Array("idle".utf8)))
            await peer.connection.expectConnectionError(.protocolError, requireGoAway: true)
            await expectFailure(of: request, .protocolViolation)
        }
    }

    /// RFC 9113 §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size defined in
    /// SETTINGS_MAX_FRAME_SIZE".
    @Test func section4_2_frameLargerThanTheClientsMaxFrameSizeIsFrameSizeError() async throws {
        try await withMisbehavingServer { peer in
            let maxFrameSize = peer.clientSettings.settings.last { $0.id == SettingID.maxFrameSize }.map { Int($0.value) } ?? 16_384
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(.headers(stream, peer.response()), .data(stream, Array(repeating: 0x62, count: maxFrameSize + 1), endStream: true))
            await peer.connection.expectStreamError(streamID: stream, .frameSizeError)
            await expectFailure(of: request, .streamReset, .protocolViolation)
        }
    }

    /// RFC 9113 §4.3: "A decoding error in a field block MUST be treated as a connection error (Section 5.4.1) of type
    /// COMPRESSION_ERROR." (RFC 7541 §6.1: index 0 "MUST be treated as a decoding error".)
    @Test func section4_3_undecodableResponseFieldBlockIsCompressionError() async throws {
        try await withMisbehavingServer { peer in
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(.headers(stream, HPACK.indexed(8) + HPACK.indexed(0), endStream: true))
            await peer.connection.expectConnectionError(.compressionError, requireGoAway: true)
            await expectFailure(of: request, .protocolViolation)
        }
    }

    /// RFC 9113 §6.6: "PUSH_PROMISE MUST NOT be sent if the SETTINGS_ENABLE_PUSH setting of the peer endpoint is set to
    /// 0. An endpoint that has set this setting and has received acknowledgment MUST treat the receipt of a PUSH_PROMISE
    /// frame as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test func section6_6_pushPromiseWhenPushIsDisabledIsProtocolError() async throws {
        try await withMisbehavingServer { peer in
            #expect(peer.clientSettings.settings.contains { $0.id == SettingID.enablePush && $0.value == 0 }, "the client sends ENABLE_PUSH = 0")
            let (request, stream) = try await peer.startRequest()
            let promised = HPACK.block([(":method", "GET"), (":scheme", "http"), (":path", "/pushed"), (":authority", "127.0.0.1")])
            try await peer.connection.send(.pushPromise(stream, promised: 2, promised))
            await peer.connection.expectConnectionError(.protocolError, requireGoAway: true)
            await expectFailure(of: request, .protocolViolation)
        }
    }

    /// RFC 9113 §6.9.1: "If a sender receives a WINDOW_UPDATE that causes a flow-control window to exceed this maximum,
    /// it MUST terminate either the stream or the connection, as appropriate. … for the connection, a GOAWAY frame with
    /// an error code of FLOW_CONTROL_ERROR is sent."
    @Test func section6_9_1_connectionWindowOverflowIsFlowControlError() async throws {
        try await withMisbehavingServer { peer in
            let (request, _) = try await peer.startRequest()
            try await peer.connection.send(.windowUpdate(0, 0x7fff_ffff))
            await peer.connection.expectConnectionError(.flowControlError, requireGoAway: true)
            await expectFailure(of: request, .protocolViolation)
        }
    }

    /// RFC 9113 §6.9.1: "For streams, the sender sends a RST_STREAM with an error code of FLOW_CONTROL_ERROR".
    @Test func section6_9_1_streamWindowOverflowIsFlowControlError() async throws {
        try await withMisbehavingServer { peer in
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(.windowUpdate(stream, 0x7fff_ffff))
            await peer.connection.expectStreamError(streamID: stream, .flowControlError)
            let error = await expectFailure(of: request, .streamReset, .protocolViolation)
            if error?.code == .streamReset { #expect(error?.errorCode == .flowControlError && error?.byPeer == false, "\(error!)") }
        }
    }

    /// RFC 9113 §6.8: "Endpoints MUST NOT increase the value they send in the last stream identifier, since the peers
    /// might already have retried unprocessed requests on another connection." A server that does anyway cannot make
    /// the client take a request the first GOAWAY left unprocessed (and so safe to retry, §8.7) as processed.
    @Test func section6_8_aSecondGoAwayWithAHigherLastStreamIDDoesNotReviveARequest() async throws {
        try await withMisbehavingServer { peer in
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(.goaway(lastStreamID: 0, .noError), .goaway(lastStreamID: stream, .noError))
            let error = await expectFailure(of: request, .notProcessed)
            #expect(error?.isRetrySafe == true, "a request above the first GOAWAY's last stream ID is safe to retry")
            // Whatever the client does next: at most a GOAWAY.
            switch await peer.connection.nextFrame(timeout: .milliseconds(500)) {
            case .frame(let frame) where frame.type == FrameType.goaway:
                // Treating the peer's broken MUST NOT as a connection error is allowed (§5.4.1).
                #expect([.noError, .protocolError].contains(frame.errorCode), "\(frame)")
            default: break
            }
        }
    }

    /// RFC 9113 §5.1, closed: "an endpoint that receives any frames after receiving a frame with the END_STREAM flag set
    /// MUST treat that as a connection error (Section 5.4.1) of type STREAM_CLOSED, unless the frame is permitted as
    /// described below."
    @Test func section5_1_dataAfterEndStreamIsStreamClosedConnectionError() async throws {
        try await withMisbehavingServer { peer in
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(.headers(stream, peer.response(), endStream: true), .data(stream, Array("late".utf8)))
            await peer.connection.expectConnectionError(.streamClosed)
            _ = await outcome(of: request, within: .seconds(3))  // complete before the DATA; only the wire is checked
        }
    }

    /// RFC 9113 §5.1, half-closed (remote): "If an endpoint receives additional frames, other than WINDOW_UPDATE,
    /// PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST respond with a stream error (Section 5.4.2)
    /// of type STREAM_CLOSED." (The response ended while the request body is still being sent.)
    @Test func section5_1_dataOnAHalfClosedRemoteStreamIsStreamClosed() async throws {
        try await withMisbehavingServer { peer in
            let writer = BodyGate()
            let request = Task {
                let response = try await peer.client.post("/upload", body: .writer { body in
                    try await body.write(Array("first".utf8))
                    await writer.wait()
                })
                return try await response.bytes()
            }
            let stream = try #require(
                await peer.connection.expectFrame("the request's HEADERS") { $0.type == FrameType.headers }?.streamID)
            try await peer.connection.send(.headers(stream, peer.response(), endStream: true), .data(stream, Array("late".utf8)))
            await peer.connection.expectStreamError(streamID: stream, .streamClosed)
            writer.open()
            _ = await outcome(of: request, within: .seconds(3))
        }
    }

    // MARK: - Malformed responses (§8.1.1: "MUST be treated as a stream error (Section 5.4.2) of type PROTOCOL_ERROR")

    /// RFC 9113 §8.3.2: "For HTTP/2 responses, a single ":status" pseudo-header field is defined that carries the HTTP
    /// status code field … This pseudo-header field MUST be included in all responses, including interim responses;
    /// otherwise, the response is malformed (Section 8.1.1)."
    @Test func section8_3_2_responseWithoutStatusIsProtocolError() async throws {
        try await withMisbehavingServer { peer in
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(.headers(stream, HPACK.block([("content-type", "text/plain")]), endStream: true))
            await peer.connection.expectStreamError(streamID: stream, .protocolError)
            await expectFailure(of: request, .streamReset, .malformedMessage, .protocolViolation)
        }
    }

    /// RFC 9113 §8.3: "Pseudo-header fields defined for requests MUST NOT appear in responses"; "Endpoints MUST treat a
    /// request or response that contains undefined or invalid pseudo-header fields as malformed (Section 8.1.1)."
    @Test func section8_3_responseWithARequestPseudoHeaderFieldIsProtocolError() async throws {
        try await withMisbehavingServer { peer in
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(.headers(stream, HPACK.block([(":status", "200"), (":path", "/")]), endStream: true))
            await peer.connection.expectStreamError(streamID: stream, .protocolError)
            await expectFailure(of: request, .streamReset, .malformedMessage, .protocolViolation)
        }
    }

    /// RFC 9113 §8.1: a response is "one HEADERS frame … containing the header section" first, then "zero or more DATA
    /// frames"; DATA before any HEADERS makes it malformed, and §8.1.1: "Malformed requests or responses that are
    /// detected MUST be treated as a stream error (Section 5.4.2) of type PROTOCOL_ERROR."
    @Test func section8_1_dataBeforeTheResponseHeadersIsProtocolError() async throws {
        try await withMisbehavingServer { peer in
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(.data(stream, Array("early".utf8)), .headers(stream, peer.response(), endStream: true))
            await peer.connection.expectStreamError(streamID: stream, .protocolError)
            await expectFailure(of: request, .streamReset, .malformedMessage, .protocolViolation)
        }
    }

    /// RFC 9113 §8.1.1: "A request or response is also malformed if the value of a content-length header field does not
    /// equal the sum of the DATA frame payload lengths that form the content".
    @Test func section8_1_1_responseDataNotMatchingContentLengthIsProtocolError() async throws {
        try await withMisbehavingServer { peer in
            let (request, stream) = try await peer.startRequest()
            try await peer.connection.send(
                .headers(stream, peer.response([("content-length", "2")])), .data(stream, Array("too long".utf8), endStream: true))
            await peer.connection.expectStreamError(streamID: stream, .protocolError)
            await expectFailure(of: request, .streamReset, .malformedMessage, .protocolViolation)
        }
    }
}

// MARK: - The misbehaving server

/// A raw server, a `ClientSession` connected to it, and the accepted raw connection after the SETTINGS exchange.
struct MisbehavingPeer: Sendable {
    let server: RawServer
    let client: ClientSession
    let connection: RawConnection
    /// The client's first SETTINGS frame.
    let clientSettings: RawFrame

    /// A response header block: `:status` 200 and `extra`, all literals.
    func response(_ extra: [(String, String)] = []) -> [UInt8] {
        HPACK.block([(":status", "200")] + extra)
    }

    /// Starts a GET (its body collected) and reads its HEADERS frame from the wire.
    func startRequest(_ path: String = "/", sourceLocation: SourceLocation = #_sourceLocation) async throws -> (Task<[UInt8], any Error>, UInt32) {
        let client = self.client
        let request = Task { try await client.get(path).bytes() }
        let headers = await connection.expectFrame("the request's HEADERS", sourceLocation: sourceLocation) { $0.type == FrameType.headers }
        let stream = try #require(headers?.streamID, sourceLocation: sourceLocation)
        return (request, stream)
    }
}

/// Runs `body` with a client connected to a raw server that has sent its SETTINGS (`settings`) and ACKed the client's.
func withMisbehavingServer(
    settings: [(UInt16, UInt32)] = [], sourceLocation: SourceLocation = #_sourceLocation, _ body: (MisbehavingPeer) async throws -> Void
) async throws {
    let server = try await RawServer.start()
    let connecting = Task { try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)") }
    let connection = try await server.accept()
    let client: ClientSession
    let clientSettings: RawFrame
    do {
        guard await connection.readPreface(timeout: .seconds(5)) else { throw RawConnectionError(description: "no client preface") }
        var first: RawFrame?
        while first == nil {
            switch await connection.nextFrame(timeout: .seconds(5)) {
            case .frame(let frame) where frame.isSettings: first = frame
            case .frame: continue
            case .closed, .timedOut: throw RawConnectionError(description: "no SETTINGS from the client")
            }
        }
        clientSettings = first!
        try await connection.send(.settings(settings), .settingsAck)
        client = try await connecting.value
        await connection.expectFrame("the client's SETTINGS ACK", sourceLocation: sourceLocation) { $0.isSettingsAck }
    } catch {
        connecting.cancel()
        await connection.close()
        await server.close()
        throw error
    }
    let peer = MisbehavingPeer(server: server, client: client, connection: connection, clientSettings: clientSettings)
    do {
        try await body(peer)
    } catch {
        await connection.close()
        await client.close()
        await server.close()
        throw error
    }
    await connection.close()
    await client.close()
    await server.close()
}

/// The request fails within 3 s with an `HTTP2Error` whose code is one of `codes`; returns it.
///
/// When the client itself ends the connection because the server broke the protocol, the code to expect is
/// ``HTTP2Error/Code/protocolViolation`` ("libnghttp2 rejected the connection's input or state (fatal): the connection
/// was closed with GOAWAY"), not ``HTTP2Error/Code/connectionClosed``, whose `errorCode` is only "the GOAWAY code if
/// one was received" and which cannot tell a broken server from one that went away.
@discardableResult
func expectFailure(
    of request: Task<[UInt8], any Error>, _ codes: HTTP2Error.Code..., sourceLocation: SourceLocation = #_sourceLocation
) async -> HTTP2Error? {
    guard let result = await outcome(of: request, within: RawConnection.expectationTimeout) else {
        Issue.record("the request neither failed nor succeeded within 3 s (expected \(codes))", sourceLocation: sourceLocation)
        return nil
    }
    switch result {
    case .success(let body):
        Issue.record("the request succeeded with \(body.count) bytes; expected an HTTP2Error \(codes)", sourceLocation: sourceLocation)
        return nil
    case .failure(let error as HTTP2Error):
        #expect(codes.contains(error.code), "the request failed with \(error.code): \(error); expected \(codes)", sourceLocation: sourceLocation)
        return error
    case .failure(let error):
        Issue.record("the request failed with \(type(of: error)) \(error), not an HTTP2Error \(codes)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Holds a request body open until the test lets it end.
final class BodyGate: @unchecked Sendable {  // state under the lock
    private let lock = NSLock()
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = lock.withLock {
                if isOpen { return true }
                waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func open() {
        let waiting = lock.withLock {
            isOpen = true
            defer { waiters = [] }
            return waiters
        }
        for waiter in waiting { waiter.resume() }
    }
}
