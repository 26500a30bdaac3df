import Foundation
import HTTPTypes
import InteropAPI
import NGHTTP2Async
import NGHTTP2OpenAPI
import OpenAPIRuntime
import Testing

/// The generated client and server of openapi.yaml over each row of the matrix: our client against our server
/// (h2c and TLS), our client against swift-openapi-hummingbird, AsyncHTTPClient's transport against our server.
@Suite("OpenAPI interop")
struct OpenAPIInteropTests {
    static let blobSize = 8 << 20

    @Test("A GET with path and query parameters returns the item as JSON", arguments: Stack.allCases)
    func getWithParameters(stack: Stack) async throws {
        try await stack.run { client, _, _ in
            let output = try await client.getItem(path: .init(itemID: "shelf 7"), query: .init(verbose: true, tags: ["red", "x&y=z"]))
            let item = try output.ok.body.json
            #expect(item == .init(id: "shelf 7", name: "item shelf 7", tags: ["red", "x&y=z"], verbose: true))

            let plain = try await client.getItem(path: .init(itemID: "42"))
            #expect(try plain.ok.body.json == .init(id: "42", name: "item 42", tags: [], verbose: nil))
        }
    }

    @Test("A POST with a JSON body is decoded by the server and answered with 201 and JSON", arguments: Stack.allCases)
    func postJSON(stack: Stack) async throws {
        try await stack.run { client, _, _ in
            let output = try await client.createItem(body: .json(.init(name: "lamp", tags: ["desk"])))
            #expect(try output.created.body.json == .init(id: "id-4", name: "lamp", tags: ["desk"]))
        }
    }

    @Test("An error response with a JSON body becomes the generated notFound and badRequest cases", arguments: Stack.allCases)
    func errorResponses(stack: Stack) async throws {
        try await stack.run { client, _, _ in
            let missing = try await client.getItem(path: .init(itemID: "missing"))
            guard case .notFound(let notFound) = missing else {
                Issue.record("expected .notFound, got \(missing)")
                return
            }
            #expect(try notFound.body.json == .init(code: 404, message: "no item missing"))

            let rejected = try await client.createItem(body: .json(.init(name: "")))
            #expect(try rejected.badRequest.body.json.code == 400)
        }
    }

    @Test("A streamed download reaches the client before the server has produced it all", arguments: Stack.allCases)
    func streamedDownload(stack: Stack) async throws {
        try await stack.run { client, probe, _ in
            let size = stack.downloadSize
            let output = try await client.downloadBlob(path: .init(size: Int64(size)), query: .init(chunkSize: 16 << 10))
            let body = try output.ok.body.binary
            var received = 0
            var chunks = 0
            var sum: UInt32 = 0
            var producedAtFirstChunk: Int?
            for try await chunk in body {
                if producedAtFirstChunk == nil { producedAtFirstChunk = probe.downloadProduced }
                chunks += 1
                received += chunk.count
                LazyBlob.add(chunk, to: &sum)
            }
            #expect(received == size)
            #expect(Int64(sum) == LazyBlob.checksum(size: size))
            #expect(chunks > 1)
            // Flow control holds the producer back: when the first chunk arrived, at most a few windows' worth of the
            // body had been made (a fully buffered body would have made all of it).
            let produced = try #require(producedAtFirstChunk)
            print("\(stack): download: \(produced) bytes produced at the first chunk, \(chunks) chunks")
            #expect(produced < size / 2, "the server had produced \(produced) of \(size) bytes at the first chunk")
        }
    }

    @Test("A streamed upload reaches the server's operation before the client has produced it all", arguments: Stack.allCases)
    func streamedUpload(stack: Stack) async throws {
        try await stack.run { client, probe, _ in
            let blob = LazyBlob(size: Self.blobSize, chunkSize: 16 << 10) { probe.addUploadProduced($0) }
            let output = try await client.uploadBlob(body: .binary(HTTPBody(blob, length: .unknown, iterationBehavior: .single)))
            let summary = try output.ok.body.json
            #expect(summary.byteCount == Int64(Self.blobSize))
            #expect(summary.checksum == LazyBlob.checksum(size: Self.blobSize))
            #expect(summary.chunkCount > 1)
            let produced = try #require(probe.uploadProducedAtFirstServerChunk)
            print("\(stack): upload: \(produced) bytes produced at the server's first chunk, \(summary.chunkCount) chunks")
            #expect(produced < Self.blobSize / 2, "the client had produced \(produced) of \(Self.blobSize) bytes at the server's first chunk")
        }
    }

    @Test("A known-length upload carries content-length and arrives whole", arguments: Stack.allCases)
    func knownLengthUpload(stack: Stack) async throws {
        try await stack.run { client, _, _ in
            let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }
            let output = try await client.uploadBlob(body: .binary(HTTPBody(bytes)))
            let summary = try output.ok.body.json
            #expect(summary.byteCount == 100_000)
            #expect(summary.checksum == LazyBlob.checksum(size: 100_000))
        }
    }
}

/// The server transport's own behaviour, seen with a plain HTTP2Client: what the generated code never sends.
@Suite("ServerSessionTransport routing")
struct ServerSessionTransportRoutingTests {
    @Test("A path no operation has gets 404 and a known path with another method gets 405 with allow")
    func unmatchedPathsAndMethods() async throws {
        try await Stack.ourClientOurServerH2C.run { _, _, serverURL in
            let certificates = try await InteropCertificates.shared()
            let client = Stack.makeHTTP2Client(certificates: certificates)
            let base = serverURL.absoluteString

            let unknown = try await client.get(base + "/nothing/here")
            #expect(unknown.status == .notFound)
            _ = try await unknown.bytes()

            let outsidePrefix = try await client.get(serverURL.absoluteString.replacingOccurrences(of: "/api", with: "") + "/items/1")
            #expect(outsidePrefix.status == .notFound)
            _ = try await outsidePrefix.bytes()

            let wrongMethod = try await client.delete(base + "/items/1")
            #expect(wrongMethod.status == .methodNotAllowed)
            #expect(wrongMethod.headers[.allow] == "GET")
            _ = try await wrongMethod.bytes()
            await client.shutdown()
        }
    }

    @Test("A path parameter the operation cannot decode gets the runtime's 400")
    func undecodableParameter() async throws {
        try await Stack.ourClientOurServerH2C.run { _, _, serverURL in
            let client = Stack.makeHTTP2Client(certificates: try await InteropCertificates.shared())
            let response = try await client.get(serverURL.absoluteString + "/blobs/not-a-number")
            #expect(response.status == .badRequest)
            _ = try await response.bytes()
            await client.shutdown()
        }
    }

    @Test("A literal route wins over a parameter route, and templates that cannot match are rejected")
    func routePrecedenceAndBadTemplates() async throws {
        let transport = ServerSessionTransport()
        try transport.register({ _, _, metadata in
            (HTTPResponse(status: .ok, headerFields: [.init("x-route")!: "param:\(metadata.pathParameters["id"] ?? "")"]), nil)
        }, method: .get, path: "/things/{id}")
        try transport.register({ _, _, _ in (HTTPResponse(status: .ok, headerFields: [.init("x-route")!: "literal"]), nil) }, method: .get, path: "/things/special")
        #expect(throws: ServerSessionTransportError.self) {
            try transport.register({ _, _, _ in (HTTPResponse(status: .ok), nil) }, method: .get, path: "/things/{id}")
        }
        #expect(throws: ServerSessionTransportError.self) {
            try transport.register({ _, _, _ in (HTTPResponse(status: .ok), nil) }, method: .get, path: "/things/{id")
        }
        #expect(throws: ServerSessionTransportError.self) {
            try transport.register({ _, _, _ in (HTTPResponse(status: .ok), nil) }, method: .get, path: "things")
        }

        let server = try await ServerSession.bind(port: 0, handler: transport.handler)
        let client = HTTP2Client()
        let special = try await client.get("http://127.0.0.1:\(server.port)/things/special")
        #expect(special.headers[.init("x-route")!] == "literal")
        let other = try await client.get("http://127.0.0.1:\(server.port)/things/other?q=1")
        #expect(other.headers[.init("x-route")!] == "param:other")
        await client.shutdown()
        await server.close(gracePeriod: .seconds(1))
    }
}

/// How HTTP2ClientTransport makes the request's origin and path from the server URL.
@Suite("HTTP2ClientTransport server URLs")
struct HTTP2ClientTransportURLTests {
    @Test("A server URL with a trailing slash, or without a path, still reaches the operation")
    func trailingSlashAndRoot() async throws {
        let certificates = try await InteropCertificates.shared()
        let transport = ServerSessionTransport()
        try InteropService(probe: StreamProbe()).registerHandlers(on: transport, serverURL: URL(string: "/")!)
        let server = try await ServerSession.bind(port: 0, handler: transport.handler)
        let client = Stack.makeHTTP2Client(certificates: certificates)
        for base in ["http://127.0.0.1:\(server.port)", "http://127.0.0.1:\(server.port)/", "http://localhost:\(server.port)/"] {
            let api = Client(serverURL: URL(string: base)!, transport: HTTP2ClientTransport(client: client))
            #expect(try await api.getItem(path: .init(itemID: "7")).ok.body.json.id == "7", "\(base)")
        }
        await client.shutdown()
        await server.close(gracePeriod: .seconds(1))
    }

    @Test("A server URL that is not http or https fails with HTTP2ClientTransportError inside the runtime's ClientError")
    func notAnHTTPURL() async throws {
        let api = Client(serverURL: URL(string: "ftp://127.0.0.1/api")!, transport: HTTP2ClientTransport(client: HTTP2Client()))
        do {
            _ = try await api.getItem(path: .init(itemID: "7"))
            Issue.record("expected an error")
        } catch let error as ClientError {
            #expect(error.underlyingError is HTTP2ClientTransportError)
        }
    }
}
