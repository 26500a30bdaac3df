import Testing
import Foundation
import NIOCore
import HTTPTypes
import NGHTTP2
@testable import NGHTTP2Async

/// The Extensible Prioritization Scheme (RFC 9218): the `priority` field, PRIORITY_UPDATE, and the order in which our
/// server (libnghttp2's scheduler) sends responses.
@Suite(.timeLimit(.minutes(2)))
struct PriorityTests {
    // MARK: The Priority field (RFC 9218 §4, §5)

    @Test func aFieldOfUrgencyAndIncrementalParsesAndIsWrittenBackTheSame() throws {
        let priority = try #require(HTTPPriority(fieldValue: "u=1, i"))
        #expect(priority == HTTPPriority(urgency: 1, incremental: true))
        #expect(priority.fieldValue == "u=1, i")
        #expect(HTTPPriority(fieldValue: priority.fieldValue) == priority)
        #expect(HTTPPriority(urgency: 5).fieldValue == "u=5")
    }

    @Test func anAbsentMemberTakesItsDefaultUrgencyThreeAndNotIncremental() throws {
        #expect(HTTPPriority(fieldValue: "") == .default)
        #expect(HTTPPriority(fieldValue: "i") == HTTPPriority(urgency: 3, incremental: true))
        #expect(HTTPPriority(fieldValue: "u=6") == HTTPPriority(urgency: 6, incremental: false))
        #expect(HTTPPriority.default == HTTPPriority(urgency: 3, incremental: false))
    }

    @Test func anUrgencyOutsideZeroToSevenOrOfAnotherTypeIsIgnored() {
        #expect(HTTPPriority(fieldValue: "u=8") == .default)
        #expect(HTTPPriority(fieldValue: "u=-1") == .default)
        #expect(HTTPPriority(fieldValue: "u=1.5") == .default)
        #expect(HTTPPriority(fieldValue: "u=\"1\"") == .default)
        #expect(HTTPPriority(fieldValue: "u=?1, i=1") == .default)
    }

    @Test func booleansUnknownMembersParametersAndTheLastDuplicateFollowStructuredFieldRules() {
        #expect(HTTPPriority(fieldValue: "i=?1") == HTTPPriority(urgency: 3, incremental: true))
        #expect(HTTPPriority(fieldValue: "i, i=?0") == .default)
        #expect(HTTPPriority(fieldValue: "u=2, u=4") == HTTPPriority(urgency: 4))
        #expect(
            HTTPPriority(fieldValue: "x-ext=\"a, b\";p=1, u=0;q, y=(1 2 tok), i")
                == HTTPPriority(urgency: 0, incremental: true)
        )
        #expect(HTTPPriority(fieldValue: "  u=2 ,\ti") == HTTPPriority(urgency: 2, incremental: true))
    }

    @Test func aFieldThatIsNotAStructuredFieldDictionaryIsNotAPriority() {
        #expect(HTTPPriority(fieldValue: "U=1") == nil)
        #expect(HTTPPriority(fieldValue: "u=1,") == nil)
        #expect(HTTPPriority(fieldValue: "u=1;") == nil)
        #expect(HTTPPriority(fieldValue: "u=1 i") == nil)
        #expect(HTTPPriority(fieldValue: "u=\"open") == nil)
        #expect(HTTPPriority(fieldValue: "u=?2") == nil)
    }

    @Test func anUrgencyGivenInCodeIsClampedToZeroToSeven() {
        #expect(HTTPPriority(urgency: 9).urgency == 7)
        var priority = HTTPPriority(urgency: -3)
        #expect(priority.urgency == 0)
        priority.urgency = 12
        #expect(priority.urgency == 7)
    }

    @Test func aRequestsPriorityIsItsPriorityHeaderField() {
        var request = HTTPRequest(method: .get, scheme: "http", authority: "a", path: "/")
        #expect(request.priority == nil)
        request.priority = HTTPPriority(urgency: 0, incremental: true)
        #expect(request.headerFields[.priority] == "u=0, i")
        #expect(request.priority == HTTPPriority(urgency: 0, incremental: true))
        request.headerFields.append(HTTPField(name: .priority, value: "u=6"))
        #expect(request.priority == HTTPPriority(urgency: 6, incremental: true))  // lines are joined; the last u counts
        request.priority = nil
        #expect(request.headerFields[.priority] == nil)
    }

    // MARK: Our client and server

    @Test func aServerHandlerSeesTheUrgencyAndIncrementalFlagTheClientAskedFor() async throws {
        let server = try await ServerSession.bind(port: 0) { request in
            ServerSession.Response(body: .text("\(request.priority.urgency) \(request.priority.incremental)"))
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        var request = HTTPRequest(method: .get, scheme: "http", authority: "127.0.0.1", path: "/")
        request.priority = HTTPPriority(urgency: 1, incremental: true)
        #expect(try await client.execute(request).text() == "1 true")
        #expect(try await client.get("/").text() == "3 false")
        #expect(try await client.get("/", headers: [.priority: "u=9, i=7"]).text() == "3 false")
        #expect(try await client.get("/", headers: [.priority: "not a dictionary"]).text() == "3 false")
        await client.close()
        await server.close()
    }

    /// The client's connection window is 64 KiB and it reads nothing until both response heads are in, so both bodies
    /// wait in the server for the same window; then it reads both at once. Which body the server sends first is
    /// libnghttp2's scheduling: the order in which the two bodies end on the wire says it (no clock involved).
    @Test func aResponseOfUrgencyZeroEndsBeforeAnUrgencySevenResponseThatStartedFirst() async throws {
        let order = try await endOrder(first: HTTPPriority(urgency: 7), second: HTTPPriority(urgency: 0))
        #expect(order == [3, 1])
    }

    /// The same exchange without priorities: the response that started first ends first (so the test above measures the
    /// priorities, not the sizes or the reading).
    @Test func withTheDefaultPriorityTheResponseThatStartedFirstEndsFirst() async throws {
        let order = try await endOrder(first: nil, second: nil)
        #expect(order == [1, 3])
    }

    @Test func aPriorityUpdateMovesAResponseAheadOfOneThatStartedFirst() async throws {
        let order = try await endOrder(first: HTTPPriority(urgency: 5), second: HTTPPriority(urgency: 5), updateSecondTo: HTTPPriority(urgency: 1))
        #expect(order == [3, 1])
    }

    /// The client asks for nothing; the server's handler gives the second response urgency 0.
    @Test func aServerHandlerCanSendItsResponseAheadOfOneThatStartedFirst() async throws {
        let order = try await endOrder(first: nil, second: nil) { request in
            if request.streamID == 3 { request.setResponsePriority(HTTPPriority(urgency: 0)) }
        }
        #expect(order == [3, 1])
    }

    /// The server's choice wins over a later PRIORITY_UPDATE from the client (it ignores the client's signals).
    @Test func aPriorityTheServerSetOutranksTheClientsLaterUpdate() async throws {
        let order = try await endOrder(first: nil, second: nil, updateSecondTo: HTTPPriority(urgency: 0)) { request in
            if request.streamID == 3 { request.setResponsePriority(HTTPPriority(urgency: 7)) }
        }
        #expect(order == [1, 3])
    }

    /// RFC 9218 §2.1: our client sends SETTINGS_NO_RFC7540_PRIORITIES = 1, so a server that falls back to RFC 7540
    /// priorities for clients that do not (libnghttp2's `server_fallback_rfc7540_priorities`) still uses its priorities.
    @Test func aServerThatFallsBackToRFC7540PrioritiesStillSchedulesOurClientByUrgency() async throws {
        let order = try await endOrder(
            first: HTTPPriority(urgency: 7),
            second: HTTPPriority(urgency: 0),
            configure: { $0.options.serverFallbackRFC7540Priorities = true }
        )
        #expect(order == [3, 1])
    }

    // MARK: A real peer

    /// nghttpd (`-v`) prints each header field it receives: our client's request carries the field as RFC 9218 §5
    /// writes it.
    @Test func nghttpdReceivesThePriorityFieldOfOurRequest() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("hello".utf8).write(to: URL(fileURLWithPath: directory + "/a"))
        let log = directory + "/nghttpd.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let port = try await Peers.freePort()
        let nghttpd = try await Peers.start(
            "nghttpd",
            ["--no-tls", "-v", "-a", "127.0.0.1", "-d", directory, "\(port)"],
            waitForPort: port,
            standardOutput: FileHandle(forWritingAtPath: log)!
        )
        defer { nghttpd.stop() }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)")
        var request = HTTPRequest(method: .get, scheme: "http", authority: "127.0.0.1:\(port)", path: "/a")
        request.priority = HTTPPriority(urgency: 6, incremental: true)
        let response = try await client.execute(request)
        #expect(try await response.text() == "hello")
        await client.close()
        nghttpd.stop()
        let output = try String(contentsOfFile: log, encoding: .utf8)
        #expect(output.contains("recv (stream_id=1) priority: u=6, i"), "nghttpd -v printed:\n\(output)")
    }

    // MARK: Helpers

    /// Opens a 512 KiB response with `first`, waits for its head, opens another with `second` (optionally
    /// reprioritized with PRIORITY_UPDATE), waits for its head, then reads both bodies at once. `serverSide` runs in
    /// the server's handler before it answers. Returns the streams in
    /// the order their last DATA frame (END_STREAM) arrived.
    private func endOrder(
        first: HTTPPriority?,
        second: HTTPPriority?,
        updateSecondTo update: HTTPPriority? = nil,
        serverSide: @escaping @Sendable (ServerSession.Request) -> Void = { _ in },
        configure: (inout ServerSession.Configuration) -> Void = { _ in }
    ) async throws -> [Int32] {
        let size = 512 << 10
        var serverConfiguration = ServerSession.Configuration()
        configure(&serverConfiguration)
        let server = try await ServerSession.bind(port: 0, configuration: serverConfiguration) { request in
            serverSide(request)
            return ServerSession.Response(body: .bytes(ByteBuffer(repeating: 1, count: size)))
        }
        let ends = LockedState([Int32]())
        var configuration = ClientSession.Configuration()
        configuration.connectionWindowSize = 65_535
        configuration.frameObserver = { direction, frame in
            guard direction == .received, case .data = frame.payload, frame.flags.contains(.endStream) else { return }
            ends.withLock { $0.append(frame.streamID) }
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
        func request(_ priority: HTTPPriority?) -> HTTPRequest {
            var request = HTTPRequest(method: .get, scheme: "http", authority: "127.0.0.1", path: "/large")
            request.priority = priority
            return request
        }
        let firstResponse = try await client.execute(request(first))
        let secondResponse = try await client.execute(request(second))
        #expect(firstResponse.streamID == 1 && secondResponse.streamID == 3)
        if let update { try await secondResponse.updatePriority(update) }
        async let firstBytes = firstResponse.bytes(upTo: size)
        async let secondBytes = secondResponse.bytes(upTo: size)
        #expect(try await firstBytes.count == size)
        #expect(try await secondBytes.count == size)
        await client.close()
        await server.close()
        return ends.withLock { $0 }
    }
}
