import Foundation
import HTTPTypes
import NGHTTP2
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import NGHTTP2Async

/// Server push (RFC 9113 §8.4) both ways: our pushes received by nghttp and by our client, nghttpd's pushes received
/// by our client, refused pushes, and `h2 serve --push` / `h2 --accept-push`.
@Suite(.timeLimit(.minutes(2)))
struct ServerPushTests {
    /// A server that pushes `/style.css` with every response to `/`, and answers both (the pushed request goes through
    /// the same handler). `pushed` learns what each push returned.
    func pushingServer(pushed: NIOLockedValueBox<[Bool]> = NIOLockedValueBox([])) async throws -> ServerSession {
        try await ServerSession.bind(host: "127.0.0.1", port: 0) { request in
            switch request.path {
            case "/":
                pushed.withLockedValue { $0.append(false) }
                let went = try await request.push(path: "/style.css")
                pushed.withLockedValue { $0[$0.count - 1] = went }
                return ServerSession.Response(body: .text("index"))
            case "/style.css":
                return ServerSession.Response(headers: [.contentType: "text/css"], body: .text("body { color: teal }"))
            default:
                return ServerSession.Response(status: .notFound)
            }
        }
    }

    /// Collects the pushes a client is given, reading each response whole.
    final class PushCollector: Sendable {
        let pushes = NIOLockedValueBox<[(path: String, associated: Int32, promised: Int32, status: Int, body: String)]>([])
        let (arrived, continuation) = AsyncStream.makeStream(of: Void.self)

        var handler: ClientSession.PushHandler {
            { [self] push in
                do {
                    let response = try await push.response()
                    let body = try await response.text()
                    pushes.withLockedValue {
                        $0.append((push.request.path ?? "", push.associatedStreamID, push.promisedStreamID, response.status.code, body))
                    }
                } catch {
                    Issue.record("the pushed response failed: \(error)")
                }
                continuation.yield()
            }
        }

        func waitForPushes(_ count: Int) async {
            var seen = 0
            for await _ in arrived {
                seen += 1
                if seen == count { return }
            }
        }
    }

    @Test func nghttpReceivesOurPushBeforeTheResponseThatPromisedIt() async throws {
        let server = try await pushingServer()
        let result = try await Peers.run("nghttp", ["-nv", "http://127.0.0.1:\(server.port)/"])
        #expect(result.status == 0, "\(result.stderr)")
        let output = result.text
        #expect(output.contains("recv PUSH_PROMISE frame <length="), "\(output)")
        #expect(output.contains("promised_stream_id=2)"), "\(output)")
        #expect(output.contains(":path: /style.css"), "the promised request names the asset")
        // The pushed response's HEADERS on stream 2, and its DATA ending the stream.
        #expect(output.contains("recv HEADERS frame <length=") && output.contains("stream_id=2>"), "\(output)")
        #expect(output.contains("recv DATA frame <length=20, flags=0x01, stream_id=2>"), "\(output)")
        // §8.4.2: the PUSH_PROMISE precedes the frames of the response that refers to the promised resource.
        let promise = try #require(output.range(of: "recv PUSH_PROMISE"))
        let response = try #require(output.range(of: "recv DATA frame <length=5, flags=0x01"), "the response's body, \"index\"")
        #expect(promise.lowerBound < response.lowerBound)
        await server.close()
    }

    @Test func aClientThatTakesPushesReceivesOursOnTheirOwnStreams() async throws {
        let server = try await pushingServer()
        let collector = PushCollector()
        var configuration = ClientSession.Configuration()
        configuration.pushHandler = collector.handler
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
        let response = try await client.get("/")
        #expect(try await response.text() == "index")
        await collector.waitForPushes(1)
        let pushes = collector.pushes.withLockedValue { $0 }
        #expect(pushes.count == 1)
        #expect(pushes.first?.path == "/style.css" && pushes.first?.status == 200 && pushes.first?.body == "body { color: teal }")
        #expect(pushes.first?.associated == 1 && pushes.first?.promised == 2)
        await client.close()
        await server.close()
    }

    /// RFC 9113 §6.5.2: "A server MUST NOT send a PUSH_PROMISE frame if it receives this parameter set to a value of 0".
    @Test func aClientWithoutAPushHandlerIsNeverPushedTo() async throws {
        let pushed = NIOLockedValueBox<[Bool]>([])
        let server = try await pushingServer(pushed: pushed)
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        #expect(try await client.get("/").text() == "index")
        #expect(pushed.withLockedValue { $0 } == [false], "push(path:) says nothing was sent")
        await client.close()
        await server.close()
    }

    /// RFC 9113 §8.4.2: a client that does not want a pushed response "can send a RST_STREAM frame, using either the
    /// CANCEL or REFUSED_STREAM code".
    @Test func aPushTheClientDoesNotTakeIsResetWithCancelAndTheResponseStillArrives() async throws {
        let assetEnded = NIOLockedValueBox<(any Error)?>(nil)
        let (ended, endedContinuation) = AsyncStream.makeStream(of: Void.self)
        let server = try await ServerSession.bind(host: "127.0.0.1", port: 0) { request in
            if request.path == "/big.bin" {
                // A pushed body that would not fit the client's windows: it can only end by the client's reset.
                return ServerSession.Response(body: .writer { writer in
                    do {
                        for _ in 0..<10_000 { try await writer.write(ByteBuffer(repeating: 7, count: 16 << 10)) }
                    } catch {
                        assetEnded.withLockedValue { $0 = error }
                        endedContinuation.yield()
                        throw error
                    }
                    endedContinuation.yield()
                })
            }
            try await request.push(path: "/big.bin")
            return ServerSession.Response(body: .text("index"))
        }
        var configuration = ClientSession.Configuration()
        configuration.pushHandler = { push in
            #expect(push.request.path == "/big.bin")
            // Returning without asking for the response refuses the push.
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
        #expect(try await client.get("/").text() == "index")
        for await _ in ended { break }
        let error = try #require(assetEnded.withLockedValue { $0 } as? HTTP2Error, "the pushed body's writer learns of the reset")
        #expect(error.code == .streamReset && error.errorCode == .cancel && error.byPeer)
        #expect(try await client.get("/").text() == "index", "the connection goes on")
        await client.close()
        await server.close()
    }

    /// RFC 9113 §8.4: "Promised requests MUST be safe ... and MUST NOT include a request body" (and be cacheable).
    @Test func onlyGetAndHeadCanBePushed() async throws {
        let failure = NIOLockedValueBox<HTTP2Error?>(nil)
        let server = try await ServerSession.bind(host: "127.0.0.1", port: 0) { request in
            do {
                try await request.push(HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/form"))
            } catch let error as HTTP2Error {
                failure.withLockedValue { $0 = error }
            }
            return ServerSession.Response(body: .text("index"))
        }
        var configuration = ClientSession.Configuration()
        configuration.pushHandler = { _ in Issue.record("nothing may be pushed") }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
        #expect(try await client.get("/").text() == "index")
        #expect(failure.withLockedValue { $0 }?.code == .invalidArgument)
        await client.close()
        await server.close()
    }

    @Test func ourClientReceivesNghttpdsPushes() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("<p>index</p>".utf8).write(to: URL(fileURLWithPath: directory + "/index.html"))
        try Data("body{}".utf8).write(to: URL(fileURLWithPath: directory + "/style.css"))
        try Data("let x = 1".utf8).write(to: URL(fileURLWithPath: directory + "/app.js"))
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory, extra: ["-p", "/index.html=/style.css,/app.js"])
        defer { nghttpd.stop() }
        let collector = PushCollector()
        var configuration = HTTP2Client.Configuration()
        configuration.connection.pushHandler = collector.handler
        let client = HTTP2Client(configuration: configuration)
        #expect(try await client.get("http://127.0.0.1:\(port)/index.html").text() == "<p>index</p>")
        await collector.waitForPushes(2)
        let pushes = collector.pushes.withLockedValue { $0 }.sorted { $0.path < $1.path }
        #expect(pushes.map(\.path) == ["/app.js", "/style.css"])
        #expect(pushes.map(\.body) == ["let x = 1", "body{}"])
        #expect(pushes.allSatisfy { $0.status == 200 && $0.associated == 1 && $0.promised % 2 == 0 })
        await client.shutdown()
    }

    @Test func h2ServePushesWhatItIsToldAndH2ShowsThePushes() async throws {
        let port = try await Peers.freePort()
        let server = try await Peers.start(Peers.h2, ["serve", "--quiet", "--port", "\(port)", "--push", "/get=/status/204,/headers"], waitForPort: port)
        defer { server.stop() }
        let result = try await Peers.run(Peers.h2, ["--accept-push", "-v", "http://127.0.0.1:\(port)/get"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("recv [PUSH_PROMISE frame"), "\(result.stderr)")
        #expect(result.stderr.contains("h2: pushed GET /status/204 (stream 2): 204, 0 bytes"), "\(result.stderr)")
        #expect(result.stderr.contains("h2: pushed GET /headers (stream 4): 200"), "\(result.stderr)")
        #expect(result.text.contains("\"url\""), "the response itself is printed: \(result.text)")
        // Without --accept-push nothing is pushed (SETTINGS_ENABLE_PUSH = 0).
        let plain = try await Peers.run(Peers.h2, ["-v", "http://127.0.0.1:\(port)/get"])
        #expect(plain.status == 0 && !plain.stderr.contains("PUSH_PROMISE"), "\(plain.stderr)")
    }
}
