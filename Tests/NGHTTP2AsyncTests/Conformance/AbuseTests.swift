import Foundation
import HTTPTypes
import NIOCore
import NGHTTP2
import Testing
@testable import NGHTTP2Async

/// Attacks from the outside (raw frames, on 127.0.0.1): the attacker's connection gets GOAWAY (or is closed), while
/// a well-behaved client on the same server, at the same time, keeps getting answers.
@Suite(.timeLimit(.minutes(2)))
struct AbuseTests {
    /// Sends `frames` in writes of about 64 KiB, then returns the GOAWAY the server answered with (or `nil` when
    /// the connection closed without one), reading everything the server sent meanwhile.
    static func attack(_ connection: RawConnection, _ frames: [RawFrame]) async throws -> RawFrame? {
        var pending: [UInt8] = []
        for frame in frames {
            pending += frame.bytes
            if pending.count >= 64 << 10 {
                do { try await connection.send(pending) } catch { break }  // the server may close mid-attack
                pending.removeAll(keepingCapacity: true)
            }
        }
        if !pending.isEmpty { try? await connection.send(pending) }
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            switch await connection.nextFrame(timeout: deadline - ContinuousClock.now) {
            case .frame(let frame) where frame.type == FrameType.goaway: return frame
            case .frame: continue
            case .closed, .timedOut: return nil
            }
        }
    }

    /// Sends `batches` requests that the server must reset, 50 at a time (within MAX_CONCURRENT_STREAMS), waiting for
    /// the 50 RST_STREAMs after each batch; returns the GOAWAY that ended it, or `nil`.
    static func resetAttack(_ connection: RawConnection, batches: Int, request: (UInt32) -> [RawFrame]) async throws -> RawFrame? {
        var stream: UInt32 = 1
        for _ in 0..<batches {
            var frames: [RawFrame] = []
            for _ in 0..<50 {
                frames += request(stream)
                stream += 2
            }
            do { try await connection.send(wire(frames)) } catch { break }  // closed: the GOAWAY may be read below
            var resets = 0
            while resets < 50 {
                switch await connection.nextFrame(timeout: .seconds(5)) {
                case .frame(let frame) where frame.type == FrameType.goaway: return frame
                case .frame(let frame) where frame.type == FrameType.rstStream: resets += 1
                case .frame: continue
                case .closed, .timedOut: return nil
                }
            }
        }
        // What came after the last batch's resets.
        while true {
            switch await connection.nextFrame(timeout: .seconds(2)) {
            case .frame(let frame) where frame.type == FrameType.goaway: return frame
            case .frame: continue
            case .closed, .timedOut: return nil
            }
        }
    }

    /// A well-behaved client's requests while the attack runs: all answered.
    static func served(by server: ConformanceServer, requests: Int = 20) async throws -> Task<Int, any Error> {
        let client = try await server.client()
        return Task {
            var answered = 0
            for index in 0..<requests {
                let response = try await client.get("/fine/\(index)")
                if response.status == .ok, try await response.text() == ConformanceServer.body { answered += 1 }
            }
            await client.close()
            return answered
        }
    }

    /// CVE-2025-8671 ("MadeYouReset"): requests that the server must reset because of what the client did (here a
    /// request with an uppercase field name, malformed by RFC 9113 §8.2.1) cost the client nothing. Past the glitch
    /// limit the connection gets GOAWAY ENHANCE_YOUR_CALM.
    @Test(arguments: Transport.allCases)
    func streamsTheServerMustResetEndInEnhanceYourCalm(_ transport: Transport) async throws {
        let server = try await ConformanceServer.start(transport) { $0.glitchLimit = GlitchLimit(burst: 200, perSecond: 1) }
        let wellBehaved = try await Self.served(by: server)
        let (attacker, _) = try await server.handshake()
        let malformed = server.request(path: "/reset-me", [("X-Upper", "1")])
        let goaway = try await Self.resetAttack(attacker, batches: 10) { [RawFrame.headers($0, malformed, endStream: true)] }
        #expect(goaway?.errorCode == .enhanceYourCalm, "GOAWAY: \(goaway.map { "\($0) \(String(decoding: $0.payload.dropFirst(8), as: UTF8.self))" } ?? "none")")
        #expect(try await wellBehaved.value == 20)
        await attacker.close()
        await server.close()
    }

    /// Requests whose DATA does not match their content-length (malformed, RFC 9113 §8.1.1: a stream error
    /// PROTOCOL_ERROR) count as glitches too.
    @Test func contentLengthMismatchesEndInEnhanceYourCalm() async throws {
        let server = try await ConformanceServer.start(.h2c) { $0.glitchLimit = GlitchLimit(burst: 100, perSecond: 1) }
        let (attacker, _) = try await server.handshake()
        let head = server.request(method: "POST", path: "/upload", [("content-length", "10")])
        let goaway = try await Self.resetAttack(attacker, batches: 10) { stream in
            [.headers(stream, head, endStream: false), .data(stream, Array("short".utf8), endStream: true)]
        }
        #expect(goaway?.errorCode == .enhanceYourCalm, "GOAWAY: \(goaway.map { "\($0) \(String(decoding: $0.payload.dropFirst(8), as: UTF8.self))" } ?? "none")")
        let fresh = try await server.client()
        #expect(try await fresh.get("/after").status == .ok, "a new client is served")
        await fresh.close()
        await attacker.close()
        await server.close()
    }

    /// Empty DATA frames without END_STREAM carry nothing and cost a read each (CVE-2019-9518): glitches.
    @Test func emptyDataFramesEndInEnhanceYourCalm() async throws {
        let server = try await ConformanceServer.start(.h2c) { $0.glitchLimit = GlitchLimit(burst: 100, perSecond: 1) }
        let (attacker, _) = try await server.handshake()
        var frames: [RawFrame] = [.headers(1, server.request(method: "POST", path: "/upload"), endStream: false)]
        frames += Array(repeating: RawFrame.data(1, []), count: 500)
        let goaway = try await Self.attack(attacker, frames)
        #expect(goaway?.errorCode == .enhanceYourCalm, "GOAWAY: \(goaway.map { "\($0) \(String(decoding: $0.payload.dropFirst(8), as: UTF8.self))" } ?? "none")")
        await attacker.close()
        await server.close()
    }

    /// A header block that decodes far beyond SETTINGS_MAX_HEADER_LIST_SIZE: one 4 KB field put in the HPACK dynamic
    /// table, then referenced 12,000 times in one 16 KB frame (48 MB decoded). Fields past the limit are never stored;
    /// the request gets 431 and the connection goes on.
    @Test(arguments: Transport.allCases)
    func aHeaderBlockThatDecodesFarBeyondTheLimitGets431(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { server, connection, _ in
            var block = server.request(path: "/bomb") + HPACK.literalIndexing("x-bomb", String(repeating: "b", count: 4000))
            block += Array(repeating: HPACK.indexed(62)[0], count: 12_000)
            try await connection.send(.headers(1, block, endStream: true))
            let response = await connection.expectResponse(streamID: 1, status: 431)
            #expect(response != nil)
            try await connection.send(.headers(3, server.request(path: "/after"), endStream: true))
            #expect(await connection.expectResponse(streamID: 3) != nil, "the connection goes on")
        }
    }

    /// The default limit (1,000 at once) is not reached by a client that does nothing wrong: 2,000 requests on one
    /// connection, each answered.
    @Test func wellBehavedClientsNeverReachTheDefaultLimit() async throws {
        let server = try await ConformanceServer.start(.h2c)
        let client = try await server.client()
        for index in 0..<2000 {
            let response = try await client.get("/\(index)")
            #expect(response.status == .ok)
            _ = try await response.bytes()
        }
        await client.close()
        await server.close()
    }

    /// CVE-2023-44487 (rapid reset): HEADERS and RST_STREAM at once, over and over. libnghttp2's own limit (a burst of
    /// 1,000, then 33 a second) answers with GOAWAY.
    @Test(arguments: Transport.allCases)
    func rapidResetGetsGoAway(_ transport: Transport) async throws {
        let server = try await ConformanceServer.start(transport)
        let wellBehaved = try await Self.served(by: server)
        let (attacker, _) = try await server.handshake()
        var frames: [RawFrame] = []
        for index in 0..<3000 {
            let stream = UInt32(2 * index + 1)
            frames.append(.headers(stream, server.request(), endStream: true))
            frames.append(.rstStream(stream, .cancel))
        }
        let goaway = try await Self.attack(attacker, frames)
        #expect(goaway != nil && goaway?.errorCode != WireError.noError, "GOAWAY: \(goaway.map { "\($0) \(String(decoding: $0.payload.dropFirst(8), as: UTF8.self))" } ?? "none")")
        #expect(try await wellBehaved.value == 20)
        await attacker.close()
        await server.close()
    }

    /// CVE-2024-28182 class (CONTINUATION flood): a header block that never ends, in many CONTINUATION frames. The
    /// connection ends with GOAWAY ENHANCE_YOUR_CALM before much is buffered.
    @Test(arguments: Transport.allCases)
    func continuationFloodGetsEnhanceYourCalm(_ transport: Transport) async throws {
        let server = try await ConformanceServer.start(transport)
        let wellBehaved = try await Self.served(by: server)
        let (attacker, _) = try await server.handshake()
        let piece = HPACK.literal("x-flood", String(repeating: "f", count: 100))
        var frames: [RawFrame] = [.headers(1, server.request(), endStream: true, endHeaders: false)]
        frames += Array(repeating: RawFrame.continuation(1, piece, endHeaders: false), count: 1000)
        let goaway = try await Self.attack(attacker, frames)
        #expect(goaway?.errorCode == .enhanceYourCalm, "GOAWAY: \(goaway.map { "\($0) \(String(decoding: $0.payload.dropFirst(8), as: UTF8.self))" } ?? "none")")
        #expect(try await wellBehaved.value == 20)
        await attacker.close()
        await server.close()
    }

    /// PING and SETTINGS floods whose ACKs the attacker never reads: libnghttp2 stops at 1,000 queued ACKs
    /// (GOAWAY ENHANCE_YOUR_CALM, or a close when the GOAWAY cannot be written either).
    @Test func pingFloodWithoutReadingEndsTheConnection() async throws {
        let server = try await ConformanceServer.start(.h2c)
        let wellBehaved = try await Self.served(by: server)
        let (attacker, _) = try await server.handshake()
        // The attacker stops reading: its receive buffer fills, the server's ACKs queue up.
        try await attacker.channel.setOption(.autoRead, value: false).get()
        var pending: [UInt8] = []
        for index in 0..<200_000 {
            pending += RawFrame.ping(be32(UInt32(index)) + be32(0)).bytes
            if pending.count >= 64 << 10 {
                do { try await attacker.send(pending) } catch { break }
                pending.removeAll(keepingCapacity: true)
            }
        }
        // Reading again (the channel may be closed by now: the server ended it mid-flood).
        try? await attacker.channel.setOption(.autoRead, value: true).get()
        attacker.channel.read()
        #expect(await attacker.waitForClose(timeout: .seconds(20)), "the server kept the flooding connection open")
        #expect(try await wellBehaved.value == 20)
        await server.close()
    }
}

/// Many connections at once.
@Suite(.timeLimit(.minutes(3)))
struct ManyConnectionsTests {
    /// 10,000 concurrent connections from h2load (one request each), while a client of ours is served on its own
    /// connection; afterwards the server holds no connection.
    @Test func tenThousandConcurrentConnectionsAreServed() async throws {
        // Under ThreadSanitizer the server is ~10× slower and some of 10,000 connections wait longer than the default
        // 10 s preface timeout for their first read (and are rightly closed): this test is about serving them all.
        let server = try await ConformanceServer.start(.h2c) { $0.prefaceTimeout = .seconds(120) }
        let wellBehaved = try await AbuseTests.served(by: server, requests: 200)
        let result = try await Peers.run(
            "h2load", ["-c", "10000", "-n", "10000", "-m", "1", "-t", "1", "http://127.0.0.1:\(server.port)/"], timeout: .seconds(150))
        #expect(result.status == 0, "h2load: \(result.stderr)")
        #expect(result.text.contains("10000 succeeded"), "\(result.text)")
        #expect(try await wellBehaved.value == 200)
        let deadline = ContinuousClock.now + .seconds(20)
        while server.session.connectionCount > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.session.connectionCount == 0)
        await server.close()
    }
}
