import Testing
import Foundation
import NIOCore
import NIOHTTP1
import NGHTTP2
import HTTPTypes
@testable import NGHTTP2Async

/// ``HTTP2Client`` with ``HTTP2Client/HTTPVersionPolicy/h2cUpgrade`` (RFC 7540 §3.2): against hypercorn, which
/// upgrades and says which HTTP version served each request; against Python's `http.server`, which ignores the offer;
/// against our own server; and through the `h2` command. All on 127.0.0.1.
@Suite(.timeLimit(.minutes(3)))
struct HTTP2ClientH2CUpgradeTests {
    /// Answers every request with "METHOD PATH HTTP/VERSION" (the version hypercorn served it with) and the body's
    /// length in `x-body-length`.
    static let app = """
        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            length = 0
            while True:
                message = await receive()
                length += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = ("%s %s HTTP/%s" % (scope["method"], scope["path"], scope["http_version"])).encode()
            headers = [(b"content-length", str(len(body)).encode()), (b"x-body-length", str(length).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        """

    static func hypercorn() async throws -> (Peers.Running, Int) {
        let hypercorn = try Peers.venv("hypercorn")
        let directory = try Peers.temporaryDirectory()
        try app.write(toFile: directory + "/versionapp.py", atomically: true, encoding: .utf8)
        let port = try await Peers.freePort()
        let running = try await Peers.start(
            hypercorn, ["--bind", "127.0.0.1:\(port)", "--workers", "0", directory + "/versionapp.py:app"], waitForPort: port)
        return (running, port)
    }

    static func client() -> HTTP2Client {
        var configuration = HTTP2Client.Configuration()
        configuration.httpVersion = .h2cUpgrade
        return HTTP2Client(configuration: configuration)
    }

    static func origin(_ port: Int) -> OriginPool.Origin { OriginPool.Origin(scheme: "http", host: "127.0.0.1", port: port) }

    @Test func theOfferCarriesTheSettingsAsUnpaddedBase64URLThatAServerDecodesBack() throws {
        for count in 0..<8 {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 97 &+ 251) }
            let encoded = H2CUpgradeOffer.base64URL(bytes)
            #expect(!encoded.contains("="), "token68 without padding (RFC 7540 §3.2.1)")
            #expect(encoded.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
            #expect(H2CUpgradeRequest.decodeBase64URL(Substring(encoded)) == bytes)
        }
        let offer = try H2CUpgradeOffer(settings: [Setting(.maxConcurrentStreams, 100), Setting(.initialWindowSize, 65_535)]) { _ in
            throw HTTP2Error.sessionClosed
        }
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
        #expect(offer.add(to: &head))
        #expect(head.headers["upgrade"] == ["h2c"])
        #expect(head.headers["connection"] == ["Upgrade, HTTP2-Settings"])
        #expect(H2CUpgradeRequest.settings(of: head) == offer.settingsPayload, "what our server accepts")
        var closing = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["connection": "close"])
        #expect(!offer.add(to: &closing), "a request that closes its connection cannot carry the offer")
    }

    @Test func theFirstRequestUpgradesOnStreamOneAndLaterRequestsShareTheHTTP2Connection() async throws {
        let (hypercorn, port) = try await Self.hypercorn()
        defer { hypercorn.stop() }
        let client = Self.client()
        let first = try await client.get("http://127.0.0.1:\(port)/first")
        #expect(first.status == .ok)
        #expect(try await first.text() == "GET /first HTTP/2", "the upgraded request is answered over HTTP/2")
        #expect(first.streamID == 1, "RFC 7540 §3.2: the upgraded request is stream 1")

        let streamIDs = try await withThrowingTaskGroup(of: (String, Int32).self) { group in
            for index in 0..<8 {
                group.addTask {
                    let response = try await client.get("http://127.0.0.1:\(port)/item/\(index)")
                    return (try await response.text(), response.streamID)
                }
            }
            var streamIDs: [Int32] = []
            for try await (text, streamID) in group {
                #expect(text.hasSuffix(" HTTP/2"), "\(text)")
                streamIDs.append(streamID)
            }
            return streamIDs.sorted()
        }
        #expect(streamIDs == [3, 5, 7, 9, 11, 13, 15, 17], "client streams of one HTTP/2 connection")
        #expect(client.pool(ifExists: Self.origin(port))?.connectionsOpened == 1)
        await client.shutdown()
    }

    @Test func aRequestWithABodyGoesOverHTTP1AndTheNextOneWithoutABodyCarriesTheUpgrade() async throws {
        let (hypercorn, port) = try await Self.hypercorn()
        defer { hypercorn.stop() }
        let client = Self.client()
        let post = try await client.post("http://127.0.0.1:\(port)/upload", body: .bytes(Array(repeating: 7, count: 1000)))
        #expect(try await post.text() == "POST /upload HTTP/1.1", "RFC 7540 §3.2: a body would precede HTTP/2's bytes")
        #expect(post.headers[HTTPField.Name("x-body-length")!] == "1000")

        let head = try await client.head("http://127.0.0.1:\(port)/head")
        #expect(head.status == .ok)
        #expect(head.headers[.contentLength] == "17", "the length of what GET would send")
        #expect(try await head.body.collect(upTo: 100).readableBytes == 0, "a HEAD response on stream 1 has no body")
        #expect(head.streamID == 1)

        let get = try await client.get("http://127.0.0.1:\(port)/after")
        #expect(try await get.text() == "GET /after HTTP/2")
        #expect(get.streamID == 3)
        #expect(client.pool(ifExists: Self.origin(port))?.connectionsOpened == 1)
        await client.shutdown()
    }

    @Test func aServerThatIgnoresTheOfferKeepsSpeakingHTTP1AndIsAskedOnlyOnce() async throws {
        let (python, port) = try await HTTP2ClientOverHTTP1Tests.python()
        defer { python.stop() }
        let client = Self.client()
        var sawUpgrade: [String] = []
        for index in 0..<3 {
            let response = try await client.get("http://127.0.0.1:\(port)/\(index)")
            #expect(try await response.text() == "GET /\(index) HTTP/1.1 host=127.0.0.1:\(port)")
            #expect(response.streamID == Int32(index + 1), "the connection's nth HTTP/1.1 exchange")
            sawUpgrade.append(response.headers[HTTPField.Name("x-saw-upgrade")!] ?? "?")
        }
        #expect(sawUpgrade == ["h2c", "-", "-"])
        #expect(client.pool(ifExists: Self.origin(port))?.connectionsOpened == 1)
        await client.shutdown()
    }

    @Test func againstOurServerTheUpgradedResponseStreamsAndTheConnectionMultiplexes() async throws {
        let size = 3 << 20
        let server = try await ServerSession.bind(port: 0) { request in
            guard request.path == "/big" else { return ServerSession.Response(body: .text("small \(request.path ?? "")")) }
            return ServerSession.Response(body: .writer { writer in
                for _ in 0..<(size >> 16) { try await writer.write(ByteBuffer(repeating: 0x61, count: 1 << 16)) }
            })
        }
        let client = Self.client()
        let big = try await client.get("http://127.0.0.1:\(server.port)/big")
        #expect(big.streamID == 1)
        var received = 0
        for try await chunk in big.body { received += chunk.readableBytes }
        #expect(received == size, "more than the initial windows: stream 1 is flow-controlled like any other")
        let small = try await client.get("http://127.0.0.1:\(server.port)/small")
        #expect(try await small.text() == "small /small")
        #expect(small.streamID == 3)
        await client.shutdown()
        await server.close()
    }

    @Test func theH2CommandUpgradesWithUpgrade() async throws {
        let (hypercorn, port) = try await Self.hypercorn()
        defer { hypercorn.stop() }
        let result = try await Peers.run(Peers.h2, ["--upgrade", "http://127.0.0.1:\(port)/cli"], timeout: .seconds(30))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text == "GET /cli HTTP/2")
    }
}
