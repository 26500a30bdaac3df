import Testing
import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
@testable import NGHTTP2Async
@testable import H2Command

/// `h2 serve`'s redirect and deflate endpoints, through a real server on 127.0.0.1.
@Suite struct TestServerEndpointTests {
    /// `h2 serve`'s handler on 127.0.0.1, and a client connected to it.
    private func start() async throws -> (ServerSession, ClientSession, Int) {
        let testServer = TestServer(directory: nil)
        let server = try await ServerSession.bind(host: "127.0.0.1", port: 0) { try await testServer.handle($0) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        return (server, client, server.port)
    }

    private func stop(_ server: ServerSession, _ client: ClientSession) async {
        await client.close()
        await server.close()
    }

    /// "status location" of a GET ("-" for no location; the body is read and dropped).
    private func redirect(_ client: ClientSession, _ path: String) async throws -> String {
        let response = try await client.get(path)
        _ = try await response.bytes()
        return "\(response.status.code) \(response.headers[.location] ?? "-")"
    }

    @Test func redirectCountsDownToGetWithRelativeLocations() async throws {
        let (server, client, _) = try await start()
        #expect(try await redirect(client, "/redirect/3") == "302 /redirect/2")
        #expect(try await redirect(client, "/redirect/2") == "302 /redirect/1")
        #expect(try await redirect(client, "/redirect/1") == "302 /get")
        #expect(try await redirect(client, "/redirect/0").hasPrefix("400 "))
        #expect(try await redirect(client, "/redirect/x").hasPrefix("400 "))
        await stop(server, client)
    }

    @Test func absoluteRedirectBuildsURLsFromTheRequestsSchemeAndAuthority() async throws {
        let (server, client, port) = try await start()
        #expect(try await redirect(client, "/absolute-redirect/2") == "302 http://127.0.0.1:\(port)/absolute-redirect/1")
        #expect(try await redirect(client, "/absolute-redirect/1") == "302 http://127.0.0.1:\(port)/get")
        #expect(try await redirect(client, "/absolute-redirect/-1").hasPrefix("400 "))
        await stop(server, client)
    }

    @Test func redirectToTakesTheURLAndAThreeHundredStatus() async throws {
        let (server, client, _) = try await start()
        #expect(try await redirect(client, "/redirect-to?url=https%3A%2F%2Fexample.org%2Fa%3Fb%3D1") == "302 https://example.org/a?b=1")
        #expect(try await redirect(client, "/redirect-to?url=/get&status_code=307") == "307 /get")
        #expect(try await redirect(client, "/redirect-to?url=/get&status_code=301") == "301 /get")
        #expect(try await redirect(client, "/redirect-to?url=/get&status_code=200") == "400 -")
        #expect(try await redirect(client, "/redirect-to?url=/get&status_code=abc") == "400 -")
        #expect(try await redirect(client, "/redirect-to?status_code=302") == "400 -")
        await stop(server, client)
    }

    @Test func deflateAnswersZlibEncodedJSON() async throws {
        let (server, client, _) = try await start()
        let response = try await client.get("/deflate")
        #expect(response.status == .ok)
        #expect(response.headers[.contentEncoding] == "deflate")
        let bytes = try await response.bytes()
        // The zlib format (RFC 1950): CM 8, and the header check divides by 31.
        #expect(bytes.count > 2 && bytes[0] & 0x0f == 8 && (UInt16(bytes[0]) << 8 | UInt16(bytes[1])) % 31 == 0)
        // And the client's decoder reads it back.
        let decoded = try await client.get("/deflate").decodingContent(maxExpansionRatio: 100)
        #expect(decoded.decodedContentEncoding == "deflate")
        let object = try await decoded.json(as: [String: AnyDecodable].self)
        #expect(object["deflated"]?.value as? Bool == true)
        #expect(object["path"]?.value as? String == "/deflate")
        await stop(server, client)
    }

    @Test func endpointsWithNothingToWaitForAreAnsweredAtOnceAndTheSameAsByTheHandler() async throws {
        let testServer = TestServer(directory: nil)
        let byHandler = Counter()
        let server = try await ServerSession.bind(host: "127.0.0.1", port: 0, immediateHandler: { testServer.endpointAtOnce($0) }) {
            byHandler.add()
            return try await testServer.handle($0)
        }
        let reference = try await ServerSession.bind(host: "127.0.0.1", port: 0) { try await testServer.handle($0) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let referenceClient = try await ClientSession.connect(to: "http://127.0.0.1:\(reference.port)")
        /// "status location body" with the port taken out of absolute URLs.
        func answer(_ client: ClientSession, _ port: Int, _ path: String) async throws -> String {
            let response = try await client.get(path, headers: [.userAgent: "test"])
            let body = String(decoding: try await response.bytes(), as: UTF8.self)
            return "\(response.status.code) \(response.headers[.location] ?? "-") \(body)".replacingOccurrences(of: ":\(port)", with: ":PORT")
        }
        for path in ["/get", "/get?a=1&b=two", "/anything/x", "/headers", "/status/204", "/redirect/2", "/absolute-redirect/1", "/redirect-to?url=/get", "/post"] {
            let immediate = try await answer(client, server.port, path)
            #expect(immediate == (try await answer(referenceClient, reference.port, path)), "\(path)")
        }
        #expect(byHandler.value == 0, "none of them went to the handler")
        // A body to read, or an answer that waits or streams, goes to the handler.
        let posted = try await client.execute(HTTPRequest(method: .post, scheme: "http", authority: "127.0.0.1", path: "/post"), body: .bytes(ByteBuffer(string: "{\"a\":1}")))
        #expect(String(decoding: try await posted.bytes(), as: UTF8.self).contains("\"data\" : \"{\\\"a\\\":1}\""))
        _ = try await client.get("/stream-bytes/10").bytes()
        #expect(byHandler.value == 2)
        await client.close()
        await referenceClient.close()
        await server.close()
        await reference.close()
    }
}

/// How many times something happened, from any thread.
private final class Counter: Sendable {
    private let count = NIOLockedValueBox(0)
    func add() { count.withLockedValue { $0 += 1 } }
    var value: Int { count.withLockedValue { $0 } }
}

/// Just enough of any JSON value for the checks above.
private struct AnyDecodable: Decodable {
    let value: Any
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let bool = try? container.decode(Bool.self) { value = bool }
        else if let string = try? container.decode(String.self) { value = string }
        else if let number = try? container.decode(Double.self) { value = number }
        else { value = "" }
    }
}
