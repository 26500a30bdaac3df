import Foundation
import HTTPTypes
import Testing
@testable import NGHTTP2Async

/// RFC 9113 (HTTP/2) and RFC 7541 (HPACK) conformance of `ServerSession`, from the outside: raw frames written by
/// the test's own codec (no libnghttp2 on the client side), over cleartext and over TLS. Modelled on h2spec's
/// server cases; every test quotes the sentence it checks.
@Suite(.timeLimit(.minutes(2)))
struct ConformanceServerTests {
    // MARK: - §3.4 HTTP/2 connection preface

    /// RFC 9113 §3.4: "The server connection preface consists of a potentially empty SETTINGS frame (Section 6.5) that
    /// MUST be the first frame the server sends in the HTTP/2 connection."
    @Test(arguments: Transport.allCases)
    func section3_4_serverPrefaceIsASettingsFrame(_ transport: Transport) async throws {
        let server = try await ConformanceServer.start(transport)
        let connection = try await server.connect()
        try await connection.send(connectionPreface + RawFrame.settings().bytes)
        let first = await connection.nextFrame(timeout: RawConnection.expectationTimeout)
        guard case .frame(let frame) = first else {
            Issue.record("no frame from the server: \(first)")
            return
        }
        #expect(frame.isSettings, "the first frame is \(frame)")
        #expect(frame.streamID == 0)
        await connection.close()
        await server.close()
    }

    /// RFC 9113 §3.4: "Clients and servers MUST treat an invalid connection preface as a connection error
    /// (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section3_4_invalidPrefaceIsProtocolError(_ transport: Transport) async throws {
        let server = try await ConformanceServer.start(transport)
        let connection = try await server.connect()
        try await connection.send(Array("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n".utf8) + RawFrame.settings().bytes)
        await connection.expectConnectionError(.protocolError)
        await connection.close()
        await server.close()
    }

    /// RFC 9113 §3.4: "That is, the connection preface ... MUST be followed by a SETTINGS frame"; "Clients and servers
    /// MUST treat an invalid connection preface as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section3_4_prefaceNotFollowedBySettingsIsProtocolError(_ transport: Transport) async throws {
        let server = try await ConformanceServer.start(transport)
        let connection = try await server.connect()
        try await connection.send(connectionPreface + RawFrame.ping().bytes)
        await connection.expectConnectionError(.protocolError)
        await connection.close()
        await server.close()
    }

    // MARK: - §4.1 Frame format

    /// RFC 9113 §4.1: "Implementations MUST ignore and discard frames of unknown types."
    @Test(arguments: Transport.allCases)
    func section4_1_unknownFrameTypeIsIgnored(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.unknown(type: 0x16))
            try await connection.expectConnectionAlive()
        }
    }

    /// RFC 9113 §4.1: "Flags that have no defined semantics for a particular frame type MUST be ignored and MUST be
    /// left unset (0x00) when sending."
    @Test(arguments: Transport.allCases)
    func section4_1_undefinedFlagsAreIgnored(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            var ping = RawFrame.ping(Array("flagged!".utf8))
            ping.flags = 0xfe  // everything but ACK
            try await connection.send(ping)
            await connection.expectPingAck(Array("flagged!".utf8))
        }
    }

    /// RFC 9113 §4.1: "Reserved: A reserved 1-bit field. The semantics of this bit are undefined, and the bit MUST
    /// remain unset (0x00) when sending and MUST be ignored when receiving."
    @Test(arguments: Transport.allCases)
    func section4_1_reservedBitOfTheStreamIdentifierIsIgnored(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            var headers = RawFrame.headers(1, server.request(), endStream: true)
            headers.streamID = 0x8000_0001
            try await connection.send(headers)
            await connection.expectResponse(streamID: 1)
        }
    }

    // MARK: - §4.2 Frame size

    /// RFC 9113 §4.2: "All implementations MUST be capable of receiving and minimally processing frames up to 2^14
    /// octets in length, plus the 9-octet frame header."
    @Test(arguments: Transport.allCases)
    func section4_2_dataFrameOfTheMaximumSizeIsAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST")), .data(1, Array(repeating: 0x61, count: 16_384), endStream: true))
            await connection.expectResponse(streamID: 1)
        }
    }

    /// RFC 9113 §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size defined in
    /// SETTINGS_MAX_FRAME_SIZE".
    @Test(arguments: Transport.allCases)
    func section4_2_dataFrameLargerThanMaxFrameSizeIsFrameSizeError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, settings in
            let maxFrameSize = settings.settings.last { $0.id == SettingID.maxFrameSize }.map { Int($0.value) } ?? 16_384
            try await connection.send(
                .headers(1, server.request(method: "POST")), .data(1, Array(repeating: 0x61, count: maxFrameSize + 1), endStream: true))
            await connection.expectStreamError(streamID: 1, .frameSizeError)
        }
    }

    /// RFC 9113 §4.2: "A frame size error in a frame that could alter the state of the entire connection MUST be
    /// treated as a connection error (Section 5.4.1); this includes any frame carrying a field block (Section 4.3)
    /// (that is, HEADERS, PUSH_PROMISE, and CONTINUATION)".
    @Test(arguments: Transport.allCases)
    func section4_2_headersFrameLargerThanMaxFrameSizeIsFrameSizeConnectionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, settings in
            let maxFrameSize = settings.settings.last { $0.id == SettingID.maxFrameSize }.map { Int($0.value) } ?? 16_384
            try await connection.send(.headers(1, headerBlock(server.request(), paddedTo: maxFrameSize + 1), endStream: true))
            await connection.expectConnectionError(.frameSizeError)
        }
    }

    // MARK: - §4.3 Field section compression and decompression

    /// RFC 9113 §4.3: "A decoding error in a field block MUST be treated as a connection error (Section 5.4.1) of type
    /// COMPRESSION_ERROR."
    @Test(arguments: Transport.allCases)
    func section4_3_undecodableFieldBlockIsCompressionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            // A literal whose name says 5 octets and has one.
            try await connection.send(.headers(1, server.request() + [0x40, 0x05, 0x61], endStream: true))
            await connection.expectConnectionError(.compressionError)
        }
    }

    /// RFC 9113 §4.3: "Field blocks MUST be transmitted as a contiguous sequence of frames, with no interleaved frames
    /// of any other type or from any other stream." §6.2: "A receiver MUST treat the receipt of any other type of frame
    /// or a frame on a different stream as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section4_3_priorityFrameInsideAFieldBlockIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            let block = server.request()
            try await connection.send(
                .headers(1, Array(block[..<8]), endStream: true, endHeaders: false), .priority(1, dependsOn: 0),
                .continuation(1, Array(block[8...])))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §4.3: "Field blocks MUST be transmitted as a contiguous sequence of frames, with no interleaved frames
    /// of any other type or from any other stream."
    @Test(arguments: Transport.allCases)
    func section4_3_headersOfAnotherStreamInsideAFieldBlockIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            let block = server.request()
            try await connection.send(
                .headers(1, Array(block[..<8]), endStream: true, endHeaders: false), .headers(3, block, endStream: true),
                .continuation(1, Array(block[8...])))
            await connection.expectConnectionError(.protocolError)
        }
    }

    // MARK: - §5.1 Stream states: idle

    /// RFC 9113 §5.1, idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be
    /// treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section5_1_dataOnAnIdleStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.data(1, Array("test".utf8), endStream: true))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §5.1, idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be
    /// treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section5_1_rstStreamOnAnIdleStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.rstStream(1, .cancel))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §5.1, idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be
    /// treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section5_1_windowUpdateOnAnIdleStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.windowUpdate(1, 100))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §5.1, idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be
    /// treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section5_1_continuationOnAnIdleStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.continuation(1, server.request()))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §5.1, idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be
    /// treated as a connection error" — so PRIORITY on an idle stream is allowed.
    @Test(arguments: Transport.allCases)
    func section5_1_priorityOnAnIdleStreamIsAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.priority(3, dependsOn: 0), .headers(1, server.request(), endStream: true))
            await connection.expectResponse(streamID: 1)
        }
    }

    // MARK: - §5.1 Stream states: half-closed (remote)

    /// RFC 9113 §5.1, half-closed (remote): "If an endpoint receives additional frames, other than WINDOW_UPDATE,
    /// PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST respond with a stream error (Section 5.4.2)
    /// of type STREAM_CLOSED."
    @Test(arguments: Transport.allCases)
    func section5_1_dataOnAHalfClosedRemoteStreamIsStreamClosed(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true), .data(1, Array("test".utf8)))
            await connection.expectStreamError(streamID: 1, .streamClosed)
        }
    }

    /// RFC 9113 §5.1, half-closed (remote): "If an endpoint receives additional frames, other than WINDOW_UPDATE,
    /// PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST respond with a stream error (Section 5.4.2)
    /// of type STREAM_CLOSED."
    @Test(arguments: Transport.allCases)
    func section5_1_headersOnAHalfClosedRemoteStreamIsStreamClosed(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(), endStream: true), .headers(1, HPACK.block([("x-trailer", "1")]), endStream: true))
            await connection.expectStreamError(streamID: 1, .streamClosed)
        }
    }

    /// RFC 9113 §5.1, half-closed (remote): "… it MUST respond with a stream error (Section 5.4.2) of type
    /// STREAM_CLOSED." (A CONTINUATION after END_HEADERS also breaks §6.10, so PROTOCOL_ERROR is accepted too, as h2spec
    /// does.)
    @Test(arguments: Transport.allCases)
    func section5_1_continuationOnAHalfClosedRemoteStreamIsStreamClosed(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true), .continuation(1, HPACK.block([("x-more", "1")])))
            await connection.expectStreamError(streamID: 1, .streamClosed, .protocolError)
        }
    }

    /// RFC 9113 §5.1, half-closed (remote): "If an endpoint receives additional frames, other than WINDOW_UPDATE,
    /// PRIORITY, or RST_STREAM, …" — those three are allowed.
    @Test(arguments: Transport.allCases)
    func section5_1_windowUpdateAndPriorityOnAHalfClosedRemoteStreamAreAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true), .windowUpdate(1, 1000), .priority(1, dependsOn: 0))
            await connection.expectResponse(streamID: 1)
            try await connection.expectConnectionAlive()
        }
    }

    // MARK: - §5.1 Stream states: closed

    /// RFC 9113 §5.1, closed: "An endpoint that receives any frame other than PRIORITY after receiving a RST_STREAM
    /// MUST treat that as a stream error (Section 5.4.2) of type STREAM_CLOSED."
    @Test(arguments: Transport.allCases)
    func section5_1_dataAfterRstStreamIsStreamClosed(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(method: "POST")), .rstStream(1, .cancel), .data(1, Array("test".utf8)))
            await connection.expectStreamError(streamID: 1, .streamClosed)
        }
    }

    /// RFC 9113 §5.1, closed: "An endpoint that receives any frame other than PRIORITY after receiving a RST_STREAM
    /// MUST treat that as a stream error (Section 5.4.2) of type STREAM_CLOSED."
    @Test(arguments: Transport.allCases)
    func section5_1_headersAfterRstStreamIsStreamClosed(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST")), .rstStream(1, .cancel), .headers(1, HPACK.block([("x-trailer", "1")]), endStream: true))
            await connection.expectStreamError(streamID: 1, .streamClosed)
        }
    }

    /// RFC 9113 §5.1, closed: "An endpoint that receives any frame other than PRIORITY after receiving a RST_STREAM
    /// MUST treat that as a stream error (Section 5.4.2) of type STREAM_CLOSED." (PROTOCOL_ERROR accepted too, §6.10.)
    @Test(arguments: Transport.allCases)
    func section5_1_continuationAfterRstStreamIsStreamClosed(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST")), .rstStream(1, .cancel), .continuation(1, HPACK.block([("x-more", "1")])))
            await connection.expectStreamError(streamID: 1, .streamClosed, .protocolError)
        }
    }

    /// RFC 9113 §5.1, closed: "an endpoint that receives any frames after receiving a frame with the END_STREAM flag
    /// set MUST treat that as a connection error (Section 5.4.1) of type STREAM_CLOSED, unless the frame is permitted as
    /// described below." (Only WINDOW_UPDATE and RST_STREAM are.)
    @Test(arguments: Transport.allCases)
    func section5_1_dataOnAStreamClosedByEndStreamBothWaysIsStreamClosedConnectionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true))
            await connection.expectFrame("the end of the response on stream 1") { $0.streamID == 1 && $0.endsStream }
            try await connection.send(.data(1, Array("test".utf8)))
            await connection.expectConnectionError(.streamClosed)
        }
    }

    /// RFC 9113 §5.1, closed: "an endpoint that receives any frames after receiving a frame with the END_STREAM flag
    /// set MUST treat that as a connection error (Section 5.4.1) of type STREAM_CLOSED, unless the frame is permitted as
    /// described below."
    @Test(arguments: Transport.allCases)
    func section5_1_headersOnAStreamClosedByEndStreamBothWaysIsStreamClosedConnectionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true))
            await connection.expectFrame("the end of the response on stream 1") { $0.streamID == 1 && $0.endsStream }
            try await connection.send(.headers(1, HPACK.block([("x-trailer", "1")]), endStream: true))
            await connection.expectConnectionError(.streamClosed)
        }
    }

    // MARK: - §5.1.1 Stream identifiers

    /// RFC 9113 §5.1.1: "Streams initiated by a client MUST use odd-numbered stream identifiers"; "An endpoint that
    /// receives an unexpected stream identifier MUST respond with a connection error (Section 5.4.1) of type
    /// PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section5_1_1_evenStreamIdentifierFromAClientIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(2, server.request(), endStream: true))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §5.1.1: "The identifier of a newly established stream MUST be numerically greater than all streams that
    /// the initiating endpoint has opened or reserved. … An endpoint that receives an unexpected stream identifier MUST
    /// respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section5_1_1_streamIdentifierLowerThanAnOpenedOneIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(5, server.request(), endStream: true), .headers(3, server.request(), endStream: true))
            await connection.expectConnectionError(.protocolError)
        }
    }

    // MARK: - §5.1.2 Stream concurrency

    /// RFC 9113 §5.1.2: "An endpoint that receives a HEADERS frame that causes its advertised concurrent stream limit to
    /// be exceeded MUST treat this as a stream error (Section 5.4.2) of type PROTOCOL_ERROR or REFUSED_STREAM."
    @Test(arguments: Transport.allCases)
    func section5_1_2_streamBeyondMaxConcurrentStreamsIsRefused(_ transport: Transport) async throws {
        try await withConformanceServer(transport, configure: { $0.maxConcurrentStreams = 3 }) { server, connection, settings in
            let limit = try #require(settings.settings.last { $0.id == SettingID.maxConcurrentStreams }?.value, "advertised limit")
            // One HEADERS more than the limit, all in one write, none ending its stream: the server has not answered
            // (or closed) any of them when the last arrives.
            let streams = (0...limit).map { 1 + 2 * $0 }
            try await connection.send(wire(streams.map { RawFrame.headers($0, server.request(method: "POST")) }))
            await connection.expectStreamError(streamID: streams.last!, .refusedStream, .protocolError)
        }
    }

    // MARK: - §5.3.1 Stream dependencies

    /// RFC 9113 §5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as a stream error
    /// (Section 5.4.2) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section5_3_1_headersDependingOnItselfIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true, priority: .init(dependency: 1)))
            await connection.expectStreamError(streamID: 1, .protocolError)
        }
    }

    /// RFC 9113 §5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as a stream error
    /// (Section 5.4.2) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section5_3_1_priorityDependingOnItselfIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.priority(1, dependsOn: 1))
            await connection.expectStreamError(streamID: 1, .protocolError)
        }
    }

    // MARK: - §5.4.1 Connection error handling

    /// RFC 9113 §5.4.1: "An endpoint that encounters a connection error SHOULD first send a GOAWAY frame
    /// (Section 6.8) with the stream identifier of the last stream that it successfully received from its peer. …
    /// After sending the GOAWAY frame for an error condition, the endpoint MUST close the TCP connection."
    @Test(arguments: Transport.allCases)
    func section5_4_1_connectionErrorSendsGoAwayWithTheLastStreamAndCloses(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true))
            await connection.expectResponse(streamID: 1)
            var ping = RawFrame.ping()
            ping.payload.removeLast()
            ping.length = 7
            try await connection.send(ping)
            let goaway = await connection.expectConnectionError(.frameSizeError, requireGoAway: true)
            #expect(goaway?.goawayLastStreamID == 1, "the last stream the server received")
            #expect(await connection.waitForClose(timeout: .seconds(3)), "the server closes the connection after its GOAWAY")
        }
    }

    /// RFC 9113 §5.4.1, and for each connection its own: a connection error ends that connection only; a
    /// well-behaved client on another connection keeps getting answers, and new connections are accepted.
    @Test(arguments: Transport.allCases)
    func section5_4_1_aConnectionErrorLeavesOtherConnectionsWorking(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            let client = try await server.client()
            #expect(try await client.get("/before").text() == ConformanceServer.body)
            try await connection.send(.data(0, Array("bad".utf8)))
            await connection.expectConnectionError(.protocolError, requireGoAway: true)
            #expect(try await client.get("/after").text() == ConformanceServer.body)
            let fresh = try await server.client()
            #expect(try await fresh.get("/fresh").text() == ConformanceServer.body)
            await fresh.close()
            await client.close()
        }
    }

    // MARK: - §5.5 Extending HTTP/2

    /// RFC 9113 §5.5: "Implementations MUST ignore unknown or unsupported values in all extensible protocol elements
    /// and MUST discard frames that have unknown or unsupported types." (On an open stream too.)
    @Test(arguments: Transport.allCases)
    func section5_5_unknownExtensionFrameOnAStreamIsIgnored(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST")), .unknown(type: 0x20, 1), .data(1, Array("body".utf8), endStream: true))
            await connection.expectResponse(streamID: 1)
        }
    }

    /// RFC 9113 §5.5: "Extension frames that appear in the middle of a field block (Section 4.3) are not permitted;
    /// these MUST be treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section5_5_unknownExtensionFrameInsideAFieldBlockIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            let block = server.request()
            try await connection.send(
                .headers(1, Array(block[..<8]), endStream: true, endHeaders: false), .unknown(type: 0x20, 1),
                .continuation(1, Array(block[8...])))
            await connection.expectConnectionError(.protocolError)
        }
    }

    // MARK: - §6.1 DATA

    /// RFC 9113 §6.1: "If a DATA frame is received whose Stream Identifier field is 0x00, the recipient MUST respond with
    /// a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_1_dataOnStreamZeroIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.data(0, Array("test".utf8)))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.1: "If a DATA frame is received whose stream is not in the "open" or "half-closed (local)" state, the
    /// recipient MUST respond with a stream error (Section 5.4.2) of type STREAM_CLOSED."
    @Test(arguments: Transport.allCases)
    func section6_1_dataOnAStreamNotOpenIsStreamClosed(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true), .data(1, Array("test".utf8), endStream: true))
            await connection.expectStreamError(streamID: 1, .streamClosed)
        }
    }

    /// RFC 9113 §6.1: "If the length of the padding is the length of the frame payload or greater, the recipient MUST
    /// treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_1_dataWithPadLengthNotBelowThePayloadLengthIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            // Payload: Pad Length 6, then 4 octets.
            let data = RawFrame(type: FrameType.data, flags: FrameFlag.padded | FrameFlag.endStream, streamID: 1, payload: [6] + Array("test".utf8))
            try await connection.send(.headers(1, server.request(method: "POST")), data)
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.1: "If the length of the padding is the length of the frame payload or greater, the recipient MUST
    /// treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR." — also when the bad frame arrives after
    /// the server has answered (h2spec's timing: each frame its own write): §5.1 has frames on a stream the endpoint
    /// reset "minimally process[ed]", and this check is on the frame itself.
    @Test(arguments: Transport.allCases)
    func section6_1_dataWithBadPadLengthAfterTheResponseIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(method: "POST")))
            await connection.expectFrame("the end of the response on stream 1") { $0.streamID == 1 && $0.endsStream }
            let data = RawFrame(type: FrameType.data, flags: FrameFlag.padded | FrameFlag.endStream, streamID: 1, payload: [6] + Array("test".utf8))
            try await connection.send(data)
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.1: "Padding octets MUST be set to zero when sending." — and a padded DATA frame is processed.
    @Test(arguments: Transport.allCases)
    func section6_1_paddedDataIsAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(method: "POST")), .data(1, Array("test".utf8), endStream: true, padLength: 8))
            await connection.expectResponse(streamID: 1)
        }
    }

    // MARK: - §6.2 HEADERS

    /// RFC 9113 §6.2: "If a HEADERS frame is received whose Stream Identifier field is 0x00, the recipient MUST respond
    /// with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_2_headersOnStreamZeroIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(0, server.request(), endStream: true))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.2: "If the length of the padding is the length of the frame payload or greater, the recipient MUST
    /// treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_2_headersWithPadLengthNotBelowThePayloadLengthIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            let block = server.request()
            let headers = RawFrame(
                type: FrameType.headers, flags: FrameFlag.padded | FrameFlag.endHeaders | FrameFlag.endStream, streamID: 1,
                payload: [UInt8(min(255, block.count + 1))] + block)
            try await connection.send(headers)
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.2: "A HEADERS frame without the END_HEADERS flag set MUST be followed by a CONTINUATION frame for the
    /// same stream. A receiver MUST treat the receipt of any other type of frame or a frame on a different stream as a
    /// connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_2_headersWithoutEndHeadersFollowedByDataIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(method: "POST"), endHeaders: false), .data(1, Array("test".utf8), endStream: true))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.2: "A receiver MUST treat the receipt of any other type of frame or a frame on a different stream as
    /// a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_2_headersWithoutEndHeadersFollowedByAnotherStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            let block = server.request()
            try await connection.send(
                .headers(1, Array(block[..<8]), endStream: true, endHeaders: false), .continuation(3, Array(block[8...])))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.2: the PADDED and PRIORITY flags ("Pad Length", "Exclusive", "Stream Dependency", "Weight") are part
    /// of a valid HEADERS frame, which is processed.
    @Test(arguments: Transport.allCases)
    func section6_2_paddedHeadersWithPriorityAreAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true, padLength: 10, priority: .init(dependency: 0, weight: 200)))
            await connection.expectResponse(streamID: 1)
        }
    }

    // MARK: - §6.3 PRIORITY

    /// RFC 9113 §6.3: "If a PRIORITY frame is received with a stream identifier of 0x00, the recipient MUST respond with
    /// a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_3_priorityOnStreamZeroIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.priority(0, dependsOn: 1))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.3: "A PRIORITY frame with a length other than 5 octets MUST be treated as a stream error
    /// (Section 5.4.2) of type FRAME_SIZE_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_3_priorityWithLengthOtherThanFiveIsFrameSizeError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            var priority = RawFrame.priority(1, dependsOn: 0)
            priority.payload.removeLast()
            priority.length = 4
            try await connection.send(.headers(1, server.request(method: "POST")), priority)
            await connection.expectStreamError(streamID: 1, .frameSizeError)
        }
    }

    // MARK: - §6.4 RST_STREAM

    /// RFC 9113 §6.4: "If a RST_STREAM frame is received with a stream identifier of 0x00, the recipient MUST treat this
    /// as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_4_rstStreamOnStreamZeroIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.rstStream(0, .cancel))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.4: "If a RST_STREAM frame identifying an idle stream is received, the recipient MUST treat this as a
    /// connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_4_rstStreamOnAnIdleStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true), .rstStream(3, .cancel))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.4: "A RST_STREAM frame with a length other than 4 octets MUST be treated as a connection error
    /// (Section 5.4.1) of type FRAME_SIZE_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_4_rstStreamWithLengthOtherThanFourIsFrameSizeError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            var reset = RawFrame.rstStream(1, .cancel)
            reset.payload.removeLast()
            reset.length = 3
            try await connection.send(.headers(1, server.request(method: "POST")), reset)
            await connection.expectConnectionError(.frameSizeError)
        }
    }

    // MARK: - §6.5 SETTINGS

    /// RFC 9113 §6.5: "Receipt of a SETTINGS frame with the ACK flag set and a length field value other than 0 MUST be
    /// treated as a connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_5_settingsAckWithPayloadIsFrameSizeError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            var ack = RawFrame.settings([(SettingID.enablePush, 0)])
            ack.flags = FrameFlag.ack
            try await connection.send(ack)
            await connection.expectConnectionError(.frameSizeError)
        }
    }

    /// RFC 9113 §6.5: "If an endpoint receives a SETTINGS frame whose Stream Identifier field is anything other than
    /// 0x00, the endpoint MUST respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_5_settingsOnAStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            var settings = RawFrame.settings([(SettingID.maxConcurrentStreams, 100)])
            settings.streamID = 1
            try await connection.send(settings)
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.5: "A SETTINGS frame with a length other than a multiple of 6 octets MUST be treated as a connection
    /// error (Section 5.4.1) of type FRAME_SIZE_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_5_settingsWithLengthNotAMultipleOfSixIsFrameSizeError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            var settings = RawFrame.settings([(SettingID.maxConcurrentStreams, 100)])
            settings.payload.removeLast(3)
            settings.length = 3
            try await connection.send(settings)
            await connection.expectConnectionError(.frameSizeError)
        }
    }

    /// RFC 9113 §6.5.2, SETTINGS_ENABLE_PUSH: "Any value other than 0 or 1 MUST be treated as a connection error
    /// (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_5_2_enablePushOtherThanZeroOrOneIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.settings([(SettingID.enablePush, UInt32(2))]))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.5.2, SETTINGS_INITIAL_WINDOW_SIZE: "Values above the maximum flow-control window size of 2^31-1 MUST
    /// be treated as a connection error (Section 5.4.1) of type FLOW_CONTROL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_5_2_initialWindowSizeAboveTheMaximumIsFlowControlError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.settings([(SettingID.initialWindowSize, 1 << 31)]))
            await connection.expectConnectionError(.flowControlError)
        }
    }

    /// RFC 9113 §6.5.2, SETTINGS_MAX_FRAME_SIZE: "The initial value is 2^14 (16,384) octets. The value advertised by an
    /// endpoint MUST be between this initial value and the maximum allowed frame size (2^24-1 or 16,777,215 octets),
    /// inclusive. Values outside this range MUST be treated as a connection error (Section 5.4.1) of type
    /// PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases, [UInt32(16_383), 16_777_216])
    func section6_5_2_maxFrameSizeOutOfRangeIsProtocolError(_ transport: Transport, value: UInt32) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.settings([(SettingID.maxFrameSize, value)]))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.5.2: "An endpoint that receives a SETTINGS frame with any unknown or unsupported identifier MUST
    /// ignore that setting."
    @Test(arguments: Transport.allCases)
    func section6_5_2_unknownSettingIsIgnored(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.settings([(0xff, 1), (0x7a7a, 0xffff_ffff)]))
            await connection.expectFrame("a SETTINGS ACK") { $0.isSettingsAck }
            try await connection.expectConnectionAlive()
        }
    }

    /// RFC 9113 §6.5.3: "Once all values have been processed, the recipient MUST immediately emit a SETTINGS frame with
    /// the ACK flag set."
    @Test(arguments: Transport.allCases)
    func section6_5_3_settingsAreAcknowledged(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.settings([(SettingID.maxConcurrentStreams, UInt32(50)), (SettingID.headerTableSize, UInt32(2048))]))
            let ack = await connection.expectFrame("a SETTINGS ACK") { $0.isSettingsAck }
            #expect(ack?.length == 0, "an ACK is empty")
            #expect(ack?.streamID == 0)
        }
    }

    /// RFC 9113 §6.5.3: "The values in the SETTINGS frame MUST be processed in the order they appear, with no other
    /// frame processing between values." (The last INITIAL_WINDOW_SIZE, 1, applies.)
    @Test(arguments: Transport.allCases)
    func section6_5_3_settingsValuesAreProcessedInOrder(_ transport: Transport) async throws {
        try await withConformanceServer(transport, settings: [(SettingID.initialWindowSize, 100), (SettingID.initialWindowSize, 1)]) {
            server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true))
            let data = await connection.expectFrame("DATA on stream 1") { $0.type == FrameType.data && $0.streamID == 1 }
            #expect(data?.dataPayload.count == 1, "a 1-octet window allows 1 octet: \(data.map { "\($0)" } ?? "")")
        }
    }

    // MARK: - §6.7 PING

    /// RFC 9113 §6.7: "Receivers of a PING frame that does not include an ACK flag MUST send a PING frame with the ACK
    /// flag set in response, with an identical frame payload."
    @Test(arguments: Transport.allCases)
    func section6_7_pingIsAnsweredWithAckAndTheSamePayload(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            let data: [UInt8] = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04]
            try await connection.send(.ping(data))
            await connection.expectPingAck(data)
        }
    }

    /// RFC 9113 §6.7: "ACK (0x01): When set, the ACK flag indicates that this PING frame is a PING response. An endpoint
    /// MUST set this flag in PING responses. An endpoint MUST NOT respond to PING frames containing this flag."
    @Test(arguments: Transport.allCases)
    func section6_7_pingAckIsNotAnswered(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.ping(Array("unasked!".utf8), ack: true), .ping(Array("asked!!!".utf8)))
            await connection.expectPingAck(Array("asked!!!".utf8))
        }
    }

    /// RFC 9113 §6.7: "If a PING frame is received with a Stream Identifier field value other than 0x00, the recipient
    /// MUST respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_7_pingOnAStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            var ping = RawFrame.ping()
            ping.streamID = 1
            try await connection.send(ping)
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.7: "Receipt of a PING frame with a length field value other than 8 MUST be treated as a connection
    /// error (Section 5.4.1) of type FRAME_SIZE_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_7_pingWithLengthOtherThanEightIsFrameSizeError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.ping(Array("sixsix".utf8)))
            await connection.expectConnectionError(.frameSizeError)
        }
    }

    // MARK: - §6.8 GOAWAY

    /// RFC 9113 §6.8: "An endpoint MUST treat a GOAWAY frame with a stream identifier other than 0x00 as a connection
    /// error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_8_goawayOnAStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            var goaway = RawFrame.goaway(lastStreamID: 0, .noError)
            goaway.streamID = 1
            try await connection.send(goaway)
            await connection.expectConnectionError(.protocolError)
        }
    }

    // MARK: - §6.9 WINDOW_UPDATE

    /// RFC 9113 §6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control window increment
    /// of 0 as a stream error (Section 5.4.2) of type PROTOCOL_ERROR; errors on the connection flow-control window MUST
    /// be treated as a connection error (Section 5.4.1)."
    @Test(arguments: Transport.allCases)
    func section6_9_windowUpdateOfZeroOnTheConnectionIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.windowUpdate(0, 0))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control window increment
    /// of 0 as a stream error (Section 5.4.2) of type PROTOCOL_ERROR".
    @Test(arguments: Transport.allCases)
    func section6_9_windowUpdateOfZeroOnAStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(method: "POST")), .windowUpdate(1, 0))
            await connection.expectStreamError(streamID: 1, .protocolError)
        }
    }

    /// RFC 9113 §6.9: "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a connection error
    /// (Section 5.4.1) of type FRAME_SIZE_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_9_windowUpdateWithLengthOtherThanFourIsFrameSizeError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            var update = RawFrame.windowUpdate(0, 100)
            update.payload.removeLast()
            update.length = 3
            try await connection.send(update)
            await connection.expectConnectionError(.frameSizeError)
        }
    }

    /// RFC 9113 §6.9.1: "If a sender receives a WINDOW_UPDATE that causes a flow-control window to exceed this maximum,
    /// it MUST terminate either the stream or the connection, as appropriate. … for the connection, a GOAWAY frame with
    /// an error code of FLOW_CONTROL_ERROR is sent."
    @Test(arguments: Transport.allCases)
    func section6_9_1_connectionWindowAboveTheMaximumIsFlowControlError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(.windowUpdate(0, 0x7fff_ffff))
            await connection.expectConnectionError(.flowControlError)
        }
    }

    /// RFC 9113 §6.9.1: "For streams, the sender sends a RST_STREAM with an error code of FLOW_CONTROL_ERROR".
    @Test(arguments: Transport.allCases)
    func section6_9_1_streamWindowAboveTheMaximumIsFlowControlError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true), .windowUpdate(1, 0x7fff_ffff))
            await connection.expectStreamError(streamID: 1, .flowControlError)
        }
    }

    /// RFC 9113 §6.9.1: "A sender MUST NOT send a flow-controlled frame with a length that exceeds the space available in
    /// either of the flow-control windows advertised by the receiver." (SETTINGS_INITIAL_WINDOW_SIZE = 1: DATA frames of
    /// one octet, each after a WINDOW_UPDATE.)
    @Test(arguments: Transport.allCases)
    func section6_9_1_initialWindowSizeOfOneGivesOneOctetDataFrames(_ transport: Transport) async throws {
        try await withConformanceServer(transport, settings: [(SettingID.initialWindowSize, 1)]) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true))
            let first = await connection.expectFrame("DATA on stream 1") { $0.type == FrameType.data && $0.streamID == 1 }
            #expect(first?.dataPayload.count == 1, "\(first.map { "\($0)" } ?? "")")
            try await connection.send(.windowUpdate(1, 1))
            let second = await connection.expectFrame("more DATA on stream 1") { $0.type == FrameType.data && $0.streamID == 1 }
            #expect(second?.dataPayload.count == 1, "\(second.map { "\($0)" } ?? "")")
        }
    }

    /// RFC 9113 §6.9.2: "When the value of SETTINGS_INITIAL_WINDOW_SIZE changes, a receiver MUST adjust the size of all
    /// stream flow-control windows that it maintains by the difference between the new value and the old value."
    @Test(arguments: Transport.allCases)
    func section6_9_2_initialWindowSizeChangeAppliesToOpenStreams(_ transport: Transport) async throws {
        try await withConformanceServer(transport, settings: [(SettingID.initialWindowSize, 0)]) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true))
            await connection.expectResponse(streamID: 1)
            // No DATA may come with a window of 0: everything the server sends before our PING's ACK is checked.
            try await connection.send(.ping(Array("nodata!!".utf8)))
            let ack = await connection.expectFrame("the PING ACK, with no DATA before it") {
                #expect($0.type != FrameType.data, "DATA with a window of 0: \($0)")
                return $0.isPingAck
            }
            #expect(ack?.payload == Array("nodata!!".utf8))
            try await connection.send(.settings([(SettingID.initialWindowSize, UInt32(1))]))
            let data = await connection.expectFrame("DATA on stream 1") { $0.type == FrameType.data && $0.streamID == 1 }
            #expect(data?.dataPayload.count == 1, "\(data.map { "\($0)" } ?? "")")
        }
    }

    /// RFC 9113 §6.9.2: "A change to SETTINGS_INITIAL_WINDOW_SIZE can cause the available space in a flow-control
    /// window to become negative. A sender MUST track the negative flow-control window and MUST NOT send new
    /// flow-controlled frames until it receives WINDOW_UPDATE frames that cause the flow-control window to become
    /// positive."
    @Test(arguments: Transport.allCases)
    func section6_9_2_aNegativeWindowIsTracked(_ transport: Transport) async throws {
        try await withConformanceServer(transport, settings: [(SettingID.initialWindowSize, 3)]) { server, connection, _ in
            try await connection.send(.headers(1, server.request(), endStream: true))
            var received = 0
            while received < 3 {
                guard let data = await connection.expectFrame("DATA on stream 1", where: { $0.type == FrameType.data && $0.streamID == 1 }) else { return }
                received += data.dataPayload.count
            }
            #expect(received == 3, "a window of 3 octets")
            // 3 → 1 makes the window -2; +3 makes it 1.
            try await connection.send(.settings([(SettingID.initialWindowSize, UInt32(1))]), .windowUpdate(1, 3))
            let data = await connection.expectFrame("DATA on stream 1") { $0.type == FrameType.data && $0.streamID == 1 }
            #expect(data?.dataPayload.count == 1, "a window of -2 + 3 = 1 octet: \(data.map { "\($0)" } ?? "")")
        }
    }

    // MARK: - §6.10 CONTINUATION

    /// RFC 9113 §6.10: "Any number of CONTINUATION frames can be sent, as long as the preceding frame is on the same
    /// stream and is a HEADERS, PUSH_PROMISE, or CONTINUATION frame without the END_HEADERS flag set."
    @Test(arguments: Transport.allCases)
    func section6_10_multipleContinuationFramesAreAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            let block = server.request([("x-a", "1"), ("x-b", "2")])
            let cuts = [0, 5, 11, 20, block.count]
            var frames = [RawFrame.headers(1, Array(block[cuts[0]..<cuts[1]]), endStream: true, endHeaders: false)]
            for index in 1..<(cuts.count - 1) {
                frames.append(.continuation(1, Array(block[cuts[index]..<cuts[index + 1]]), endHeaders: index == cuts.count - 2))
            }
            try await connection.send(wire(frames))
            await connection.expectResponse(streamID: 1)
        }
    }

    /// RFC 9113 §6.10: "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame without
    /// the END_HEADERS flag set. A recipient that observes violation of this rule MUST respond with a connection error
    /// (Section 5.4.1) of type PROTOCOL_ERROR." (A CONTINUATION without END_HEADERS followed by DATA.)
    @Test(arguments: Transport.allCases)
    func section6_10_continuationFollowedByAnotherFrameTypeIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            let block = server.request(method: "POST")
            try await connection.send(
                .headers(1, Array(block[..<8]), endHeaders: false), .continuation(1, Array(block[8..<16]), endHeaders: false),
                .data(1, Array("test".utf8), endStream: true))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.10: "… as long as the preceding frame is on the same stream …"; §6.2: "A receiver MUST treat the
    /// receipt of any other type of frame or a frame on a different stream as a connection error (Section 5.4.1) of
    /// type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_10_continuationOnAnotherStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            let block = server.request()
            try await connection.send(
                .headers(1, Array(block[..<8]), endStream: true, endHeaders: false), .continuation(1, Array(block[8..<16]), endHeaders: false),
                .continuation(3, Array(block[16...])))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.10: "If a CONTINUATION frame is received with a Stream Identifier field of 0x00, the recipient MUST
    /// respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_10_continuationOnStreamZeroIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            let block = server.request()
            try await connection.send(.headers(1, Array(block[..<8]), endStream: true, endHeaders: false), .continuation(0, Array(block[8...])))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.10: "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame without
    /// the END_HEADERS flag set. A recipient that observes violation of this rule MUST respond with a connection error
    /// (Section 5.4.1) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section6_10_continuationAfterEndHeadersIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request(method: "POST")), .continuation(1, HPACK.block([("x-more", "1")])))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9113 §6.10: "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame without
    /// the END_HEADERS flag set." (Here it follows a DATA frame.)
    @Test(arguments: Transport.allCases)
    func section6_10_continuationAfterDataIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST")), .data(1, Array("test".utf8)), .continuation(1, HPACK.block([("x-more", "1")])))
            await connection.expectConnectionError(.protocolError)
        }
    }

    // MARK: - §8.1 HTTP message framing

    /// RFC 9113 §8.1: "An endpoint that receives a HEADERS frame without the END_STREAM flag set after receiving the
    /// HEADERS frame that opens a request or after receiving a final (non-informational) status code MUST treat the
    /// corresponding request or response as malformed (Section 8.1.1)." §8.1.1: "Malformed requests or responses that
    /// are detected MUST be treated as a stream error (Section 5.4.2) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section8_1_secondHeadersWithoutEndStreamIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST")), .data(1, Array("test".utf8)), .headers(1, HPACK.block([("x-trailer", "1")])))
            await connection.expectStreamError(streamID: 1, .protocolError)
        }
    }

    /// RFC 9113 §8.1: trailers are "a HEADERS frame … with the END_STREAM flag set"; such a request is processed.
    @Test(arguments: Transport.allCases)
    func section8_1_trailersAreAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST")), .data(1, Array("test".utf8)),
                .headers(1, HPACK.block([("x-trailer", "1")]), endStream: true))
            await connection.expectResponse(streamID: 1)
            try await connection.expectConnectionAlive()
        }
    }

    /// RFC 9113 §8.1: "Trailers MUST NOT include pseudo-header fields (Section 8.3)." §8.1.1: malformed messages "MUST be
    /// treated as a stream error (Section 5.4.2) of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section8_1_trailersWithAPseudoHeaderFieldAreProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST")), .data(1, Array("test".utf8)),
                .headers(1, HPACK.block([(":path", "/trailer")]), endStream: true))
            await connection.expectStreamError(streamID: 1, .protocolError)
        }
    }

    /// RFC 9113 §8.1.1: "A request or response is also malformed if the value of a content-length header field does not
    /// equal the sum of the DATA frame payload lengths that form the content" (here more DATA than announced).
    @Test(arguments: Transport.allCases)
    func section8_1_1_moreDataThanContentLengthIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST", [("content-length", "1")])), .data(1, Array("test".utf8), endStream: true))
            await connection.expectStreamError(streamID: 1, .protocolError)
        }
    }

    /// RFC 9113 §8.1.1: "A request or response is also malformed if the value of a content-length header field does not
    /// equal the sum of the DATA frame payload lengths that form the content" (here less, over several DATA frames).
    @Test(arguments: Transport.allCases)
    func section8_1_1_lessDataThanContentLengthIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST", [("content-length", "10")])), .data(1, Array("test".utf8)),
                .data(1, Array("test".utf8), endStream: true))
            await connection.expectStreamError(streamID: 1, .protocolError)
        }
    }

    // MARK: - §8.2 HTTP fields

    /// RFC 9113 §8.2: "Field names MUST be converted to lowercase when constructing an HTTP/2 message." §8.2.1: "A field
    /// name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a, or 0x7f-0xff (all ranges inclusive). …
    /// a request or response that contains a field that violates any of these conditions MUST be treated as malformed".
    @Test(arguments: Transport.allCases)
    func section8_2_uppercaseFieldNameIsProtocolError(_ transport: Transport) async throws {
        try await expectMalformed(transport) { server in server.request([("X-Test", "ok")]) }
    }

    /// RFC 9113 §8.2.1: "A field value MUST NOT contain the zero value (ASCII NUL, 0x00), line feed (ASCII LF, 0x0a), or
    /// carriage return (ASCII CR, 0x0d) at any position." … "MUST be treated as malformed".
    @Test(arguments: Transport.allCases)
    func section8_2_1_fieldValueWithCRLFIsProtocolError(_ transport: Transport) async throws {
        try await expectMalformed(transport) { server in server.request([("x-test", "a\r\nx-injected: b")]) }
    }

    /// RFC 9113 §8.2.1: "A field value MUST NOT start or end with an ASCII whitespace character (ASCII SP or HTAB, 0x20
    /// or 0x09)." … "MUST be treated as malformed".
    @Test(arguments: Transport.allCases)
    func section8_2_1_fieldValueWithLeadingWhitespaceIsProtocolError(_ transport: Transport) async throws {
        try await expectMalformed(transport) { server in server.request([("x-test", " padded")]) }
    }

    /// RFC 9113 §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing connection-specific header fields.
    /// This includes the Connection header field and those listed as having connection-specific semantics in
    /// Section 7.6.1 of [HTTP] (that is, Proxy-Connection, Keep-Alive, Transfer-Encoding, and Upgrade). Any message
    /// containing connection-specific header fields MUST be treated as malformed (Section 8.1.1)."
    @Test(arguments: Transport.allCases, [
        "connection: keep-alive", "keep-alive: timeout=5", "proxy-connection: keep-alive", "transfer-encoding: chunked",
        "upgrade: h2c",
    ])
    func section8_2_2_connectionSpecificFieldIsProtocolError(_ transport: Transport, field: String) async throws {
        let parts = field.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        try await expectMalformed(transport) { server in server.request([(parts[0], parts[1])]) }
    }

    /// RFC 9113 §8.2.2: "The only exception to this is the TE header field, which MAY be present in an HTTP/2 request;
    /// when it is, it MUST NOT contain any value other than "trailers"."
    @Test(arguments: Transport.allCases)
    func section8_2_2_teOtherThanTrailersIsProtocolError(_ transport: Transport) async throws {
        try await expectMalformed(transport) { server in server.request([("te", "trailers, deflate")]) }
    }

    /// RFC 9113 §8.2.2: TE "MAY be present in an HTTP/2 request" with the value "trailers".
    @Test(arguments: Transport.allCases)
    func section8_2_2_teTrailersIsAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request([("te", "trailers")]), endStream: true))
            await connection.expectResponse(streamID: 1)
        }
    }

    // MARK: - §8.3 HTTP control data (pseudo-header fields)

    /// RFC 9113 §8.3: "Endpoints MUST treat a request or response that contains undefined or invalid pseudo-header
    /// fields as malformed (Section 8.1.1)."
    @Test(arguments: Transport.allCases)
    func section8_3_unknownPseudoHeaderFieldIsProtocolError(_ transport: Transport) async throws {
        try await expectMalformed(transport) { server in HPACK.block(server.requestFields().dropLast() + [(":foo", "bar"), (":authority", server.authority)]) }
    }

    /// RFC 9113 §8.3: "Pseudo-header fields defined for responses MUST NOT appear in requests."
    @Test(arguments: Transport.allCases)
    func section8_3_responsePseudoHeaderFieldInARequestIsProtocolError(_ transport: Transport) async throws {
        try await expectMalformed(transport) { server in HPACK.block([(":status", "200")] + server.requestFields()) }
    }

    /// RFC 9113 §8.3: "All pseudo-header fields MUST appear in a field block before all regular field lines. Any request
    /// or response that contains a pseudo-header field that appears in a field block after a regular field line MUST be
    /// treated as malformed (Section 8.1.1)."
    @Test(arguments: Transport.allCases)
    func section8_3_pseudoHeaderFieldAfterARegularFieldIsProtocolError(_ transport: Transport) async throws {
        try await expectMalformed(transport) { server in
            let fields = server.requestFields()
            return HPACK.block(Array(fields.dropLast()) + [("x-regular", "1"), fields.last!])
        }
    }

    /// RFC 9113 §8.3: "The same pseudo-header field name MUST NOT appear more than once in a field block. A field block
    /// for an HTTP request or response that contains a repeated pseudo-header field name MUST be treated as malformed
    /// (Section 8.1.1)."
    @Test(arguments: Transport.allCases, [":method", ":scheme", ":path"])
    func section8_3_repeatedPseudoHeaderFieldIsProtocolError(_ transport: Transport, name: String) async throws {
        try await expectMalformed(transport) { server in
            let fields = server.requestFields()
            let repeated = fields.first { $0.0 == name }!
            return HPACK.block([repeated] + fields)
        }
    }

    /// RFC 9113 §8.1: "Pseudo-header fields … MUST NOT appear in a trailer section" — here `:method` in the trailers of
    /// a request (§8.3: "Pseudo-header fields MUST NOT appear in a trailer section.").
    @Test(arguments: Transport.allCases)
    func section8_3_pseudoHeaderFieldInTrailersIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(
                .headers(1, server.request(method: "POST")), .data(1, Array("test".utf8)),
                .headers(1, HPACK.block([(":method", "POST")]), endStream: true))
            await connection.expectStreamError(streamID: 1, .protocolError)
        }
    }

    /// RFC 9113 §8.3.1: "All HTTP/2 requests MUST include exactly one valid value for the ":method", ":scheme", and
    /// ":path" pseudo-header fields, unless they are CONNECT requests (Section 8.5). An HTTP request that omits mandatory
    /// pseudo-header fields is malformed (Section 8.1.1)."
    @Test(arguments: Transport.allCases, [":method", ":scheme", ":path"])
    func section8_3_1_missingMandatoryPseudoHeaderFieldIsProtocolError(_ transport: Transport, name: String) async throws {
        try await expectMalformed(transport) { server in HPACK.block(server.requestFields().filter { $0.0 != name }) }
    }

    /// RFC 9113 §8.3.1: ":path … This pseudo-header field MUST NOT be empty for "http" or "https" URIs; "http" or
    /// "https" URIs that do not contain a path component MUST include a value of "/"."
    @Test(arguments: Transport.allCases)
    func section8_3_1_emptyPathIsProtocolError(_ transport: Transport) async throws {
        try await expectMalformed(transport) { server in server.request(path: "") }
    }

    // MARK: - RFC 7541 (HPACK)

    /// RFC 7541 §2.3.3: "Indices strictly greater than the sum of the lengths of both tables MUST be treated as a
    /// decoding error." RFC 9113 §4.3: a decoding error "MUST be treated as a connection error (Section 5.4.1) of type
    /// COMPRESSION_ERROR."
    @Test(arguments: Transport.allCases)
    func rfc7541_section2_3_3_indexedFieldBeyondBothTablesIsCompressionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request() + HPACK.indexed(70), endStream: true))
            await connection.expectConnectionError(.compressionError)
        }
    }

    /// RFC 7541 §2.3.3: "Indices strictly greater than the sum of the lengths of both tables MUST be treated as a
    /// decoding error." (A literal's indexed name.)
    @Test(arguments: Transport.allCases)
    func rfc7541_section2_3_3_literalNameIndexBeyondBothTablesIsCompressionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request() + HPACK.literal(nameIndex: 70, "x"), endStream: true))
            await connection.expectConnectionError(.compressionError)
        }
    }

    /// RFC 7541 §6.1: "The index value of 0 is not used. It MUST be treated as a decoding error if found in an indexed
    /// header field representation."
    @Test(arguments: Transport.allCases)
    func rfc7541_section6_1_indexZeroIsCompressionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request() + HPACK.indexed(0), endStream: true))
            await connection.expectConnectionError(.compressionError)
        }
    }

    /// RFC 7541 §6.3: "The new maximum size MUST be lower than or equal to the limit determined by the protocol using
    /// HPACK. A value that exceeds this limit MUST be treated as a decoding error." (The limit is the server's
    /// SETTINGS_HEADER_TABLE_SIZE, 4096 unless it says otherwise; §4.2.)
    @Test(arguments: Transport.allCases)
    func rfc7541_section4_2_tableSizeUpdateAboveTheLimitIsCompressionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, settings in
            let limit = settings.settings.last { $0.id == SettingID.headerTableSize }.map { Int($0.value) } ?? 4096
            try await connection.send(.headers(1, HPACK.sizeUpdate(limit + 1) + server.request(), endStream: true))
            await connection.expectConnectionError(.compressionError)
        }
    }

    /// RFC 7541 §4.2: "This dynamic table size update MUST occur at the beginning of the first header block following
    /// the change to the dynamic table size." §6.3 / RFC 9113 §4.3: elsewhere it is a decoding error, a
    /// COMPRESSION_ERROR.
    @Test(arguments: Transport.allCases)
    func rfc7541_section4_2_tableSizeUpdateAfterAFieldIsCompressionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request() + HPACK.sizeUpdate(1024), endStream: true))
            await connection.expectConnectionError(.compressionError)
        }
    }

    /// RFC 7541 §5.2: "A Huffman-encoded string literal containing the EOS symbol MUST be treated as a decoding error."
    @Test(arguments: Transport.allCases)
    func rfc7541_section5_2_huffmanStringWithEOSIsCompressionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            // 32 one bits: EOS (30 ones) and 2 bits of padding.
            try await connection.send(.headers(1, server.request() + [0x00] + HPACK.string("x-huffman") + HPACK.huffmanString([0xff, 0xff, 0xff, 0xff]), endStream: true))
            await connection.expectConnectionError(.compressionError)
        }
    }

    /// RFC 7541 §5.2: "A padding strictly longer than 7 bits MUST be treated as a decoding error."
    @Test(arguments: Transport.allCases)
    func rfc7541_section5_2_huffmanPaddingLongerThanSevenBitsIsCompressionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            // "a" is 00011; then 11 one bits of padding.
            try await connection.send(.headers(1, server.request() + [0x00] + HPACK.string("x-huffman") + HPACK.huffmanString([0x1f, 0xff]), endStream: true))
            await connection.expectConnectionError(.compressionError)
        }
    }

    /// RFC 7541 §5.2: "A padding not corresponding to the most significant bits of the code for the EOS symbol MUST be
    /// treated as a decoding error."
    @Test(arguments: Transport.allCases)
    func rfc7541_section5_2_huffmanPaddingNotAllOnesIsCompressionError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            // "a" is 00011; then 000 as padding.
            try await connection.send(.headers(1, server.request() + [0x00] + HPACK.string("x-huffman") + HPACK.huffmanString([0x18]), endStream: true))
            await connection.expectConnectionError(.compressionError)
        }
    }

    /// RFC 7541 §5.2: "As the Huffman-encoded data doesn't always end at an octet boundary, some padding is inserted
    /// after it, up to the next octet boundary" — a correctly padded Huffman string is decoded.
    @Test(arguments: Transport.allCases)
    func rfc7541_section5_2_correctlyPaddedHuffmanStringIsAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            // "a" is 00011, then 111.
            try await connection.send(.headers(1, server.request() + [0x00] + HPACK.string("x-huffman") + HPACK.huffmanString([0x1f]), endStream: true))
            await connection.expectResponse(streamID: 1)
        }
    }

    /// RFC 7541 §6.1: "An indexed header field representation identifies an entry in either the static table or the
    /// dynamic table" — a request made of static-table references (and one literal with an indexed name, §6.2.2).
    @Test(arguments: Transport.allCases)
    func rfc7541_section6_1_indexedStaticFieldsAreAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            // 2 = :method GET, 6/7 = :scheme http/https, 4 = :path /, 1 = :authority.
            let block = HPACK.indexed(2) + HPACK.indexed(transport == .tls ? 7 : 6) + HPACK.indexed(4) + HPACK.literal(nameIndex: 1, server.authority)
            try await connection.send(.headers(1, block, endStream: true))
            await connection.expectResponse(streamID: 1)
        }
    }

    /// RFC 7541 §6.2.1: "A literal header field with incremental indexing representation results in appending a header
    /// field to the decoded header list and inserting it as a new entry into the dynamic table." The next block refers
    /// to it as index 62 (§2.3.3: the first dynamic entry follows the 61 static ones).
    @Test(arguments: Transport.allCases)
    func rfc7541_section6_2_1_incrementallyIndexedFieldCanBeReferencedLater(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request() + HPACK.literalIndexing("x-conformance", "indexed"), endStream: true))
            await connection.expectResponse(streamID: 1)
            try await connection.send(.headers(3, server.request() + HPACK.indexed(62), endStream: true))
            await connection.expectResponse(streamID: 3)
        }
    }

    /// RFC 7541 §6.2.3: "A literal header field never-indexed representation results in appending a header field to the
    /// decoded header list without altering the dynamic table."
    @Test(arguments: Transport.allCases)
    func rfc7541_section6_2_3_neverIndexedFieldIsAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, server.request() + HPACK.literalNeverIndexed("x-secret", "s3cr3t"), endStream: true))
            await connection.expectResponse(streamID: 1)
        }
    }

    /// RFC 7541 §4.2: "This dynamic table size update MUST occur at the beginning of the first header block following
    /// the change" — and two updates there (a smaller one, then the one in force) are valid.
    @Test(arguments: Transport.allCases)
    func rfc7541_section6_3_tableSizeUpdatesAtTheStartOfABlockAreAccepted(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, HPACK.sizeUpdate(0) + HPACK.sizeUpdate(4096) + server.request(), endStream: true))
            await connection.expectResponse(streamID: 1)
        }
    }

    // MARK: - Helpers

    /// A request whose field block `block` makes malformed (RFC 9113 §8.1.1: "Malformed requests or responses that are
    /// detected MUST be treated as a stream error (Section 5.4.2) of type PROTOCOL_ERROR.") gets a PROTOCOL_ERROR stream
    /// (or connection) error, and the handler never answers it.
    private func expectMalformed(
        _ transport: Transport, sourceLocation: SourceLocation = #_sourceLocation, _ block: @escaping (ConformanceServer) -> [UInt8]
    ) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            try await connection.send(.headers(1, block(server), endStream: true))
            var seen: [String] = []
            let deadline = ContinuousClock.now + RawConnection.expectationTimeout
            loop: while true {
                switch await connection.nextFrame(timeout: deadline - ContinuousClock.now) {
                case .frame(let frame) where frame.type == FrameType.headers && frame.streamID == 1:
                    Issue.record("the malformed request was answered: \(frame) after \(seen)", sourceLocation: sourceLocation)
                    break loop
                case .frame(let frame) where frame.type == FrameType.rstStream && frame.streamID == 1:
                    #expect(frame.errorCode == .protocolError, "\(frame)", sourceLocation: sourceLocation)
                    break loop
                case .frame(let frame) where frame.type == FrameType.goaway:
                    #expect(frame.errorCode == .protocolError, "\(frame)", sourceLocation: sourceLocation)
                    break loop
                case .frame(let frame):
                    seen.append("\(frame)")
                case .closed:
                    break loop
                case .timedOut:
                    Issue.record("expected a stream error PROTOCOL_ERROR on stream 1, got none within 3 s after \(seen)", sourceLocation: sourceLocation)
                    break loop
                }
            }
        }
    }
}
